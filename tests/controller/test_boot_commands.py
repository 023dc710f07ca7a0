"""A command queued in the client config.d runs exactly once (QEMU, TCG).

clear-deprived, queued for the client's group: the client installs a
version it had deprived; the same command in a later config.d does nothing.
The deprived record is written into the state area by the test (what an
unhealthy life cycle leaves, test_boot_scenarios.py shows that path).
"""
import os
import subprocess
import tempfile

import pytest

import pubtree
import vm
from client import Client, booted

MEMBERS = "room2 mac=52:54:00:12:34:56\n"


@pytest.fixture(scope="module")
def client(controller, signing, tmp_path_factory):
    return Client(controller, signing, str(tmp_path_factory.mktemp("client")))


def deprive(client, version):
    """Write the state area's deprived list (partition 1) as the controller keeps it."""
    n, start, size = vm.partitions(client.disk)[0]
    with vm.loop(client.disk, start, size, writable=True) as part, tempfile.TemporaryDirectory(prefix="gse-state-") as mnt:
        subprocess.run(["mount", part, mnt], check=True)
        try:
            with open(os.path.join(mnt, "deprived"), "w") as f:
                f.write(version + "\n")
        finally:
            subprocess.run(["umount", mnt], check=True)


def test_clear_deprived_runs_exactly_once(client):
    client.publish("v1")
    out, _s, _rc = client.boot()
    assert booted(out) == "v1"

    deprive(client, "v2")
    client.publish("v2")
    pubtree.add_config(client.gnupghome, client.tree, 1, {
        "members": MEMBERS,
        "groups/room2/commands": "c1 clear-deprived\nc2 rm -rf /\n",
    })
    out, _s, _rc = client.boot()
    assert "gse: commands: c1 clear-deprived (config.d serial 1)" in out, out[-3000:]
    assert "gse: WARNING: commands: refused line 'c2 rm ...'" in out
    assert booted(out) == "v2"
    done = vm.state_file(client.disk, "commands.done")
    assert done == "c1 1\n"

    # The same list again, in a newer config.d: c1 is done, so v3 stays deprived.
    deprive(client, "v3")
    client.publish("v3")
    pubtree.add_config(client.gnupghome, client.tree, 2, {
        "members": MEMBERS, "groups/room2/commands": "c1 clear-deprived\n",
    })
    out, _s, _rc = client.boot()
    assert "config.d: serial 2 fetched" in out and "gse: commands: c1" not in out
    assert "gse: version: v3 was deprived on this client, not fetched again" in out
    assert booted(out) == "v2"
    assert vm.state_file(client.disk, "commands.done") == "c1 1\n"
