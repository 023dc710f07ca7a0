"""The same inputs give the same image: real builds of the fixture through playbooks/build.yml.

Each build starts from nothing in its own directory (its own download of the
stage3, its own work directory, its own build id and time), with the same
inputs: the fixture's stage3 and repository and the same settings.  Their
tarballs must be byte-identical; what differs between the runs (the time the
build wrote each file, the build id, tar's process) must not reach the image.
A rebuild in the first build's directory with nothing changed then skips the
work whose inputs did not change (the build-tool round trip, the pack) and
gives the same tarball again.
"""
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile

import pytest

from ansible_collections.gse.stateless.plugins.module_utils.mountinfo import mounts_under

from tests.integration.buildrun import BuildEnv

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds chroot and mount: root only")


@pytest.fixture(scope="module")
def signing(gse_fixture):
    home = tempfile.mkdtemp(prefix="gse-gnupg-")
    shutil.rmtree(home)
    shutil.copytree(gse_fixture.gnupg_home, home, ignore=shutil.ignore_patterns("S.*", "*.lock"))
    yield home, gse_fixture.fingerprint
    subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True)
    shutil.rmtree(home, ignore_errors=True)


def tarball(env):
    """The image of the newest build of ``env``."""
    images = os.path.join(env.cdist, "images")
    return os.path.join(images, sorted(os.listdir(images))[-1], "image.tar.zst")


def sha512(path):
    h = hashlib.sha512()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def members(path):
    """{member name: digest of its header fields, pax records and content}, read from the tarball."""
    out = {}
    with subprocess.Popen(["zstd", "-dcq", path], stdout=subprocess.PIPE) as proc, \
            tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
        for m in tar:
            h = hashlib.sha256(repr((m.mode, m.uid, m.gid, m.mtime, m.type, m.linkname, m.size,
                                     sorted(m.pax_headers.items()))).encode())
            if m.isfile():
                h.update(tar.extractfile(m).read())
            out[m.name] = h.hexdigest()
    return out


def differences(first, second):
    a, b = members(first), members(second)
    return sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))


def test_two_builds_of_the_same_inputs_give_the_same_tarball(gse_fixture, fixture_http, signing):
    envs = []
    try:
        for _ in range(2):
            env = BuildEnv(tempfile.mkdtemp(prefix="gse-repro-", dir="/var/tmp"), gse_fixture, fixture_http, *signing)
            envs.append(env)
            rc, res = env.run()
            assert rc == 0, res.failed()
        first, second = (tarball(e) for e in envs)
        assert os.path.basename(os.path.dirname(first)) != os.path.basename(os.path.dirname(second))  # two build ids
        assert sha512(first) == sha512(second), "the tarballs differ in: %s" % differences(first, second)
        # The build did write files (their times are later than the stage's date), and the image
        # stores them with the stage's date.
        with open(envs[0].workdir() + ".extracted.json", encoding="utf-8") as f:
            epoch = json.load(f)["source_date_epoch"]
        newest = max(os.lstat(os.path.join(d, n)).st_mtime for d, _s, names in os.walk(envs[0].workdir())
                     for n in names)
        assert newest > epoch

        # A rebuild with nothing changed: no build-tool round trip, no pack, the same tarball.
        rc, res = envs[0].run()
        assert rc == 0, res.failed()
        assert tarball(envs[0]) != first
        assert sha512(tarball(envs[0])) == sha512(first)
        assert res.ran("Install eix") == [] and res.ran("Build the eix cache") == []
        assert res.ran("Deselect the build-only tools") == [] and res.ran("depclean") == []
        (pack,) = res.ran("Pack the system")
        assert not pack["packed"] and pack["reused"] == first, pack
    finally:
        for env in envs:
            env.wait_released()
            assert mounts_under(env.dir) == []
            shutil.rmtree(env.dir)
