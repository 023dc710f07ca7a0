"""Boot one client in QEMU (TCG) against format-2 publication trees (casync
index + chunk store, made with the real casync by pubtree.py) and check the
console and the disk afterwards.  One client's life, in order:

first install from the chunk store (no seed: staged in parallel) -> delta update (only the changed chunks
travel; the installed system equals the image root, as the full install
did) -> an image that does not fit (refused before anything is wiped) -> an
in-between serial replayed (refused).

test_boot_casync_refusals.py has the refusals that need their own client.
"""
import os
import shutil

import pytest

import pubtree
import vm
from client import Client, booted, loopback_http
from conftest import need

MiB = 1 << 20


@pytest.fixture(scope="module")
def client(controller, signing, tmp_path_factory):
    need("casync")
    return Client(controller, signing, str(tmp_path_factory.mktemp("client")), casync=True)


def store_files(client):
    store = os.path.join(client.tree, "store")
    return {os.path.join(d, f) for d, _, fs in os.walk(store) for f in fs}


def boot_counting(client, **kw):
    """Boot against a loopback server of the tree that counts the bytes it
    sends; returns (console, {path: bytes})."""
    served = []
    with loopback_http(client.tree, served=served) as port:
        out, secs, rc = client.boot(port=port, **kw)
    return out, served


def test_first_install_from_the_chunk_store(client):
    client.publish("v1", payload=8 * MiB, payload_seed=1)
    # casync asked for: the default (auto) streams the tarball when there is
    # no installed system to seed from (test_boot_casync_refusals.py).
    out, served = boot_counting(client, cmdline="gse.transfer=casync")
    assert "gse: installing v1 on /dev/vda2 (casync)" in out
    # No seed: the chunks are staged in parallel in RAM (the store fits the
    # memory available), casync extracts from there (and checks every
    # chunk against the index).
    chunks = store_files(client)
    assert f"gse: staging {len(chunks)} chunks into /run/gse/chunks (8 in parallel)" in out
    assert "gse: casync extract store into /run/gse/mnt.target " \
        "(seeds: none, staged: /run/gse/chunks)" in out
    assert "gse: installed v1 (serial 1) on /dev/vda2" in out
    assert booted(out) == "v1"
    # The tarball was not fetched: every chunk was, once (casync fetched
    # nothing itself).
    assert not [p for p, n in served if p.endswith(".tar.zst")]
    fetched = sorted(client.tree + p for p, n in served if p.startswith("/store/"))
    assert fetched == sorted(chunks)
    assert vm.by_label(client.disk) == {"GSESTATE": None, "SYSFS": "v1", "BACKUPFS": None}
    # No staging store on the target: the system is the image root, its
    # top directory's times included.
    assert vm.partition_tree(client.disk, 2) == vm.tree_digest(client.root("v1"))


def test_delta_update_fetches_only_changed_chunks_and_equals_the_image(client):
    before = store_files(client)
    tarball = client.publish("v2", payload=8 * MiB, payload_seed=1,
                             extra={"usr/share/gse-test/changed": b"v2\n" * 1000})
    new = store_files(client) - before
    new_bytes = sum(os.path.getsize(p) for p in new)
    out, served = boot_counting(client)
    assert "gse: installing v2 on /dev/vda3 (casync)" in out
    assert "(seeds: /run/gse/mnt.seed1)" in out
    assert booted(out) == "v2"
    fetched = sum(n for p, n in served if p.startswith("/store/"))
    # Only the chunks the seed lacks travel (the new ones, at most), far
    # less than the full image.
    assert 0 < fetched <= new_bytes + 64 * 1024, (fetched, new_bytes)
    assert fetched < os.path.getsize(tarball) / 10, (fetched, os.path.getsize(tarball))
    assert vm.by_label(client.disk) == {"GSESTATE": None, "SYSFS": "v2", "BACKUPFS": "v1"}
    # The delta install is the same system as the image root (which a full
    # install reproduces: test_first_install).
    assert vm.partition_tree(client.disk, 3) == vm.tree_digest(client.root("v2"))


def test_image_that_does_not_fit_is_refused_before_anything_is_wiped(client):
    labels = vm.labels(client.disk)
    # v3 (serial 3) is published but never served; v4 gets serial 6.
    client.publish("v3", payload_seed=1)
    client.serial += 2
    client.publish("v4", payload_seed=1, root_bytes=10 ** 12)
    out, served = boot_counting(client)
    assert "gse: WARNING: version refused: v4 does not fit: it needs 1000000000000 bytes" in out
    assert "gse: installing v4" not in out and "wiped" not in out and "mkfs" not in out
    assert not [p for p, n in served if p.startswith("/store/") or p.endswith(".caidx")]
    assert booted(out) == "v2"
    # Both systems untouched (the backup too: same filesystem, same record).
    assert vm.labels(client.disk) == labels


def test_in_between_serial_is_refused(client):
    # v4 (serial 6) was verified though not installed: a validly signed
    # pointer of serial 4 (between the installed v2 and v4) is a replay.
    assert client.serial == 6
    pubtree.set_version(client.gnupghome, client.tree, 4, "v3")
    out, served = boot_counting(client)
    assert "version refused: serial 4 (v3) is older than the accepted 6 (replayed pointer)" in out
    assert "gse: installing" not in out
    assert booted(out) == "v2"
    assert vm.state_file(client.disk, "serial").strip() == "6"
