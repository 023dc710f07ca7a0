"""The disk policies a server's client config.d sets, booted in QEMU (TCG):
btrfs system partitions with the system in a subvolume, the legacy boot flag
following SYSFS, and "wipe the whole setup and start new" once per token.

One client's life, in order: blank disk with btrfs + boot flag from the
server's config.d -> update (the flag moves to the new SYSFS) -> wipe
requested -> the same token again (no second wipe).
"""
import pytest

import pubtree
import vm
from client import Client, booted

POLICY = "GSE_FSTYPE=btrfs\nGSE_BOOTFLAG=yes\n"


@pytest.fixture(scope="module")
def client(controller, signing, tmp_path_factory):
    return Client(controller, signing, str(tmp_path_factory.mktemp("client-btrfs")))


def test_blank_disk_with_btrfs_and_boot_flag_from_the_server(client):
    client.publish("v1")
    pubtree.add_config(client.gnupghome, client.tree, 1, {"controller.conf": POLICY})
    out, secs, rc = client.boot()
    assert "gse: config.d: serial 1 fetched and exported" in out
    assert "gse: mkfs btrfs /dev/vda2 (SYSFS)" in out
    assert booted(out) == "v1"
    # The system lives in the subvolume, mounted read-only as the root.
    assert "GSETEST mount / btrfs ro," in out
    assert "GSETEST root-subvolume /gse-root" in out
    assert "GSETEST shutdown recorded" in out
    assert vm.by_label(client.disk) == {"GSESTATE": None, "SYSFS": "v1", "BACKUPFS": None}
    assert vm.bootable(client.disk) == [2]


def test_update_moves_the_boot_flag_with_sysfs(client):
    client.publish("v2")
    out, secs, rc = client.boot()
    assert "gse: installed v2 (serial 2) on /dev/vda3" in out
    assert booted(out) == "v2"
    assert vm.by_label(client.disk) == {"GSESTATE": None, "SYSFS": "v2", "BACKUPFS": "v1"}
    assert vm.bootable(client.disk) == [3]


def test_wipe_requested_by_the_server_starts_new_once(client):
    pubtree.add_config(client.gnupghome, client.tree, 2, {"controller.conf": POLICY + "GSE_WIPE=2026-11-25\n"})
    out, secs, rc = client.boot()
    assert "gse: wipe requested (2026-11-25): starting new on /dev/vda" in out
    assert "gse: partitioning /dev/vda" in out
    assert "gse: installed v2 (serial 2) on /dev/vda2" in out
    assert booted(out) == "v2"
    assert vm.by_label(client.disk) == {"GSESTATE": None, "SYSFS": "v2", "BACKUPFS": None}
    assert vm.bootable(client.disk) == [2]
    # The state area is new, yet it keeps the config.d and the token.
    assert vm.state_file(client.disk, "wipe").strip() == "2026-11-25"
    assert vm.state_file(client.disk, "config/serial").strip() == "2"
    # The same token again: no second wipe.
    out, secs, rc = client.boot()
    assert "wipe requested" not in out
    assert "gse: config.d: serial 2 already applied" in out
    assert "gse: version: v2 (serial 2) is installed, no new version" in out
    assert booted(out) == "v2"
