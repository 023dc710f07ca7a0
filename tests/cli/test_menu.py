"""The main menu in a real terminal (tmux): configuration files, System menu, time states."""
import os
import shlex
import shutil
import subprocess
import time

import pytest

from conftest import GSE
from gse import config

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


class Pane:
    def __init__(self, tmp, command):
        self.sock = "gse-menu-%d" % os.getpid()
        self.tmux = ["tmux", "-L", self.sock]
        subprocess.run(self.tmux + ["-f", "/dev/null", "new-session", "-d", "-s", "menu", "-x", "250",
                                    "-y", "50", command], check=True, cwd=str(tmp))

    def text(self):
        return subprocess.run(self.tmux + ["capture-pane", "-p", "-t", "menu"], capture_output=True,
                              text=True, check=True).stdout

    def wait(self, needle, timeout=300):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            screen = self.text()
            if needle in screen:
                return screen
            time.sleep(0.2)
        raise AssertionError("%r not on the screen:\n%s" % (needle, self.text()))

    def keys(self, *keys):
        subprocess.run(self.tmux + ["send-keys", "-t", "menu", *keys], check=True)

    def close(self):
        subprocess.run(self.tmux + ["kill-server"], check=False)


def test_main_menu(gse_env):
    users = gse_env.write_config("users", "gse_users: []  # marker-one\n")
    editor = gse_env.tmp / "editor"
    editor.write_text("#!/bin/sh\nsed -i 's/marker-one/marker-two/' \"$1\"\n")
    editor.chmod(0o755)
    env = dict(gse_env.env, EDITOR=str(editor), TERM="xterm")
    # curses takes COLUMNS/LINES over the pane's size (pytest-xdist workers set 80x24).
    env = {k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")}
    command = "env -i %s %s -mm -q; echo GSE-EXIT=$?; sleep 600" % (
        " ".join(shlex.quote("%s=%s" % kv) for kv in env.items()), GSE)
    pane = Pane(gse_env.tmp, command)
    try:
        screen = pane.wait("5) Quit")
        for item in ("1) Configuration files", "2) System menu", "3) Time states",
                     "4) Build the controller", "5) Quit"):
            assert item in screen

        # Configuration files by category: view, edit with $EDITOR, validate.
        pane.keys("1")
        names = [c[0] for c in config.categories()]
        # The screen is complete once the last category is drawn.
        screen = pane.wait("%d) %s" % (len(names), names[-1]) if len(names) < 10 else names[-1])
        for name, title in config.categories():
            assert name in screen and title[:30] in screen
        pane.keys(*["Down"] * names.index("users"), "Enter")
        pane.wait("Configuration: users")
        pane.keys("1")
        assert "View: users.yml" in pane.wait("marker-one")
        pane.keys("q")
        pane.keys("2")
        assert "Validate: users.yml" in pane.wait("OK     %s" % users)
        assert "marker-two" in users.read_text()
        pane.keys("q")
        users.write_text("- not a mapping\n")
        pane.keys("3")
        assert "expected a mapping of gse_* variables" in pane.wait("ERROR")
        users.write_text("gse_users: []\n")
        pane.keys("q", "q", "q")

        # System menu -> Build a system -> Precomp -> Initiate Build, with the flags of -mm.
        pane.wait("Main menu")
        pane.keys("2")
        pane.wait("System menu")
        pane.keys("1")
        assert "1) Catalyst" in pane.wait("2) Precomp")
        pane.keys("2")
        assert "Build a system: Precomp" in pane.wait("gse --base=precomp --quiet")
        pane.keys("1")
        # The questions of parts D, H, I and L: their defaults (tests/cli/test_questions.py).
        for hook in ("grebuild", "gker", "ginitrd", "gmark"):
            pane.wait("(%s): " % hook)
            pane.keys("Enter")
        screen = pane.wait("[exit code 0] Press Enter to return to the menu")
        assert "[12/12] Publishing the image" in screen
        assert gse_env.mounts() == []
        pane.keys("Enter")
        pane.wait("Build a system")
        pane.keys("q", "q")

        pane.wait("Main menu")
        pane.keys("3")
        pane.wait("No saved state")
        pane.keys("Enter")
        pane.wait("Main menu")
        pane.keys("5")
        pane.wait("GSE-EXIT=0")
    finally:
        pane.close()
    assert len(gse_env.builds()) == 1 and gse_env.records()[0]["gse_base"] == "precomp"
