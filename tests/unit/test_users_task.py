"""Part E's users task, run by Ansible in check mode on this host (nothing is created)."""
import os
import subprocess
import sys

import yaml

from gse import runner

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOK_BIN = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
SECRET = "Pl4nted-root-pw-77c1"


def _run(tmp_path, users):
    play = tmp_path / "play.yml"
    play.write_text(yaml.safe_dump([{
        "hosts": "localhost", "gather_facts": False, "vars": {"gse_users": users},
        "tasks": [{"ansible.builtin.include_tasks": os.path.join(ROOT, "roles", "configure", "tasks", "users.yml")}],
    }]))
    env = dict(os.environ, **runner.environment(), ANSIBLE_NOCOLOR="1")
    return subprocess.run([PLAYBOOK_BIN, "--check", "-c", "local", "-i", "localhost,", "-e",
                           "ansible_python_interpreter=" + sys.executable, str(play)],
                          capture_output=True, text=True, env=env, timeout=300)


def test_user_without_groups(tmp_path):
    """The documented form for the root password: a name and a password, no groups."""
    r = _run(tmp_path, [{"name": "root", "password": SECRET}, {"name": "gse-check-lab", "password": SECRET}])
    assert r.returncode == 0, r.stdout[-3000:]
    assert SECRET not in r.stdout + r.stderr


def test_failure_names_the_user_and_the_reason_without_the_password(tmp_path):
    # groups as a mapping (possible with -e or an inventory, which config.d's checks do not see):
    # the user module refuses it before check mode returns.
    r = _run(tmp_path, [{"name": "gse-check-lab", "groups": {"wheel": 1}, "password": SECRET}])
    assert r.returncode != 0
    assert "user gse-check-lab:" in r.stdout and "groups" in r.stdout.split("user gse-check-lab:")[1], \
        r.stdout[-3000:]
    assert SECRET not in r.stdout + r.stderr
