"""Run one module of the collection in a playbook on localhost and return what it registered."""
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def run_module(tmp_path, module, args, check=False, env=None):
    out = tmp_path / "result.json"
    if out.exists():
        out.unlink()
    play = [{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {module: args, "register": "r", "ignore_errors": True, "check_mode": check},
            {"ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": str(out)},
             "check_mode": False},
        ],
    }]
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps(play))
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
         "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable, str(playbook)],
        cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    assert out.exists(), proc.stdout + proc.stderr
    return json.loads(out.read_text())
