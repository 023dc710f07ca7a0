"""Passwords planted in config.d appear nowhere: runner artifacts, job events, gse's output, the logs.

gse runs a small build playbook (GSE_PLAYBOOK_DIR) made of the real pieces
that read config.d and handle the passwords: roles/common (check and load
config.d) and part E's users task in check mode (this host's users are not
changed), with and without -v (Ansible's -vvv).
"""
import os

import pytest
import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SECRET = "Pl4nted-secret-91d2"
HASH = "$6$plantedsalt$" + "Q" * 20 + "planted-hash"


@pytest.fixture
def playbooks(tmp_path):
    d = tmp_path / "playbooks"
    d.mkdir()
    (d / "build.yml").write_text(yaml.safe_dump([{
        "name": "Secrets (test)", "hosts": "buildhost", "gather_facts": False,
        "vars": {"ansible_python_interpreter": "{{ ansible_playbook_python }}"},
        "roles": [{"role": "gse.stateless.common"}],
        "tasks": [{"name": "Users (check mode)", "check_mode": True, "block": [
            {"ansible.builtin.include_tasks": os.path.join(ROOT, "roles", "configure", "tasks", "users.yml")}]},
                  {"name": "Note where gse handed config.d over", "ansible.builtin.copy": {
                      "dest": str(tmp_path / "handover-path"), "content": "{{ gse_configd_file }}", "mode": "0600"}}],
    }]))
    return d


def _scan(root):
    hits = []
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            path = os.path.join(dirpath, name)
            if os.path.islink(path) or not os.path.isfile(path):
                continue
            with open(path, "rb") as f:
                data = f.read()
            if SECRET.encode() in data or HASH.encode() in data:
                hits.append(path)
    return hits


@pytest.mark.parametrize("verbose", [[], ["-v"]])
def test_no_secret_anywhere(gse_env, playbooks, verbose):
    gse_env.write_config("users", {"gse_users": [{"name": "root", "password": SECRET},
                                                 {"name": "gse-check-lab", "password_hash": HASH}]})
    os.chmod(gse_env.configd / "users.yml", 0o600)
    env = dict(gse_env.env, GSE_PLAYBOOK_DIR=str(playbooks))
    r = gse_env.gse("--base=precomp", "--non-interactive", *verbose, env=env)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr
    assert "Load config.d" in r.stdout
    assert SECRET not in r.stdout + r.stderr and HASH not in r.stdout + r.stderr
    clocallg = gse_env.last_build()
    assert os.listdir(os.path.join(clocallg, "ansible", "artifacts"))  # the runner's artifacts were written
    assert _scan(gse_env.logs) == [] and _scan(gse_env.cdist if gse_env.cdist.exists() else gse_env.logs) == []
    # gse read config.d once and handed it over in a private file, gone when gse exits.
    handover = (gse_env.tmp / "handover-path").read_text()
    assert handover and not os.path.exists(handover) and not os.path.exists(os.path.dirname(handover))
    assert "Load config.d as the gse command read and checked it" in r.stdout
