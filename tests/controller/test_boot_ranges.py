"""Boot one client in QEMU (TCG) against a publication tree whose pointer
names the tarball's casync blob index (tarball_index), and check the console
and the disk afterwards.  One client's life, in order:

first install in verified chunks (nothing to seed from: GSE_TRANSFER=auto
takes the tarball's chunks, each checked before tar reads it; the system
equals the image root) -> an update whose served tarball differs from the
signed index in one byte of a middle chunk (refused naming the chunk and the
digest received; the installed system boots; the other slot holds no
record) -> the genuine tarball back (installed: the forged bytes did not
blacklist the signed version) -> a plain static server without Range
support (the verified chunks install all the same: one request) -> a signed
tarball index that describes another tarball (refused before anything is
wiped).

The chunk sizes are smaller than part K's (pubtree.make_tarball_index) so
that a test image of a few MiB has several chunks.
"""
import os
import re
import shutil

import pytest

import pubtree
import vm
from client import Client, booted, loopback_http
from conftest import need
from test_boot_casync import MiB
from test_boot_casync_refusals import assert_old_system_kept, signed_sha


@pytest.fixture(scope="module")
def client(controller, signing, tmp_path_factory):
    need("casync")
    return Client(controller, signing, str(tmp_path_factory.mktemp("client")))


def chunk_ranges(client, version):
    """[(first, last)] of the chunks of version's tarball index (read with
    the controller's own parser on this host)."""
    from test_shell_lib import sh
    tarball = os.path.join(client.tree, "images", version, "image.tar.zst")
    work = os.path.join(client.work, f"ranges-{version}")
    os.makedirs(work, exist_ok=True)
    r = sh(f"gse_caibx_ranges {tarball}.caibx {os.path.getsize(tarball)} $T/list", work)
    assert r.returncode == 0, r.stderr
    with open(os.path.join(work, "list")) as f:
        return [tuple(map(int, line.split()[:2])) for line in f]


def test_first_install_in_verified_chunks(client):
    client.publish("v1", payload=4 * MiB, payload_seed=1, tarball_index=True)
    n = len(chunk_ranges(client, "v1"))
    assert n >= 4
    out, secs, rc = client.boot()
    assert "gse: installing v1 on /dev/vda2 (ranges)" in out, out[-3000:]
    assert re.search(r"gse: fetching images/v1/image\.tar\.zst into \S+, cut into %d chunks each checked before "
                     r"it is unpacked \(gse-chunk-gate\)" % n, out), out[-3000:]
    assert "gse: installed v1 (serial 1) on /dev/vda2" in out
    assert booted(out) == "v1"
    assert vm.partition_tree(client.disk, 2) == vm.tree_digest(client.root("v1"))


def test_forged_chunk_is_refused_and_the_genuine_version_installs_later(client):
    tarball = client.publish("v2", payload=4 * MiB, payload_seed=2, tarball_index=True)
    chunks = chunk_ranges(client, "v2")
    k = len(chunks) // 2
    a, b = chunks[k]
    genuine = open(tarball, "rb").read()
    signed = signed_sha(client, "v2")
    forged = bytearray(genuine)
    forged[(a + b) // 2] ^= 0xFF
    with open(tarball, "wb") as f:
        f.write(forged)
    out, secs, rc = client.boot()
    assert "gse: installing v2 on /dev/vda3 (ranges)" in out, out[-3000:]
    assert f"image refused: a chunk does not match the signed index: chunk {k + 1} of {len(chunks)} " \
           f"(bytes {a}-{b}): received {b - a + 1} bytes with SHA256 " in out
    assert_old_system_kept(client, out)
    refused = vm.state_file(client.disk, "refused").splitlines()[-1]
    assert f" v2 signed={signed} digest: chunk {k + 1} of " in refused
    # The genuine bytes are served again: the signed version installs (after
    # the back-off the failed attempt set, a boot or two).
    with open(tarball, "wb") as f:
        f.write(genuine)
    for _ in range(4):
        out, secs, rc = client.boot()
        if "gse: installing v2" in out:
            break
        assert booted(out) == "v1"
    assert "gse: installed v2 " in out, out[-3000:]
    assert booted(out) == "v2"
    assert vm.partition_tree(client.disk, 3) == vm.tree_digest(client.root("v2"))


def test_a_server_without_range_support_serves_the_verified_chunks(client):
    client.publish("v3", payload=4 * MiB, payload_seed=3, tarball_index=True)
    # Python's http.server: no Range, no keep-alive; the tarball is one
    # request, cut into its signed chunks on the client.
    with loopback_http(client.tree) as port:
        out, secs, rc = client.boot(port=port)
    assert "gse: installing v3 on " in out and "(ranges)" in out, out[-3000:]
    assert "gse: installed v3 " in out
    assert booted(out) == "v3"


def test_index_of_another_tarball_is_refused_before_anything_is_wiped(client):
    """A signed pointer whose tarball index (its digest and signature
    right) describes another tarball: refused with the reason named, before
    the target is touched; the installed system boots."""
    client.publish("v4", payload=4 * MiB, payload_seed=4, tarball_index=True)
    images = os.path.join(client.tree, "images")
    shutil.copy(os.path.join(images, "v3", "image.tar.zst.caibx"), os.path.join(images, "v4", "image.tar.zst.caibx"))
    os.unlink(os.path.join(images, "v4", "image.tar.zst.caibx.asc"))
    pubtree.detach_sign(client.gnupghome, os.path.join(images, "v4", "image.tar.zst.caibx"))
    client.serial += 1
    client.pointer = pubtree.set_version(client.gnupghome, client.tree, client.serial, "v4")
    out, secs, rc = client.boot()
    covers = os.path.getsize(os.path.join(images, "v3", "image.tar.zst"))
    signed = os.path.getsize(os.path.join(images, "v4", "image.tar.zst"))
    assert f"image refused: tarball index: malformed table (it covers {covers} bytes, the signed tarball has " \
           f"{signed})" in out, out[-3000:]
    assert "gse: installing v4" not in out
    assert booted(out) == "v3"
