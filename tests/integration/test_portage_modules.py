# -*- coding: utf-8 -*-
"""The chroot-side modules against a real Portage and OpenRC.

Each module runs through Ansible into a copy of the test stage3 (Debian
minbase + Portage 3.0.83 + OpenRC + the gse-test ebuild repository): the
module's interpreter is the chroot's python3, reached through a two-line
wrapper, and the module comes in on stdin (pipelining), which is how the
collection's chroot connection delivers it too.  emerge, ebuild phases,
/var/db/pkg, mtimedb, rc-update and portageq are all real.

The stage3 comes from the project's test fixture plugin (``stage3_root``,
``gse_fixture``); without that plugin these tests are skipped.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

import pytest

REPO_MOUNTPOINT = "var/db/repos/gse-test"
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")


@pytest.fixture
def stage3(stage3_root, gse_fixture):
    """(fresh extracted stage3 root, ebuild repository) from the fixture plugin (tests/conftest.py loads it)."""
    return str(stage3_root), str(gse_fixture.repo)


class Mounts(object):
    """The mounts emerge needs in the chroot, released in reverse order."""

    def __init__(self, root):
        self.root = root
        self.made = []

    def _mount(self, argv, target, after=()):
        os.makedirs(target, exist_ok=True)
        subprocess.run(argv + [target], check=True)
        self.made.append(target)
        for extra in after:
            subprocess.run(extra + [target], check=True)

    def mount(self, repo):
        self._mount(["mount", "-t", "proc", "proc"], os.path.join(self.root, "proc"))
        for fs in ("sys", "dev"):
            self._mount(["mount", "--rbind", "/" + fs], os.path.join(self.root, fs),
                        after=[["mount", "--make-rslave"]])
        self._mount(["mount", "--bind", repo], os.path.join(self.root, REPO_MOUNTPOINT),
                    after=[["mount", "-o", "remount,bind,ro"]])

    def release(self):
        errors = []
        while self.made:
            target = self.made.pop()
            done = subprocess.run(["umount", "-R", target], capture_output=True, text=True)
            if done.returncode != 0:
                errors.append("%s: %s" % (target, done.stderr.strip()))
        assert not errors, errors


@pytest.fixture
def root(stage3):
    """The stage3 with /proc, /sys, /dev and the repository mounted (released before it is removed)."""
    target, repo = stage3
    mounts = Mounts(target)
    try:
        mounts.mount(repo)
        yield target
    finally:
        mounts.release()


def run(root, module, args, check=False):
    """Run gse.stateless.<module> in the chroot; its result dict, with "failed" set."""
    with tempfile.TemporaryDirectory() as tmp:
        python = os.path.join(tmp, "python3")
        with open(python, "w") as f:
            f.write("#!/bin/sh\nexec chroot %s /usr/bin/env -i PATH=%s HOME=/root LANG=C.UTF-8 python3 \"$@\"\n"
                    % (root, CHROOT_PATH))
        os.chmod(python, 0o755)
        env = dict(os.environ,
                   ANSIBLE_PIPELINING="1",
                   ANSIBLE_STDOUT_CALLBACK="ansible.builtin.minimal",
                   ANSIBLE_CALLBACK_RESULT_FORMAT="json")
        argv = [ANSIBLE, "localhost", "-i", "localhost,", "-c", "local",
                "-e", "ansible_python_interpreter=" + python,
                "-m", "gse.stateless." + module] + (["-a", json.dumps(args)] if args else [])
        if check:
            argv.append("--check")
        done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=900)
    # "localhost | CHANGED => {...json...}"; ansible exits 0 when the task
    # succeeded and 2 when it failed.
    head, sep, body = done.stdout.partition("localhost | ")
    assert done.returncode in (0, 2) and sep, done.stdout + done.stderr
    result, _end = json.JSONDecoder().raw_decode(body.split(" => ", 1)[1])
    result["failed"] = done.returncode == 2
    return result


def installed(root, cp):
    """cpvs of ``cp`` in the chroot's /var/db/pkg."""
    cat, pn = cp.split("/")
    catdir = os.path.join(root, "var/db/pkg", cat)
    names = os.listdir(catdir) if os.path.isdir(catdir) else []
    return ["%s/%s" % (cat, n) for n in names if n.rsplit("-", 1)[0] == pn]


def make_conf_value(root, name):
    """What bash reads from the chroot's make.conf (independent of the module's parser)."""
    done = subprocess.run(["chroot", root, "/bin/bash", "-c", '. /etc/portage/make.conf; printf %s "$' + name + '"'],
                          capture_output=True, text=True, check=True)
    return done.stdout


def test_merge_then_noreplace_rerun(root):
    first = run(root, "emerge", {"atoms": ["app-misc/hello-lab"]})
    assert not first["failed"], first
    assert first["changed"] is True
    assert first["merged"] == installed(root, "app-misc/hello-lab") != []
    assert os.path.exists(os.path.join(root, "usr/bin/hello-lab"))

    again = run(root, "emerge", {"atoms": ["app-misc/hello-lab"], "noreplace": True})
    assert not again["failed"], again
    assert again["changed"] is False and again["merged"] == []


def test_check_mode_reports_without_merging(root):
    assert installed(root, "app-misc/lab-tools") == []
    result = run(root, "emerge", {"atoms": ["app-misc/lab-tools"]}, check=True)
    assert not result["failed"], result
    assert result["changed"] is True
    assert [c.rsplit("-", 1)[0] for c in result["merged"]] == ["app-misc/lab-tools"]
    assert "--pretend" in result["cmd"]
    assert installed(root, "app-misc/lab-tools") == []


def test_failure_reports_resume_and_log_then_skipfirst_finishes(root):
    atoms = ["dev-util/broken-build", "app-misc/hello-lab", "app-misc/lab-tools"]
    failed = run(root, "emerge", {"atoms": atoms, "log_tail_lines": 20})
    assert failed["failed"] is True, failed
    assert failed["rc"] != 0
    package = failed["failed_package"]
    assert package.startswith("dev-util/broken-build-")
    # The failed package heads the stored list, the rest follows.
    assert failed["resume"][0] == package
    assert sorted(c.rsplit("-", 1)[0] for c in failed["resume"][1:]) == ["app-misc/hello-lab", "app-misc/lab-tools"]
    assert failed["log"].startswith("/var/log/portage/dev-util:broken-build-")
    assert os.path.isfile(os.path.join(root, failed["log"].lstrip("/")))
    assert any("intentional failure" in line for line in failed["log_tail"])
    assert installed(root, "app-misc/lab-tools") == []

    finished = run(root, "emerge", {"atoms": atoms, "resume": "skipfirst"})
    assert not finished["failed"], finished
    assert finished["resumed"] is True and finished["skipped_packages"] == [package]
    assert finished["cmd"][1:3] == ["--resume", "--skipfirst"]
    assert finished["changed"] is True
    assert installed(root, "app-misc/lab-tools") != []
    assert set(installed(root, "app-misc/lab-tools")) <= set(finished["merged"])
    assert installed(root, "dev-util/broken-build") == []

    # The list is used up: resume now runs the requested emerge, which has nothing to do.
    rerun = run(root, "emerge", {"atoms": ["app-misc/lab-tools"], "noreplace": True, "resume": "skipfirst"})
    assert not rerun["failed"], rerun
    assert rerun["resumed"] is False and rerun["changed"] is False


def test_deselect_then_depclean(root):
    run(root, "emerge", {"atoms": ["app-misc/lab-tools"], "noreplace": True})
    world = os.path.join(root, "var/lib/portage/world")
    with open(world) as f:
        assert "app-misc/lab-tools" in f.read().split()

    first = run(root, "emerge", {"action": "deselect", "atoms": ["app-misc/lab-tools"]})
    assert not first["failed"], first
    assert first["changed"] is True and first["deselected"] == ["app-misc/lab-tools"]
    again = run(root, "emerge", {"action": "deselect", "atoms": ["app-misc/lab-tools"]})
    assert again["changed"] is False

    cpvs = installed(root, "app-misc/lab-tools")
    cleaned = run(root, "emerge", {"action": "depclean", "atoms": ["app-misc/lab-tools"]})
    assert not cleaned["failed"], cleaned
    assert cleaned["changed"] is True and cleaned["unmerged"] == cpvs
    assert installed(root, "app-misc/lab-tools") == []


def test_rc_update(root):
    script = os.path.join(root, "etc/init.d/gse-lab")
    with open(script, "w") as f:
        f.write("#!/sbin/openrc-run\ndescription=\"test service\"\nstart() { :; }\n")
    os.chmod(script, 0o755)
    link = os.path.join(root, "etc/runlevels/default/gse-lab")
    entry = {"services": [{"name": "gse-lab", "runlevel": "default"}]}

    first = run(root, "rc_update", entry)
    assert not first["failed"], first
    assert first["changed"] is True and first["results"][0]["rc"] == 0
    assert os.readlink(link) == "/etc/init.d/gse-lab"
    again = run(root, "rc_update", entry)
    assert again["changed"] is False and "cmd" not in again["results"][0]

    gone = run(root, "rc_update", {"services": [{"name": "gse-lab", "runlevel": "default", "state": "absent"}]})
    assert gone["changed"] is True and not os.path.lexists(link)

    missing = run(root, "rc_update", {"services": [{"name": "gse-lab"}, {"name": "no-such-service"}]})
    assert missing["failed"] is True
    assert "/etc/init.d/no-such-service is missing" in missing["msg"]
    assert not os.path.lexists(link)   # nothing ran, not even the valid entry


def test_configuration_modules(root):
    steps = [
        ("timezone", {"name": "Europe/Athens"}),
        ("make_profile", {"profile": "default/linux/amd64", "repo": "gse-test"}),
        ("make_conf", {"variables": {"MAKEOPTS": "-j2"}, "append": {"FEATURES": ["parallel-fetch"]}}),
        ("locale", {"locales": ["C.UTF-8 UTF-8"], "lang": "C.UTF-8", "lc_collate": "C"}),
    ]
    os.unlink(os.path.join(root, "etc/portage/make.profile"))
    features = make_conf_value(root, "FEATURES")
    for module, args in steps:
        first = run(root, module, args)
        assert not first["failed"], (module, first)
        assert first["changed"] is True, module
        again = run(root, module, args)
        assert not again["failed"], (module, again)
        assert again["changed"] is False, module

    assert os.readlink(os.path.join(root, "etc/localtime")) == "../usr/share/zoneinfo/Europe/Athens"
    assert os.readlink(os.path.join(root, "etc/portage/make.profile")) == \
        "../../var/db/repos/gse-test/profiles/default/linux/amd64"
    assert make_conf_value(root, "FEATURES") == " ".join(features.split() + ["parallel-fetch"])
    assert make_conf_value(root, "MAKEOPTS") == "-j2"
    with open(os.path.join(root, "etc/portage/make.conf")) as f:
        assert f.read().startswith("# ")   # the header comment is still there
    # env-update (Portage's) turned 02locale into the profile environment.
    with open(os.path.join(root, "etc/profile.env")) as f:
        assert "LANG='C.UTF-8'" in f.read()
    # Portage itself still reads its configuration and the selected profile.
    pretend = run(root, "emerge", {"atoms": ["app-misc/hello-lab"], "noreplace": True}, check=True)
    assert not pretend["failed"], pretend
