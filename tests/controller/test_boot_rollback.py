"""A rollback published with gse.stateless.publication is installed by a client (QEMU, TCG).

The tree is made by pubtree.py (v1, then v2 as the default); the client
installs v2.  The publication module, run through ansible as AWX and
`gse publish --rollback` run it, then makes v1 the default again under a
higher serial, and the next boot installs v1: the anti-rollback check
accepts an administrator's rollback because its serial is new, and the
chunks the installed v2 already has do not travel again.
"""
import json
import os
import subprocess
import sys

import pytest

import vm
from client import Client, booted
from conftest import need

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")
MiB = 1 << 20


@pytest.fixture(scope="module")
def client(controller, signing, tmp_path_factory):
    need("casync")
    return Client(controller, signing, str(tmp_path_factory.mktemp("client")), casync=True)


def rollback(client, keyring, version):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    args = dict(action="rollback", version=version, publish_dir=client.tree, keyring=keyring,
                gnupghome=client.gnupghome, signing_key="gse-test@localhost")
    r = subprocess.run([ANSIBLE, "localhost", "-c", "local", "-m", "gse.stateless.publication",
                        "-e", "ansible_python_interpreter=" + sys.executable, "-a", json.dumps(args)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def test_a_published_rollback_is_installed(client, signing):
    client.publish("v1", payload=4 * MiB, payload_seed=1)
    client.publish("v2", payload=4 * MiB, payload_seed=1, extra={"usr/share/gse-test/changed": b"v2\n" * 1000})
    out, _secs, _rc = client.boot()
    assert "gse: installed v2 (serial 2)" in out and booted(out) == "v2"

    said = rollback(client, signing[1], "v1")
    assert "v1 is the default with serial 3" in said
    out, _secs, _rc = client.boot()
    assert "gse: installing v1" in out and "(casync)" in out, out[-3000:]
    assert "gse: installed v1 (serial 3)" in out
    assert booted(out) == "v1"
    assert vm.by_label(client.disk) == {"GSESTATE": None, "SYSFS": "v1", "BACKUPFS": "v2"}
    # The rolled-back system is exactly the v1 image root.
    assert vm.partition_tree(client.disk, vm.partition_of(client.disk, "SYSFS")) == vm.tree_digest(client.root("v1"))
