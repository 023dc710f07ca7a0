"""Fixtures of the controller boot tests: one controller per session (built
by playbooks/controller.yml, cached by content hash), one signing key,
publication trees served by nginx (gse serve) on loopback."""
import fcntl
import os
import shutil
import subprocess
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)

import pubtree  # noqa: E402
from gse import controller_build  # noqa: E402

CACHE = "/var/cache/gse-tests/controller"
KVER = os.environ.get("GSE_TEST_KVER") or sorted(
    d for d in os.listdir("/lib/modules") if os.path.exists(f"/boot/vmlinuz-{d}"))[-1] \
    if os.path.isdir("/lib/modules") else ""


def need(*tools):
    missing = [t for t in tools if not shutil.which(t)]
    if missing:
        pytest.skip(f"missing: {' '.join(missing)} (scripts/bootstrap installs them)")


@pytest.fixture(scope="session")
def signing(tmp_path_factory):
    """A GNUPGHOME with the test key (cached so that the controller, which
    carries the public key, is cached too)."""
    need("gpg", "gpgv")
    os.makedirs(CACHE, exist_ok=True)
    cached = os.path.join(CACHE, "gnupg")
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(cached, "gse.gpg")):
            shutil.rmtree(cached, ignore_errors=True)
            pubtree.make_key(cached + ".new")
            os.rename(cached + ".new", cached)
    home = str(tmp_path_factory.mktemp("gnupg"))
    shutil.copytree(cached, home, dirs_exist_ok=True, ignore=shutil.ignore_patterns("S.*"))
    os.chmod(home, 0o700)
    yield home, os.path.join(home, "gse.gpg")
    subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], check=False)


@pytest.fixture(scope="session")
def controller(signing):
    """kernel + initramfs built once per content hash by the controller role."""
    need("dracut", "qemu-system-x86_64", "busybox", "sfdisk")
    home, keyring = signing
    role = os.path.join(ROOT, "roles", "controller", "tasks", "build.yml")
    digest = controller_build.content_hash(
        extra=open(keyring, "rb").read() + open(role, "rb").read() + KVER.encode())[:16]
    out = os.path.join(CACHE, f"initramfs-{digest}")
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(out, "initramfs.img")):
            res = run_controller_playbook(out + ".new", keyring)
            assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
            shutil.rmtree(out, ignore_errors=True)
            os.rename(out + ".new", out)
    return {"kernel": os.path.join(out, "vmlinuz"), "initrd": os.path.join(out, "initramfs.img"),
            "dir": out, "keyring": keyring}


def run_controller_playbook(output, keyring, *extra):
    return subprocess.run(
        [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), os.path.join(ROOT, "playbooks", "controller.yml"),
         "-e", f"gse_controller_modules_dir={ROOT}/controller_dracut", "-e", f"gse_controller_kver={KVER}",
         "-e", f"gse_controller_output={output}", "-e", f"gse_controller_keyring={keyring}", *extra],
        capture_output=True, text=True, cwd=ROOT)
