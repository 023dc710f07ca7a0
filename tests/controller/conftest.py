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

import builds  # noqa: E402
import pubtree  # noqa: E402
from builds import CACHE  # noqa: E402


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
    return builds.cached_controller(signing[1])
