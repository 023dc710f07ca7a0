"""Fixtures of the gse command's tests: a private config.d, work and log directories.

Runs that need a playbook use the stand-in in tests/cli/playbooks (same roles
and tags as the build sequence) unless a test asks for the real one.
"""
import glob
import json
import os
import subprocess
import sys

import pytest
import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
PLAYBOOKS = os.path.join(HERE, "playbooks")
GSE = os.path.join(os.path.dirname(sys.executable), "gse")
# Variables that would make gse think it runs over SSH or inside tmux.
SESSION_VARS = ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY", "TMUX", "STY")


def mounts_under(path):
    with open("/proc/self/mountinfo", encoding="utf-8") as f:
        targets = [line.split()[4] for line in f]
    return [t for t in targets if t == str(path) or t.startswith(str(path) + "/")]


class GseEnv:
    def __init__(self, tmp):
        self.tmp = tmp
        self.configd = tmp / "config.d"
        self.cdist = tmp / "cdist"
        self.logs = tmp / "log"
        self.states = tmp / "states"
        self.configd.mkdir()
        self.env = {k: v for k, v in os.environ.items() if k not in SESSION_VARS}
        # The stand-in playbooks' switches (fail a part, hold the run, ...):
        # not settings, so not in config.d, which refuses unknown names.
        self.switches = tmp / "switches.yml"
        self.env.update(GSE_CONFIGD=str(self.configd), GSE_PLAYBOOK_DIR=PLAYBOOKS,
                        GSE_TEST_SWITCHES=str(self.switches), ANSIBLE_NOCOLOR="1")
        self.write_config("system", {"gse_cdistdir": str(self.cdist), "gse_log_root": str(self.logs),
                                     "gse_state_dir": str(self.states), "gse_min_free_mb": 1})

    def write_config(self, category, data):
        path = self.configd / ("%s.yml" % category)
        path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
        os.chmod(path, 0o600)  # as config.d files that hold secrets must be
        return path

    def switch(self, data):
        """Set switches of the stand-in playbooks (tests/cli/playbooks)."""
        self.switches.write_text(yaml.safe_dump(data))

    def gse(self, *args, stdin=subprocess.DEVNULL, timeout=600, env=None):
        return subprocess.run([GSE, *args], stdin=stdin, capture_output=True, text=True,
                              env=env or self.env, timeout=timeout, cwd=str(self.tmp))

    def builds(self):
        return sorted(glob.glob(str(self.logs / "*")))

    def last_build(self):
        builds = self.builds()
        assert builds, "no $CLOCALLG was created"
        return builds[-1]

    def records(self, clocallg=None):
        path = os.path.join(clocallg or self.last_build(), "record")
        with open(path, encoding="utf-8") as f:
            return [json.loads(line) for line in f if line.strip()]

    def ran(self, clocallg=None):
        """Hooks whose "<hook> ran" task ran, in order, over every attempt of a build."""
        base = os.path.join(clocallg or self.last_build(), "ansible", "artifacts")
        out = []
        attempts = sorted(glob.glob(os.path.join(base, "build-*")),
                          key=lambda p: int(p.rsplit("-", 1)[1]))
        for attempt in attempts:
            events = []
            for f in glob.glob(os.path.join(attempt, "job_events", "*.json")):
                with open(f, encoding="utf-8") as fh:
                    events.append(json.load(fh))
            events.sort(key=lambda e: e["counter"])
            for e in events:
                task = (e.get("event_data") or {}).get("task", "")
                if e["event"] == "runner_on_ok" and task.endswith(" ran"):
                    out.append(task[:-4])
        return out

    def mounts(self):
        return mounts_under(self.tmp)

    def written(self):
        """Every path gse created under the temporary directory, besides config.d."""
        out = []
        for dirpath, dirnames, filenames in os.walk(self.tmp):
            for n in dirnames + filenames:
                p = os.path.join(dirpath, n)
                if not p.startswith(str(self.configd)):
                    out.append(p)
        return out


@pytest.fixture
def gse_env(tmp_path):
    env = GseEnv(tmp_path)
    try:
        yield env
    finally:
        # A test that failed half-way must not leave its mounts behind.
        for target in sorted(mounts_under(tmp_path), reverse=True):
            subprocess.run(["umount", "-l", target], check=False)
