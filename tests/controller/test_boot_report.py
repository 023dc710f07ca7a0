"""A client reports to the server after boot and `gse fleet` lists it (QEMU, TCG).

The server is gse serve's: nginx with the server role's site, POST /report
passed to the receiver.  The controller makes the client's identity (state
file "identity") at the first boot and keeps it: the second boot reports as
the same host.
"""
import json
import os
import subprocess
import sys

import pytest

import pubtree
import vm
from client import Client, booted
from gse.fleet import Receiver
from gse.serve import Server

GSE = os.path.join(os.path.dirname(sys.executable), "gse")


@pytest.fixture(scope="module")
def client(controller, signing, tmp_path_factory):
    return Client(controller, signing, str(tmp_path_factory.mktemp("client")))


def boot_reporting(client):
    with Receiver(client.tree) as receiver, \
            Server(client.tree, fleet_upstream="127.0.0.1:%d" % receiver.port) as srv:
        out, _secs, _rc = client.boot(port=srv.port)
    return out


def fleet(client):
    r = subprocess.run([GSE, "fleet", "--dir", client.tree, "--json"], capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_a_client_reports_and_gse_fleet_lists_it(client):
    client.publish("v1")
    out = boot_reporting(client)
    assert booted(out) == "v1" and "gse: report: sent (recorded " in out, out[-3000:]
    identity = vm.state_file(client.disk, "identity")
    mid = dict(line.split("=", 1) for line in identity.split())["machine_id"]
    (host,) = fleet(client)
    assert host["machine_id"] == mid and host["mac"] == "52:54:00:12:34:56"
    assert (host["version"], host["serial"], host["flags"]) == ("v1", "1", [])
    assert "gse: installed v1 (serial 1)" in host["log"]
    # The booted system's gse-health service reported its half: a healthy startup.
    health = json.load(open(os.path.join(client.tree, ".gse", "fleet", "hosts", host["host"] + ".health.json")))
    assert (health["reporter"], health["health"], health["version"]) == ("health", "healthy", "v1")
    assert host["health"] == "healthy"
    # The token stays in the client's state area; the server keeps only its digest.
    token = dict(line.split("=", 1) for line in identity.split())["token"]
    stored = open(os.path.join(client.tree, ".gse", "fleet", "tokens", host["host"])).read()
    assert token not in stored

    out = boot_reporting(client)
    assert "gse: report: sent" in out and "new client identity" not in out
    (again,) = fleet(client)  # the same host, not a second one
    assert again["host"] == host["host"] and again["last_seen"] >= host["last_seen"]
    assert again["health"] == "healthy"  # the booted system reported its healthy startup again


def sysfs_file(client, relpath):
    """A file of the SYSFS partition as the last boot left it (None when absent)."""
    number = vm.partition_of(client.disk, "SYSFS")
    for n, start, size in vm.partitions(client.disk):
        if n == number:
            with vm.loop(client.disk, start, size) as part:
                return vm.read_file(part, relpath)
    raise KeyError(number)


def test_group_and_host_overlays_apply_in_order_and_the_group_reports(client):
    files = {
        # The map: this client (QEMU's MAC) is in room2; another MAC is in room9.
        "members": "room9 mac=52:54:00:99:99:99\nroom2 mac=52:54:00:12:34:56\n",
        "rootfs/etc/gse-layer": "base\n", "rootfs/etc/gse-base": "base\n",
        "groups/room2/rootfs/etc/gse-layer": "room2\n", "groups/room2/rootfs/etc/gse-group": "room2\n",
        "groups/room9/rootfs/etc/gse-room9": "room9\n",
        "hosts/525400123456/rootfs/etc/gse-host": "this client\n",
        # Runs in the new system, after the files (SYSFS is still read-write).
        "groups/room2/post-sync": ("echo \"post-sync $GSE_GROUP\" > /etc/gse-post-sync\n", 0o644),
    }
    pubtree.add_config(client.gnupghome, client.tree, 1, files)
    out = boot_reporting(client)
    assert "gse: configuration: this client is in group room2" in out, out[-3000:]
    assert "gse: configuration: post-sync of group room2 ran" in out
    assert sysfs_file(client, "etc/gse-base") == "base\n"
    assert sysfs_file(client, "etc/gse-layer") == "room2\n"  # the group's file wins over the base's
    assert sysfs_file(client, "etc/gse-group") == "room2\n" and sysfs_file(client, "etc/gse-host") == "this client\n"
    assert sysfs_file(client, "etc/gse-room9") is None
    assert sysfs_file(client, "etc/gse-post-sync") == "post-sync room2\n"
    (host,) = fleet(client)
    assert host["group"] == "room2"
