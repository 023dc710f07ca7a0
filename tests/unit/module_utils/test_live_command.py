# -*- coding: utf-8 -*-
"""live_command runs a real process: its output is returned and copied to the log as it comes."""
from __future__ import annotations

import sys

import pytest

from ansible_collections.gse.stateless.plugins.module_utils import live_command


class FakeModule:
    """The two things run_logged uses of an AnsibleModule."""
    run_command_environ_update = {"FROM_MODULE": "m"}

    def fail_json(self, **kw):
        raise AssertionError(kw)


# The child checks, before printing its second line, that the first one is
# already in the log: the copy happens while it runs, not after it exits.
CHILD = r"""
import os, sys, time
log = sys.argv[1]
print("first out", flush=True)
print("first err", file=sys.stderr, flush=True)
for _ in range(600):
    text = open(log).read()
    if "first out" in text and "first err" in text:
        break
    time.sleep(0.05)
else:
    sys.exit(3)
print("env " + os.environ["FROM_MODULE"] + os.environ["FROM_CALL"], flush=True)
sys.exit(4)
"""


def test_output_is_returned_and_copied_while_the_command_runs(tmp_path):
    log = tmp_path / "var/log/gse-live.log"
    log.parent.mkdir(parents=True)
    log.write_text("earlier run\n")
    rc, out, err = live_command.run_logged(FakeModule(), [sys.executable, "-c", CHILD, str(log)], str(log),
                                           environ_update={"FROM_CALL": "c"})
    assert rc == 4
    assert out == "first out\nenv mc\n"
    assert err == "first err\n"
    lines = log.read_text().splitlines()
    assert lines[0] == "earlier run"          # appended, not replaced
    assert sorted(lines[1:3]) == ["first err", "first out"] and lines[3] == "env mc"


def test_environment_is_the_one_run_command_builds(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", "/tmp/x/ansible_modlib.zip:/usr/lib/py")
    env = live_command.command_environment(FakeModule(), {"TERM": "dumb"})
    assert env["PYTHONPATH"] == "/usr/lib/py"
    assert env["FROM_MODULE"] == "m" and env["TERM"] == "dumb"


def test_a_missing_program_fails_the_module(tmp_path):
    with pytest.raises(AssertionError) as e:
        live_command.run_logged(FakeModule(), [str(tmp_path / "nothere")], str(tmp_path / "log"))
    assert "cannot run" in e.value.args[0]["msg"]
