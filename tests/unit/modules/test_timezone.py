# -*- coding: utf-8 -*-
"""The timezone module: the /etc/localtime link and /etc/timezone."""

from __future__ import annotations

import os

import pytest

from ansible_collections.gse.stateless.plugins.modules import timezone as mod
from portage_module_harness import run_module


@pytest.fixture
def root(tmp_path):
    (tmp_path / "etc").mkdir()
    zone = tmp_path / "usr/share/zoneinfo/Europe"
    zone.mkdir(parents=True)
    (zone / "Athens").write_bytes(b"TZif2 Athens")
    (tmp_path / "usr/share/zoneinfo/UTC").write_bytes(b"TZif2 UTC")
    return tmp_path


def test_sets_the_link_and_the_file_then_is_idempotent(root):
    run = run_module(mod.main, dict(name="Europe/Athens", root=str(root)), diff=True)
    assert not run.failed, run.result
    assert run.argvs == []
    assert run.result["changed"] is True
    assert os.readlink(str(root / "etc/localtime")) == "../usr/share/zoneinfo/Europe/Athens"
    assert (root / "etc/localtime").read_bytes() == b"TZif2 Athens"
    assert (root / "etc/timezone").read_text() == "Europe/Athens\n"
    assert "Europe/Athens" in run.result["diff"]["after"]

    again = run_module(mod.main, dict(name="Europe/Athens", root=str(root)))
    assert again.result["changed"] is False and again.result["changed_files"] == []


def test_replaces_a_copied_zone_file(root):
    (root / "etc/localtime").write_bytes(b"TZif2 UTC")
    (root / "etc/timezone").write_text("Europe/Athens\n")
    run = run_module(mod.main, dict(name="UTC", root=str(root)))
    assert run.result["changed_files"] == [str(root / "etc/localtime"), str(root / "etc/timezone")]
    assert os.readlink(str(root / "etc/localtime")) == "../usr/share/zoneinfo/UTC"


def test_check_mode_touches_nothing(root):
    run = run_module(mod.main, dict(name="UTC", root=str(root)), check_mode=True)
    assert run.result["changed"] is True
    assert not os.path.lexists(str(root / "etc/localtime"))
    assert not (root / "etc/timezone").exists()


@pytest.mark.parametrize("zone", ["Mars/Olympus", "../../etc/passwd", "/UTC", "Europe"])
def test_unknown_or_unsafe_zones_fail(root, zone):
    run = run_module(mod.main, dict(name=zone, root=str(root)))
    assert run.failed
    assert not os.path.lexists(str(root / "etc/localtime"))
