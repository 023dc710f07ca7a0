# -*- coding: utf-8 -*-
"""The make_profile module: the make.profile link eselect profile writes."""

from __future__ import annotations

import os

import pytest

from ansible_collections.gse.stateless.plugins.modules import make_profile as mod
from portage_module_harness import run_module

PORTAGEQ = "/usr/bin/portageq"


@pytest.fixture
def root(tmp_path):
    (tmp_path / "etc/portage").mkdir(parents=True)
    profiles = tmp_path / "var/db/repos/gentoo/profiles"
    (profiles / "default/linux/amd64/23.0").mkdir(parents=True)
    (profiles / "gse/amd64").mkdir(parents=True)
    (profiles / "profiles.desc").write_text(
        "# arch  profile  status\namd64\tdefault/linux/amd64/23.0\tstable\n")
    return tmp_path


def test_links_relative_to_the_repo_named_by_portageq(root, monkeypatch):
    # portageq answers /var/db/repos/gentoo; the module is pointed at the
    # temporary root only for the files it checks and writes.
    monkeypatch.setattr(mod, "MAKE_PROFILE", str(root / "etc/portage/make.profile").lstrip("/"))
    location = str(root / "var/db/repos/gentoo")
    run = run_module(mod.main, dict(profile="default/linux/amd64/23.0"),
                     respond=lambda argv: (0, location + "\n", ""))
    assert not run.failed, run.result
    assert run.argvs == [[PORTAGEQ, "get_repo_path", "/", "gentoo"]]
    link = root / "etc/portage/make.profile"
    assert os.readlink(str(link)) == os.path.relpath(location + "/profiles/default/linux/amd64/23.0",
                                                     str(root / "etc/portage"))
    assert run.result["changed"] is True


def test_target_is_what_eselect_writes_and_rerun_is_not_changed(root):
    args = dict(profile="gentoo:default/linux/amd64/23.0", repo_path="/var/db/repos/gentoo", root=str(root))
    run = run_module(mod.main, args, diff=True)
    assert run.argvs == []
    assert run.result["link"] == "../../var/db/repos/gentoo/profiles/default/linux/amd64/23.0"
    assert os.readlink(str(root / "etc/portage/make.profile")) == run.result["link"]
    assert os.path.isdir(str(root / "etc/portage/make.profile"))
    again = run_module(mod.main, args)
    assert again.result["changed"] is False


def test_unlisted_profile_needs_allow_unlisted(root):
    args = dict(profile="gse/amd64", repo_path="/var/db/repos/gentoo", root=str(root))
    refused = run_module(mod.main, args)
    assert refused.failed and "profiles.desc" in refused.result["msg"]
    assert not os.path.lexists(str(root / "etc/portage/make.profile"))
    allowed = run_module(mod.main, dict(args, allow_unlisted=True))
    assert allowed.result["changed"] is True
    assert allowed.result["link"] == "../../var/db/repos/gentoo/profiles/gse/amd64"


def test_missing_profile_fails(root):
    run = run_module(mod.main, dict(profile="default/linux/arm64/23.0", repo_path="/var/db/repos/gentoo",
                                    root=str(root), allow_unlisted=True))
    assert run.failed and "does not exist" in run.result["msg"]


def test_unknown_repo_fails_with_the_portageq_command(root):
    run = run_module(mod.main, dict(profile="x", repo="nosuch"), respond=lambda argv: (1, "", "no such repo\n"))
    assert run.failed and run.result["cmd"] == [PORTAGEQ, "get_repo_path", "/", "nosuch"]


def test_check_mode_leaves_the_old_link(root):
    os.symlink("../../var/db/repos/gentoo/profiles/gse/amd64", str(root / "etc/portage/make.profile"))
    run = run_module(mod.main, dict(profile="default/linux/amd64/23.0", repo_path="/var/db/repos/gentoo",
                                    root=str(root)), check_mode=True)
    assert run.result["changed"] is True
    assert os.readlink(str(root / "etc/portage/make.profile")) == "../../var/db/repos/gentoo/profiles/gse/amd64"


def test_a_make_profile_directory_is_not_replaced(root):
    (root / "etc/portage/make.profile").mkdir()
    run = run_module(mod.main, dict(profile="default/linux/amd64/23.0", repo_path="/var/db/repos/gentoo",
                                    root=str(root)))
    assert run.failed and "directory" in run.result["msg"]
