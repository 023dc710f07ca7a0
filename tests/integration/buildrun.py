"""Run playbooks/build.yml on the fixture and read what happened.

One helper for every test that builds: it writes the variables the bundled
default needs (mirror URL, keyring, repositories, signing key, directories of
this test), runs ansible-playbook with the json callback and returns the
parsed result, the per-host stats and every task result.
"""
import json
import os
import subprocess
import sys
import time

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK_BIN = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")


class BuildEnv:
    """The directories and variables of one test build."""

    def __init__(self, workdir, fixture, url, gnupghome, fingerprint):
        self.dir = str(workdir)
        self.cdist = os.path.join(self.dir, "cdist")
        self.publish = os.path.join(self.dir, "publish")
        self.logs = os.path.join(self.dir, "log")
        self.fixture = fixture
        self.vars = {
            "gse_cdistdir": self.cdist,
            "gse_log_root": self.logs,
            "gse_publish_dir": self.publish,
            "gse_stage3_mirror": url,
            "gse_stage3_keyring": fixture.keyring,
            "gse_repos_dir": os.path.dirname(fixture.repo),
            "gse_gnupghome": gnupghome,
            "gse_signing_key": fingerprint,
        }

    def workdir(self, base="precomp"):
        return os.path.join(self.cdist, "workdir-" + base)

    def command(self, *args, extra=None, tags=None, skip_tags=None, env=None, playbook="build.yml"):
        """(argv, environment) of ansible-playbook for this build (playbooks/build.yml, or another
        playbook of the collection with the same variables)."""
        variables = dict(self.vars, **(extra or {}))
        vars_file = os.path.join(self.dir, "vars-%d.yml" % len(os.listdir(self.dir)))
        with open(vars_file, "w", encoding="utf-8") as fh:
            yaml.safe_dump(variables, fh)
        argv = [PLAYBOOK_BIN, os.path.join(ROOT, "playbooks", playbook),
                "-i", os.path.join(ROOT, "inventories/demo"), "-e", "@" + vars_file]
        if tags:
            argv += ["--tags", ",".join(tags)]
        if skip_tags:
            argv += ["--skip-tags", ",".join(skip_tags)]
        argv += list(args)
        e = dict(os.environ,
                 ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
                 ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
                 ANSIBLE_STDOUT_CALLBACK="gse_test_json",
                 ANSIBLE_CALLBACK_PLUGINS=os.path.join(os.path.dirname(os.path.abspath(__file__)), "callback_plugins"),
                 ANSIBLE_NOCOLOR="1")
        e.update(env or {})
        return argv, e

    def start(self, *args, **kwargs):
        """Start the build in the background; its output goes to ``started.log``."""
        argv, e = self.command(*args, **kwargs)
        log = open(os.path.join(self.dir, "started.log"), "w", encoding="utf-8")
        return subprocess.Popen(argv, cwd=ROOT, env=e, stdout=log, stderr=subprocess.STDOUT)

    def run(self, *args, extra=None, tags=None, skip_tags=None, env=None, timeout=1800, playbook="build.yml"):
        """Run the build; return (rc, output parsed from the json callback)."""
        argv, e = self.command(*args, extra=extra, tags=tags, skip_tags=skip_tags, env=env, playbook=playbook)
        p = subprocess.run(argv, cwd=ROOT, env=e, capture_output=True, text=True, timeout=timeout)
        self.wait_released()
        with open(os.path.join(self.dir, "last-run.log"), "w", encoding="utf-8") as fh:
            fh.write(p.stdout + "\n--- stderr ---\n" + p.stderr)
        try:
            out = json.loads(p.stdout[p.stdout.index("{"):])
        except ValueError:
            raise AssertionError("ansible-playbook printed no JSON (rc=%d):\n%s\n%s" % (p.returncode, p.stdout[-3000:], p.stderr[-3000:]))
        return p.returncode, Result(out)

    def wait_released(self, seconds=30):
        """Wait (bounded) for the mount guard: it releases within a poll of the owner's exit.

        Every run has a guard, also one that mounted nothing (a catalyst
        build): it is done when its state file (workdir-*.mounts.json) is
        gone too, and only then may a test remove the directories.
        """
        import glob
        from ansible_collections.gse.stateless.plugins.module_utils.mountinfo import mounts_under
        deadline = time.monotonic() + seconds
        while (mounts_under(self.dir) or glob.glob(os.path.join(self.cdist, "workdir-*.mounts.json"))) \
                and time.monotonic() < deadline:
            time.sleep(0.1)


class Result:
    """What the json callback printed, with small accessors."""

    def __init__(self, data):
        self.data = data
        self.stats = data.get("stats", {})

    def tasks(self, host=None):
        for play in self.data.get("plays", []):
            for task in play.get("tasks", []):
                for h, res in task.get("hosts", {}).items():
                    if host is None or h == host:
                        yield task["task"]["name"], h, res

    def failed(self):
        return [(n, h, r) for n, h, r in self.tasks() if r.get("failed") and not r.get("ignore_errors")]

    def changed_tasks(self, host):
        return [n for n, h, r in self.tasks(host) if r.get("changed")]

    def ran(self, name_part, host=None):
        """Results of the tasks whose name contains ``name_part`` and that were not skipped."""
        return [r for n, h, r in self.tasks(host) if name_part in n and not r.get("skipped")]
