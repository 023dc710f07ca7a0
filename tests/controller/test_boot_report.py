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
    # The token stays in the client's state area; the server keeps only its digest.
    token = dict(line.split("=", 1) for line in identity.split())["token"]
    stored = open(os.path.join(client.tree, ".gse", "fleet", "tokens", host["host"])).read()
    assert token not in stored

    out = boot_reporting(client)
    assert "gse: report: sent" in out and "new client identity" not in out
    (again,) = fleet(client)  # the same host, not a second one
    assert again["host"] == host["host"] and again["last_seen"] >= host["last_seen"]
    assert again["health"] in ("healthy", "unknown")
