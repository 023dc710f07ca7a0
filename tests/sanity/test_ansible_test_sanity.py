"""`ansible-test sanity` on the collection, through tests/sanity/run.

The first run on a machine builds ansible-test's virtual environments (about
eight minutes here, mostly pip); later runs reuse them (under two minutes).
"""
import os
import re
import shutil
import subprocess

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RUN = os.path.join(ROOT, "tests", "sanity", "run")

pytestmark = pytest.mark.sanity

# Tests that have something to check in this collection; each must have run.
EXPECTED = ["ansible-doc", "compile", "import", "pep8", "pylint", "validate-modules", "yamllint",
            "runtime-metadata", "shebang", "changelog"]


def run_sanity(checkout, *args):
    return subprocess.run([os.path.join(checkout, "tests", "sanity", "run")] + list(args), cwd=checkout,
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          timeout=3600, check=False)


def test_sanity_passes():
    proc = run_sanity(ROOT)
    assert proc.returncode == 0, proc.stdout[-30000:]
    ran = set(re.findall(r'^Running sanity test "([^"]+)"', proc.stdout, re.M))
    assert set(EXPECTED) <= ran, "not run: %s\n%s" % (sorted(set(EXPECTED) - ran), proc.stdout[-5000:])


def test_sanity_reports_a_fault_in_a_module(tmp_path):
    """The runner tests the checkout it belongs to and fails on what ansible-test finds."""
    checkout = tmp_path / "checkout"
    files = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, stdout=subprocess.PIPE,
                           check=True).stdout.decode().split("\0")
    for name in filter(None, files):
        src = os.path.join(ROOT, name)
        if os.path.lexists(src):
            os.makedirs(os.path.dirname(checkout / name), exist_ok=True)
            shutil.copy2(src, checkout / name, follow_symlinks=False)
    os.symlink(os.path.join(ROOT, ".venv"), checkout / ".venv")
    module = checkout / "plugins" / "modules" / "timezone.py"
    module.write_text(module.read_text() + "\nx=1 # planted\n")
    subprocess.run(["git", "init", "-q"], cwd=checkout, check=True)
    subprocess.run(["git", "add", "-A"], cwd=checkout, check=True)

    proc = run_sanity(str(checkout), "--test", "pep8")

    assert proc.returncode != 0, proc.stdout[-5000:]
    lines = len(module.read_text().splitlines())
    assert "plugins/modules/timezone.py:%d:2: E225" % lines in proc.stdout, proc.stdout[-5000:]
