"""A group pinned to a version with gse.stateless.publication, and the clients that follow it (QEMU, TCG).

The images are made by pubtree.py (v1, then v2 as the default); the client
config.d is published, and the group pinned and unpinned, by the real
modules run through ansible, as AWX and `gse publish --pin/--unpin` run
them.  One client (QEMU's MAC) is in room2, later moved to lab by its
config.d:

- room2 pinned to v1 while the default is v2: the client installs v1;
- unpinned: it installs the default v2 (the default was signed again above
  the pin's serial, so the anti-rollback check accepts it);
- room2 pinned to v1 again, the client moved to lab: it keeps the default;
- room2's pointer served as version.txt to it: refused, its system boots.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest

import vm
from client import Client, booted

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")
MAC = "52:54:00:12:34:56"  # QEMU's default, the client's


@pytest.fixture(scope="module")
def client(controller, signing, tmp_path_factory):
    return Client(controller, signing, str(tmp_path_factory.mktemp("client")))


def module(client, keyring, name, **args):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    args = dict(args, publish_dir=client.tree, keyring=keyring, gnupghome=client.gnupghome,
                signing_key="gse-test@localhost")
    r = subprocess.run([ANSIBLE, "localhost", "-c", "local", "-m", "gse.stateless." + name,
                        "-e", "ansible_python_interpreter=" + sys.executable, "-a", json.dumps(args)],
                       capture_output=True, text=True, env=env, timeout=600)
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stdout


def config_d(client, keyring, group):
    """Publish the client config.d (part L) with the client in ``group``."""
    conf = os.path.join(client.work, "config.d")
    os.makedirs(os.path.join(conf, "groups", group, "rootfs", "etc"), exist_ok=True)
    with open(os.path.join(conf, "members"), "w") as f:
        f.write(f"{group} mac={MAC}\n")
    with open(os.path.join(conf, "groups", group, "rootfs", "etc", "gse-room"), "w") as f:
        f.write(group + "\n")
    return module(client, keyring, "publish", config_dir=conf)


def test_a_pinned_group_installs_its_version_and_the_default_after_unpin(client, signing):
    keyring = signing[1]
    client.publish("v1")
    client.publish("v2")
    config_d(client, keyring, "room2")
    said = module(client, keyring, "publication", action="pin", group="room2", version="v1")
    assert "group room2 is pinned to v1 with serial 3" in said

    out, _s, _rc = client.boot()
    assert "gse: version: group room2 is pinned: groups/room2/version.txt" in out, out[-3000:]
    assert "gse: installed v1 (serial 3)" in out and booted(out) == "v1"
    assert "gse: configuration: this client is in group room2" in out

    said = module(client, keyring, "publication", action="unpin", group="room2")
    assert "version.txt (v2) is signed again with serial 5" in said
    out, _s, _rc = client.boot()
    assert "pinned" not in out and "gse: installed v2 (serial 5)" in out, out[-3000:]
    assert booted(out) == "v2"

    # room2 pinned again; the client, moved to lab, keeps following the default.
    module(client, keyring, "publication", action="pin", group="room2", version="v1")
    config_d(client, keyring, "lab")
    out, _s, _rc = client.boot()
    assert "gse: configuration: this client is in group lab" in out, out[-3000:]
    assert "gse: version: v2 (serial 7) is installed, no new version" in out and "is pinned" not in out
    assert booted(out) == "v2"

    # room2's pointer (signed, the newest serial but one) served as the default to a client of lab.
    tree = client.tree
    shutil.copy(os.path.join(tree, "groups", "room2", "version.txt"), os.path.join(tree, "version.txt"))
    out, _s, _rc = client.boot()
    assert ("gse: WARNING: version refused: version.txt: the pointer of group 'room2'; this client is in no "
            "pinned group") in out, out[-3000:]
    assert booted(out) == "v2" and vm.by_label(client.disk)["SYSFS"] == "v2"
