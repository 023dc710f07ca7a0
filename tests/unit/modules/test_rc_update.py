# -*- coding: utf-8 -*-
"""The rc_update module: which rc-update commands run, and when none do."""

from __future__ import annotations

import os

import pytest

from ansible_collections.gse.stateless.plugins.modules import rc_update as mod
from portage_module_harness import run_module

RC = "/usr/bin/rc-update"


@pytest.fixture
def etc(tmp_path, monkeypatch):
    init_d = tmp_path / "init.d"
    runlevels = tmp_path / "runlevels"
    init_d.mkdir()
    for rl in ("sysinit", "boot", "default"):
        (runlevels / rl).mkdir(parents=True)
    for svc in ("sshd", "udev", "hwclock"):
        (init_d / svc).write_text("#!/sbin/openrc-run\n")
    monkeypatch.setattr(mod, "INIT_D", str(init_d))
    monkeypatch.setattr(mod, "RUNLEVELS", str(runlevels))
    return tmp_path


def like_rc_update(etc):
    """Change /etc/runlevels as rc-update add/del does."""
    def respond(argv):
        _rc, verb, svc, rl = argv
        link = etc / "runlevels" / rl / svc
        if verb == "add":
            os.symlink(str(etc / "init.d" / svc), str(link))
            return 0, " * service %s added to runlevel %s\n" % (svc, rl), ""
        link.unlink()
        return 0, " * service %s removed from runlevel %s\n" % (svc, rl), ""
    return respond


def test_add_names_the_runlevel_and_a_rerun_runs_nothing(etc):
    args = dict(services=[{"name": "sshd"}, {"name": "udev", "runlevel": "sysinit"}])
    run = run_module(mod.main, args, respond=like_rc_update(etc))
    assert not run.failed, run.result
    assert run.argvs == [[RC, "add", "sshd", "default"], [RC, "add", "udev", "sysinit"]]
    assert run.result["changed"] is True
    assert [r["changed"] for r in run.result["results"]] == [True, True]
    assert os.readlink(str(etc / "runlevels/default/sshd")) == str(etc / "init.d/sshd")

    again = run_module(mod.main, args, respond=like_rc_update(etc))
    assert again.argvs == []
    assert again.result["changed"] is False


def test_del_only_what_is_there(etc):
    os.symlink(str(etc / "init.d/hwclock"), str(etc / "runlevels/boot/hwclock"))
    args = dict(services=[{"name": "hwclock", "runlevel": "boot", "state": "absent"},
                          {"name": "sshd", "runlevel": "default", "state": "absent"}])
    run = run_module(mod.main, args, respond=like_rc_update(etc))
    assert run.argvs == [[RC, "del", "hwclock", "boot"]]
    assert [r["changed"] for r in run.result["results"]] == [True, False]


def test_check_mode_reports_without_running(etc):
    run = run_module(mod.main, dict(services=[{"service": "sshd"}]), check_mode=True)
    assert run.argvs == []
    assert run.result["changed"] is True
    assert run.result["results"][0]["cmd"] == [RC, "add", "sshd", "default"]
    assert not os.path.lexists(str(etc / "runlevels/default/sshd"))


def test_missing_init_script_fails_before_anything_runs(etc):
    args = dict(services=[{"name": "sshd"}, {"name": "nosuchd", "runlevel": "default"}])
    run = run_module(mod.main, args, respond=like_rc_update(etc))
    assert run.failed
    assert run.argvs == []
    assert "nosuchd" in run.result["msg"] and str(etc / "init.d/nosuchd") in run.result["msg"]


def test_missing_runlevel_fails_before_anything_runs(etc):
    run = run_module(mod.main, dict(services=[{"name": "sshd", "runlevel": "lab"}]))
    assert run.failed and run.argvs == []
    assert "runlevel lab does not exist" in run.result["msg"]


def test_failed_rc_update_reports_the_command(etc):
    run = run_module(mod.main, dict(services=[{"name": "sshd"}]),
                     respond=lambda argv: (1, "", " * rc-update: service `sshd' does not exist\n"))
    assert run.failed
    assert run.result["cmd"] == [RC, "add", "sshd", "default"] and run.result["rc"] == 1
    assert "does not exist" in run.result["stderr"]


def test_names_with_slashes_are_refused(etc):
    run = run_module(mod.main, dict(services=[{"name": "../sshd"}]))
    assert run.failed and run.argvs == []
