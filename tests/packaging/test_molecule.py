"""`molecule test` of the chroot scenario (molecule/default): parts B-J on the fixture.

The scenario's instance is the fixture's stage3 extracted under a temporary
directory of /var/tmp; its mounts are tied to this test process
(GSE_MOUNT_OWNER_PID), so they are released even if molecule dies half way,
and the teardown checks that nothing stays mounted before removing anything.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

from tests.fixture.mounts import mounts_under
from tests.packaging.test_version import ROOT

BIN = os.path.dirname(sys.executable)
ANSI = re.compile(r"\x1b\[[0-9;]*m")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="the scenario mounts a chroot: root only")


def release(parent):
    """Unmount what is left under ``parent``; return what was left."""
    left = mounts_under(parent)
    for point in sorted(left, key=len):
        subprocess.run(["umount", "-R", point], capture_output=True)
    return left


@pytest.fixture
def scenario_dirs(gse_fixture):
    parent = tempfile.mkdtemp(prefix="gse-molecule-", dir="/var/tmp")
    try:
        yield {"instance": os.path.join(parent, "instance"), "ephemeral": os.path.join(parent, "ephemeral")}
    finally:
        left = release(parent)
        if mounts_under(parent):
            raise RuntimeError(f"{parent}: mounts could not be released; left in place")
        # --one-file-system: never enter a mount that appeared since the check.
        subprocess.run(["rm", "-rf", "--one-file-system", parent], check=True)
        assert left == [], f"molecule left mounts under {parent}: {left}"


def test_molecule_converges_parts_b_to_j_idempotently(scenario_dirs):
    env = dict(os.environ,
               PATH=BIN + os.pathsep + os.environ["PATH"],
               GSE_MOLECULE_DIR=scenario_dirs["instance"],
               MOLECULE_EPHEMERAL_DIRECTORY=scenario_dirs["ephemeral"],
               GSE_MOUNT_OWNER_PID=str(os.getpid()),
               NO_COLOR="1", ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    p = subprocess.run([os.path.join(BIN, "molecule"), "test", "-s", "default"], cwd=ROOT, env=env,
                       capture_output=True, text=True, timeout=1800)
    out = ANSI.sub("", p.stdout + p.stderr)
    assert p.returncode == 0, out[-6000:]
    for step in ("create", "prepare", "converge", "idempotence", "verify", "cleanup", "destroy"):
        assert re.search(r"default \S+ %s: Executed: Successful" % step, out), (step, out[-4000:])
    # destroy.yml released the mounts and removed the instance.
    assert mounts_under(os.path.dirname(scenario_dirs["instance"])) == []
    assert not os.path.exists(scenario_dirs["instance"])
