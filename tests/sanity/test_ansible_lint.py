"""ansible-lint, production profile (configuration in .ansible-lint), passes on the checkout."""
import os
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
VENV_BIN = os.path.join(ROOT, ".venv", "bin")

pytestmark = pytest.mark.sanity


def test_ansible_lint_production_profile_passes():
    env = dict(os.environ)
    # ansible-lint finds ansible-playbook and friends on PATH; this is where
    # they are, and it warns when it has to add the directory itself.
    env["PATH"] = VENV_BIN + os.pathsep + env.get("PATH", "")
    env["NO_COLOR"] = "1"
    proc = subprocess.run([os.path.join(VENV_BIN, "ansible-lint")], cwd=ROOT, env=env,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=1800, check=False)
    assert proc.returncode == 0, proc.stdout[-20000:]
    assert "Profile 'production' was required, and it passed" in proc.stdout, proc.stdout[-5000:]
