"""Boot a client with an empty disk in QEMU (TCG) against a format-2 tree
whose store hands out a forged chunk, chunks asked for (gse.transfer=casync):
the chunks are staged in parallel in RAM (a tmpfs: the store fits the
memory available), casync refuses the forged one before writing it, the
target is left without a record of a complete system and without any chunk,
and the refusal names the class."""
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
    return Client(controller, signing, str(tmp_path_factory.mktemp("client")), casync=True)


def test_forged_chunk_in_the_staging_path_is_refused_and_nothing_is_complete(client):
    client.publish("v1", payload=4 * MiB, payload_seed=1)
    chunks = sorted(store_files(client))
    # The index's first chunk (the archive's start) replaced by another
    # chunk's well-formed bytes: curl stages it like any other.
    with open(os.path.join(client.tree, "images", "v1", "image.caidx"), "rb") as f:
        first = f.read()[72:104].hex()
    victim = next(p for p in chunks if os.path.basename(p) == f"{first}.cacnk")
    shutil.copy(next(p for p in chunks if p != victim), victim)
    out, served = boot_counting(client, cmdline="gse.transfer=casync")
    assert "gse: staging " in out and " chunks into /run/gse/chunks " in out, out[-3000:]
    assert "image refused: a chunk does not match the signed index" in out, out[-3000:]
    assert "gse: installed v1" not in out
    assert booted(out) is None
    # The target holds no complete system (no record, no version label) and
    # no staging store.
    assert "v1" not in vm.by_label(client.disk).values()
    assert vm.state_file(client.disk, "installed/vda2") is None
    assert not [p for p in vm.partition_tree(client.disk, 2) if p.startswith(".gse-chunks")]
    refused = vm.state_file(client.disk, "refused").splitlines()[-1]
    assert " v1 signed=" in refused and " digest: casync: " in refused
