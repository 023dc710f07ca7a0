"""Boot one client in QEMU (TCG) against a format-2 publication tree and
check the console and the disk afterwards: a chunk forged in the store is
refused (casync checks it against the signed index) and the installed system
boots; a client whose clock is in the past names the clock.
"""
import os
import shutil

import pytest

import vm
from client import Client, booted
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
    assert "gse: version: no installed system to seed the chunks from: the verified tarball is streamed" in out
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
    assert "gse: installed bad-forged" not in out
    assert booted(out) == "v1"
    labels = vm.by_label(client.disk)
    assert labels["SYSFS"] == "v1" and "bad-forged" not in labels.values()
    refused = vm.state_file(client.disk, "refused").splitlines()[-1]
    assert " bad-forged signed=" in refused and " digest: casync: " in refused


def test_client_clock_in_the_past_is_named(client):
    client.publish("v5", payload=4 * MiB, payload_seed=1)
    out, served = boot_counting(client, qemu_args=("-rtc", "base=2020-01-01T00:00:00"))
    assert "gse: WARNING: version refused: version.txt: clock: the key or signature is dated after " \
        "this client's clock (2020-01-01T" in out
    assert booted(out) == "v1"
    assert "v5" not in vm.by_label(client.disk).values()
    assert not served or all(p == "/version.txt" or p == "/config.txt" for p, n in served)
