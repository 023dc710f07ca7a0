# -*- coding: utf-8 -*-
"""The wake module: real magic packets captured on a veth pair in a network
namespace the test creates (tests/wolnet.py); check mode sends nothing; bad
input fails before the first packet."""

from __future__ import annotations

import pytest

from ansible_collections.gse.stateless.plugins.modules import wake as mod
from portage_module_harness import run_module
from tests.wolnet import BROADCAST, magic, nothing_more, received, segment  # noqa: F401 (fixture)


def run_in(seg, args, check_mode=False):
    with seg.inside():
        return run_module(mod.main, args, check_mode=check_mode)


def test_targets_are_woken(segment):
    rx = segment.listener()
    run = run_in(segment, dict(targets=[{"mac": "52:54:00:12:34:56", "hostname": "pc01"}, "52-54-00-12-34-57"],
                               broadcast=BROADCAST))
    assert not run.failed, run.result
    assert run.result["changed"] is True
    assert run.result["woken"] == [{"mac": "52:54:00:12:34:56", "hostname": "pc01", "sent": True},
                                   {"mac": "52:54:00:12:34:57", "hostname": "", "sent": True}]
    assert [d for d, _ in received(rx, 2)] == [magic("52:54:00:12:34:56"), magic("52:54:00:12:34:57")]
    assert nothing_more(rx)


def test_group_from_the_configd_dirs(segment, tmp_path):
    (tmp_path / "hosts").mkdir()
    (tmp_path / "hosts/groups.yml").write_text("room7:\n  - {mac: '52:54:00:07:00:01', hostname: r7a}\n")
    rx = segment.listener()
    run = run_in(segment, dict(group="room7", configd_dirs=[str(tmp_path / "none"), str(tmp_path)],
                               interface="w0"))
    assert not run.failed, run.result
    assert [w["hostname"] for w in run.result["woken"]] == ["r7a"]
    assert [d for d, _ in received(rx, 1)] == [magic("52:54:00:07:00:01")]

    missing = run_in(segment, dict(group="room8", configd_dirs=[str(tmp_path)]))
    assert missing.failed and "no group room8" in missing.result["msg"]


def test_check_mode_sends_nothing(segment):
    rx = segment.listener()
    run = run_in(segment, dict(targets=["52:54:00:12:34:56"], interface="w0"), check_mode=True)
    assert not run.failed and run.result["changed"] is True
    assert run.result["woken"] == [{"mac": "52:54:00:12:34:56", "hostname": "", "sent": False}]
    assert nothing_more(rx)


@pytest.mark.parametrize("args,message", [
    (dict(targets=["52:54:00:12:34:56", "52:54:00:12:34"]), "targets[1]"),
    (dict(targets=["52:54:00:12:34:56"], broadcast="224.0.0.1"), "not a broadcast"),
    (dict(targets=["52:54:00:12:34:56"], stagger=3600), "stagger"),
    (dict(targets=[{"mac": "52:54:00:12:34:56", "host": "x"}]), "unknown key host"),
])
def test_bad_input_fails_with_nothing_sent(segment, args, message):
    rx = segment.listener()
    run = run_in(segment, dict(args, interface="w0"))
    assert run.failed and message in run.result["msg"], run.result
    assert run.result["woken"] == [] and run.result["changed"] is False
    assert nothing_more(rx)


def test_a_missing_interface_fails_with_nothing_woken(segment):
    run = run_in(segment, dict(targets=["52:54:00:12:34:56"], interface="nosuch0"))
    assert run.failed and run.result["changed"] is False
    assert "No such device" in run.result["msg"]
