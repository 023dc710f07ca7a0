"""The playbook's first task checks config.d as the gse command does, and shows no secret.

Runs roles/common (the dependency every part starts with) through plain
ansible-playbook on the build host, with a private config.d and log root.
"""
import os
import subprocess
import sys

import pytest
import yaml

from gse import runner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK_BIN = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
SECRET = "Pl4nted-secret-3f9a"


def _run(tmp_path, configd, *args):
    play = tmp_path / "play.yml"
    play.write_text(yaml.safe_dump([{"hosts": "gse_build_host", "gather_facts": False,
                                     "roles": [{"role": "gse.stateless.common"}]}]))
    extra = {"gse_base": "precomp", "gse_configd_dirs": [str(configd)], "gse_log_root": str(tmp_path / "log"),
             "gse_cdistdir": str(tmp_path / "cdist")}
    env = dict(os.environ, **runner.environment(), ANSIBLE_NOCOLOR="1")
    return subprocess.run([PLAYBOOK_BIN, str(play), "-i", os.path.join(ROOT, "inventories", "default", "hosts.yml"),
                           "-e", yaml.safe_dump(extra, default_flow_style=True).strip(), *args],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("text,message", [
    ("gse_ionice_class: true\n", "system.yml:1:19: gse_ionice_class: expected text, found True"),
    ("gse_min_free_mbs: 1\n", "unknown setting gse_min_free_mbs; did you mean gse_min_free_mb?"),
    ("gse_users: []\n", "system.yml:1:1: gse_users belongs in users.yml"),
    ("gse_users: [{name: root, password: pw}]\n", "gse_users belongs in users.yml"),
])
def test_playbook_refuses_what_gse_refuses(tmp_path, text, message):
    configd = tmp_path / "config.d"
    configd.mkdir()
    (configd / "system.yml").write_text(text)
    r = _run(tmp_path, configd)
    assert r.returncode != 0
    assert message in r.stdout, r.stdout[-3000:]
    assert not (tmp_path / "log").exists()  # refused before the log directory is made


@pytest.mark.parametrize("verbosity", ["", "-v", "-vv", "-vvv", "-vvvv"])
def test_secrets_of_configd_are_never_shown(tmp_path, verbosity):
    configd = tmp_path / "config.d"
    configd.mkdir()
    (configd / "users.yml").write_text(yaml.safe_dump(
        {"gse_users": [{"name": "root", "password": SECRET}, {"name": "lab", "password_hash": SECRET + "-hash"}]}))
    os.chmod(configd / "users.yml", 0o600)
    r = _run(tmp_path, configd, *([verbosity] if verbosity else []))
    assert r.returncode == 0, r.stdout[-3000:]
    assert "Load config.d" in r.stdout
    assert SECRET not in r.stdout + r.stderr


def test_playbook_refuses_secrets_readable_by_others(tmp_path):
    configd = tmp_path / "config.d"
    configd.mkdir()
    (configd / "users.yml").write_text(yaml.safe_dump({"gse_users": [{"name": "root", "password": SECRET}]}))
    os.chmod(configd / "users.yml", 0o640)
    r = _run(tmp_path, configd)
    assert r.returncode != 0 and "holds secrets (gse_users) but its mode is 0640" in r.stdout, r.stdout[-3000:]
    assert SECRET not in r.stdout
