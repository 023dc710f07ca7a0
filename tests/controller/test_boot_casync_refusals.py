"""Boot one client in QEMU (TCG) against a format-2 publication tree and
check the console and the disk afterwards.  One client's life, in order:

first install (the tarball: nothing to seed from) -> a forged chunk, a
missing chunk, an altered chunk, a cut chunk (each refused: the installed
system boots, the target holds no record, the backup slot holds only a
verified system) -> a client clock in the past (named) -> a server that
stalls in the middle of a chunk, of the tarball, of the pointer (each given
up within the bounds of the client config.d; the installed system boots) ->
power cut in the middle of a casync extract (the server holds a chunk), then
the next boot installs from scratch.
"""
import os
import shutil
import subprocess
import threading

import pytest

import pubtree
import vm
from client import Client, booted, loopback_http
from conftest import need
from test_boot_casync import MiB, boot_counting, store_files


@pytest.fixture(scope="module")
def client(controller, signing, tmp_path_factory):
    need("casync")
    c = Client(controller, signing, str(tmp_path_factory.mktemp("client")), casync=True)
    c.publish("v1", payload=4 * MiB, payload_seed=1)
    out, served = boot_counting(c)
    # GSE_TRANSFER=auto: nothing installed to seed the chunks from, so the
    # first install is the verified tarball stream, not one GET per chunk.
    assert "gse: version: no installed system to seed the chunks from: the chunks of the root are not used" in out
    assert "gse: installing v1 on /dev/vda2 (tarball)" in out
    assert not [p for p, n in served if p.startswith("/store/")]
    assert booted(out) == "v1"
    return c


def test_forged_chunk_is_refused_and_the_installed_system_boots(client):
    before = store_files(client)
    client.publish("bad-forged", payload=4 * MiB, payload_seed=1,
                   extra={"usr/share/gse-test/new": os.urandom(256 << 10)})
    new = sorted(store_files(client) - before)
    assert new
    # A well-formed chunk of other content under a new chunk's name.
    shutil.copy(sorted(before)[0], new[0])
    out, served = boot_counting(client)
    assert "image refused: a chunk does not match the signed index" in out, out[-3000:]
    assert_refused(client, out, "bad-forged", "digest", "a chunk does not match the signed index")


def publish_new_chunks(client, version):
    """Publish version: v1's payload and a new file, so that a few chunks
    are new (no seed holds them: they travel).  Returns the new chunks."""
    before = store_files(client)
    client.publish(version, payload=4 * MiB, payload_seed=1,
                   extra={"usr/share/gse-test/new": os.urandom(256 << 10)})
    new = sorted(store_files(client) - before)
    assert new
    return new


def signed_sha(client, version):
    return pubtree.sha512(os.path.join(client.tree, "images", version, "image.tar.zst"))


def assert_old_system_kept(client, out):
    """v1 boots from SYSFS (vda2), nothing was installed, and the other
    slot is either unrecorded (and not BACKUPFS) or a verified copy of v1
    (the backup refreshed from SYSFS): never the bytes of a refused
    attempt."""
    assert "gse: installed " not in out
    assert booted(out) == "v1"
    labels = vm.labels(client.disk)
    assert labels[2][0] == "SYSFS" and "version=v1" in labels[2][1].splitlines()
    label3, record3 = labels[3]
    if record3 is None:
        assert label3 != "BACKUPFS", labels
    else:
        assert label3 == "BACKUPFS" and "version=v1" in record3.splitlines(), labels
        assert vm.partition_tree(client.disk, 3) == vm.tree_digest(client.root("v1"))


def assert_refused(client, out, version, verdict, says):
    """The attempt was made on the other slot, refused with its class in
    the refusal record (naming the signed digest) and its reason in the
    log kept in the state area."""
    assert f"gse: installing {version} on /dev/vda3 " in out
    assert_old_system_kept(client, out)
    refused = vm.state_file(client.disk, "refused").splitlines()[-1]
    assert f" {version} signed={signed_sha(client, version)} {verdict}: " in refused, refused
    assert says in vm.state_file(client.disk, "log/controller.log")


@pytest.mark.parametrize("damage, verdict, says", [
    ("missing", "missing", "image refused: a chunk is missing from the store"),
    ("altered", "digest", "image refused: a chunk does not match the signed index"),
    ("truncated", "digest", "image refused: a chunk of the store does not decompress (truncated)"),
])
def test_damaged_store_is_refused_and_the_installed_system_boots(client, damage, verdict, says):
    version = f"bad-{damage}"
    chunk = publish_new_chunks(client, version)[0]
    if damage == "missing":
        # A sync that copied the index but not all of its chunks.
        os.unlink(chunk)
    elif damage == "altered":
        # The chunk's own bytes with one changed, compressed again: it still
        # decompresses, to bytes its id does not name.
        raw = bytearray(subprocess.run(["zstd", "-dc", chunk], check=True, capture_output=True).stdout)
        raw[len(raw) // 2] ^= 0xFF
        data = subprocess.run(["zstd", "-q", "-c"], input=bytes(raw), check=True, capture_output=True).stdout
        with open(chunk, "wb") as f:
            f.write(data)
    else:
        with open(chunk, "rb") as f:
            data = f.read()
        with open(chunk, "wb") as f:
            f.write(data[:len(data) // 2])
    out, served = boot_counting(client)
    assert says in out, out[-3000:]
    assert "(casync)" in out and "(seeds: /run/gse/mnt.seed" in out
    assert_refused(client, out, version, verdict, says)


def test_client_clock_in_the_past_is_named(client):
    client.publish("v5", payload=4 * MiB, payload_seed=1)
    out, served = boot_counting(client, qemu_args=("-rtc", "base=2020-01-01T00:00:00"))
    assert "gse: WARNING: version refused: version.txt: clock: the key or signature is dated after " \
        "this client's clock (2020-01-01T" in out
    assert booted(out) == "v1"
    assert "v5" not in vm.by_label(client.disk).values()
    assert not served or all(p == "/version.txt" or p == "/config.txt" for p, n in served)


# Small bounds, set by the server's client config.d (controller.conf): a stall
# is less than 1024 bytes/s over 3 s.  The pointer is fetched before any
# config.d is read: its bound is the controller's (twice GSE_CONNECT_TIMEOUT).
BOUNDS = "GSE_STALL_TIME=3\nGSE_STALL_SPEED=1024\n"


def small_bounds(client):
    if not os.path.exists(os.path.join(client.tree, "config.txt")):
        pubtree.add_config(client.gnupghome, client.tree, 1, {"controller.conf": BOUNDS})


@pytest.mark.parametrize("what", ["chunk", "tarball", "pointer"])
def test_server_stalling_in_an_object_falls_back_to_the_installed_system(client, what):
    """The server sends the headers and the first bytes of an object, then
    holds the connection open and silent (until the boot is over): the
    download is given up within the bounds, the failure is named, and the
    installed system boots.  No timing is asserted: the boot ending at all
    (the test's deadline is the boot's timeout) is what shows the bound."""
    small_bounds(client)
    refused_before = vm.state_file(client.disk, "refused")
    serial_before = vm.state_file(client.disk, "serial")
    cmdline = ""
    if what == "chunk":
        version = "bad-stall-chunk"
        publish_new_chunks(client, version)
        stall = dict(stall_after=100, stall_prefix="/store/")
    elif what == "tarball":
        version = "bad-stall-tarball"
        publish_new_chunks(client, version)
        cmdline = "gse.transfer=tarball"
        stall = dict(stall_after=64 << 10, stall_prefix=f"/images/{version}/image.tar.zst")
    else:
        stall = dict(stall_after=100, stall_prefix="/version.txt")
    with loopback_http(client.tree, **stall) as port:
        out, secs, rc = client.boot(port=port, cmdline=cmdline)
    log = vm.state_file(client.disk, "log/controller.log")
    if what == "pointer":
        says = "gse: WARNING: version check failed: version.txt: stalled or timed out (HTTP 200): curl: (28)"
        assert says in out, out[-3000:]
        assert says[len("gse: "):] in log
        assert "gse: installing" not in out
        assert booted(out) == "v1"
        # Nothing was judged: no refusal, no serial learnt.
        assert vm.state_file(client.disk, "refused") == refused_before
        assert vm.state_file(client.disk, "serial") == serial_before
        assert_old_system_kept(client, out)
        return
    assert "using the cached client config.d" in out or "config.d: serial 1 fetched and exported" in out
    if what == "chunk":
        says = "image download stalled or timed out: casync: less than 1024 bytes/s over the last 3 s"
        assert f"gse: installing {version} on /dev/vda3 (casync)" in out
    else:
        says = "image download stalled or timed out: curl: (28) Operation too slow. " \
            "Less than 1024 bytes/sec transferred the last 3 seconds"
        assert f"gse: installing {version} on /dev/vda3 (tarball)" in out
    assert says in out, out[-3000:]
    assert_refused(client, out, version, "stall", says)


def test_power_cut_in_a_casync_extract_then_the_next_boot(client):
    """The server holds a chunk the extract needs; the power is cut while it
    waits (the server says when: deterministic).  The half-written target is
    not marked complete and not the backup; the next boot installs the
    image from scratch, and the system equals the image."""
    publish_new_chunks(client, "v6")
    refused_before = vm.state_file(client.disk, "refused")
    stalled = threading.Event()
    with loopback_http(client.tree, stall_after=100, stall_prefix="/store/", stalled=stalled) as port:
        out, secs, rc = client.boot(port=port, kill_when=stalled)
    assert stalled.is_set()
    assert "gse: installing v6 on /dev/vda3 (casync)" in out and "gse: casync extract" in out
    assert booted(out) is None and "gse: installed v6" not in out
    labels = vm.labels(client.disk)
    assert labels[2][0] == "SYSFS" and "version=v1" in labels[2][1].splitlines()
    # The target was relabelled before a byte went in: not BACKUPFS, no record.
    assert labels[3] == ("DEPRIVED", None), labels
    # No verdict was reached: nothing refused, no back-off, retried at once.
    assert vm.state_file(client.disk, "refused") == refused_before
    assert vm.state_file(client.disk, f"backoff/{signed_sha(client, 'v6')}") is None
    out, served = boot_counting(client)
    assert "gse: installing v6 on /dev/vda3 (casync)" in out
    assert "gse: installed v6 (serial" in out and booted(out) == "v6"
    assert vm.by_label(client.disk) == {"GSESTATE": None, "SYSFS": "v6", "BACKUPFS": "v1"}
    assert vm.partition_tree(client.disk, 3) == vm.tree_digest(client.root("v6"))
