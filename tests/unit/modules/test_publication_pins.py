"""publication: pinning a group to a version (its own signed pointer, listed in the client config.d) and
unpinning it (version.txt signed again above the pin's serial); prune keeps pinned versions.

gpg and gpgv are the recorder of fake_gpg.py (see test_publication.py): these tests show the decisions,
the serials and the files on disk; tests/controller/test_boot_pins.py shows real clients with real
signatures.
"""
import gzip
import hashlib
import io
import os
import tarfile

import pytest

from ansible_collections.gse.stateless.plugins.module_utils import pubhistory, pubtree
from ansible_collections.gse.stateless.plugins.modules import publication, publish
from fake_gpg import MARK, FakeGpg
from test_publication import call, make_indexed_image, pointer, tree  # noqa: F401 (tree is a fixture)


def group_pointer(pub, group):
    text = (pub / "groups" / group / "version.txt").read_text()
    assert text.startswith(MARK)
    return pubtree.parse_pointer(text[len(MARK):])


def config_members(pub):
    """{name: bytes or None} of the config.d tarball config.txt names now."""
    body = pubtree.parse_pointer((pub / "config.txt").read_text()[len(MARK):])
    data = (pub / body["path"]).read_bytes()
    assert hashlib.sha512(data).hexdigest() == body["sha512"] and str(len(data)) == body["size"]
    with tarfile.open(fileobj=io.BytesIO(gzip.decompress(data))) as t:
        return {m.name: (t.extractfile(m).read() if m.isreg() else None) for m in t}, int(body["serial"])


def snapshot(pub):
    """Every file of the tree with its bytes (the lock file aside)."""
    out = {}
    for top, _dirs, files in os.walk(pub):
        for name in files:
            path = os.path.join(top, name)
            if name != "lock":
                with open(path, "rb") as f:
                    out[os.path.relpath(path, pub)] = f.read()
    return out


@pytest.fixture
def configured(tmp_path, capsys, monkeypatch, tree):  # noqa: F811
    """The tree of test_publication.py (v1..v4, v4 default) with a client config.d published (serial 1)."""
    pub, common = tree
    conf = tmp_path / "config.d"
    (conf / "groups/room2/rootfs/etc").mkdir(parents=True)
    (conf / "groups/room2/rootfs/etc/motd").write_text("room 2\n")
    (conf / "members").write_text("room2 mac=52:54:00:00:00:02\n")
    res = call(capsys, monkeypatch, FakeGpg(), publish, dict(common, config_dir=str(conf)))
    assert res["config"]["serial"] == 1
    return pub, common, conf


def test_pin_signs_a_group_pointer_above_every_serial_and_lists_the_group(capsys, monkeypatch, configured):
    pub, common, _conf = configured
    res = call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="pin", group="room2", version="v2"))
    assert res["changed"] and res["serial"] == 5 and res["config_serial"] == 2, res
    body = group_pointer(pub, "room2")
    # version.txt's keys naming v2, and the group line last.
    assert body["version"] == "v2" and body["serial"] == "5" and body["group"] == "room2"
    assert body["sha512"] == hashlib.sha512(b"image 1").hexdigest() and body["index"] == "images/v2/image.caidx"
    assert list(body)[-1] == "group"
    # The default, signed again above the pin (a client taken out of the group takes it at once); the
    # counter is shared.
    assert pointer(pub)["version"] == "v4" and pointer(pub)["serial"] == "6" and "group" not in pointer(pub)
    assert pubhistory.read(str(pub))[-1]["action"] == "resign" and res["fallback"] == "v3"
    assert res["msg"].endswith("version.txt (v4) signed again with serial 6")
    assert (pub / ".gse/serial").read_text() == "6\n"
    members, serial = config_members(pub)
    assert serial == 2 and members["./pinned"] == b"room2\n"
    assert members["./members"] == b"room2 mac=52:54:00:00:00:02\n"
    assert members["./groups/room2/rootfs/etc/motd"] == b"room 2\n"
    assert res["pins"] == {"room2": {"version": "v2", "serial": 5}}
    assert [v["pinned"] for v in res["versions"] if v["version"] == "v2"] == [["room2"]]

    again = call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="pin", group="room2", version="v2"))
    assert not again["changed"] and again["msg"] == "group room2 is already pinned to v2 (serial 5)"
    assert config_members(pub)[1] == 2 and (pub / ".gse/serial").read_text() == "6\n"

    # A second group; then a new default takes a serial above both pins.
    lab = call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="pin", group="lab-1", version="v3"))
    assert lab["serial"] == 7 and config_members(pub)[0]["./pinned"] == b"lab-1\nroom2\n"
    src = pub.parent / "build" / "v5"
    make_indexed_image(src, pub.parent / "store", [6], b"image 5")
    res5 = call(capsys, monkeypatch, FakeGpg(), publish, dict(common, src=str(src), version="v5", default=True,
                                                               chunk_store=str(pub.parent / "store")))
    assert res5["image"]["serial"] == 9


def test_publishing_the_config_d_keeps_the_pinned_list(capsys, monkeypatch, configured):
    pub, common, conf = configured
    call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="pin", group="room2", version="v1"))
    (conf / "controller.conf").write_text("GSE_TMPFS_EXTRA=/srv\n")
    res = call(capsys, monkeypatch, FakeGpg(), publish, dict(common, config_dir=str(conf)))
    members, serial = config_members(pub)
    assert res["config"]["serial"] == serial == 3
    assert members["./pinned"] == b"room2\n" and members["./controller.conf"] == b"GSE_TMPFS_EXTRA=/srv\n"
    # A config.d of the administrator's that names a pinned list itself is refused.
    (conf / "pinned").write_text("room9\n")
    bad = call(capsys, monkeypatch, FakeGpg(), publish, dict(common, config_dir=str(conf)))
    assert bad["failed"] and "written by part L" in bad["msg"] and config_members(pub)[1] == 3


@pytest.mark.parametrize("group, version, says", [
    ("room2", "v9", "v9 is not published here"),
    ("../room2", "v2", "group '../room2' must match"),
    (".room2", "v2", "group '.room2' must match"),
    ("room 2", "v2", "group 'room 2' must match"),
    ("room2", ".staging-prune-v2", "version '.staging-prune-v2' must match"),
    ("room2", "v1", "SHA512SUMS"),  # its signature is forged below
    ("room2", "pruned", "pruned is not published here"),
])
def test_refused_pin_changes_nothing(capsys, monkeypatch, configured, group, version, says):
    pub, common, _conf = configured
    (pub / "images/v1/SHA512SUMS.asc").write_text("forged")
    before = snapshot(pub)
    fake = FakeGpg()
    res = call(capsys, monkeypatch, fake, publication, dict(common, action="pin", group=group, version=version))
    assert res["failed"] and says in res["msg"], res
    assert snapshot(pub) == before and not (pub / "groups").exists()
    assert not [c for c in fake.calls if "--clearsign" in c or "--detach-sign" in c]


def test_pin_check_mode_says_the_serial_and_writes_nothing(capsys, monkeypatch, configured):
    pub, common, _conf = configured
    before = snapshot(pub)
    res = call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="pin", group="room2", version="v2"),
               check=True)
    assert res["changed"] and res["serial"] == 5 and res["config_serial"] == 2 and "would be" in res["msg"]
    assert res["msg"].endswith("version.txt (v4) signed again with serial 6")
    assert snapshot(pub) == before


def test_prune_never_removes_a_pinned_version(capsys, monkeypatch, configured):
    pub, common, _conf = configured
    call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="pin", group="room2", version="v1"))
    res = call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="prune", keep=1))
    # v4 is the default, v3 its fallback, v1 pinned: only v2 goes.
    assert res["removed"] == ["v2"] and sorted(os.listdir(pub / "images")) == ["v1", "v3", "v4"]
    # A group pointer that does not verify: the pinned versions cannot be told.
    (pub / "groups/room2/version.txt").write_text("not signed\n")
    bad = call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="prune", keep=1))
    assert bad["failed"] and "room2 does not verify" in bad["msg"]
    assert sorted(os.listdir(pub / "images")) == ["v1", "v3", "v4"]


def test_unpin_signs_the_default_above_the_pin_and_drops_the_group(capsys, monkeypatch, configured):
    pub, common, _conf = configured
    call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="pin", group="room2", version="v2"))
    call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="pin", group="lab", version="v3"))
    seen = call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="unpin", group="room2"), check=True)
    assert seen["serial"] == 9 and (pub / "groups/room2/version.txt").exists()
    assert pointer(pub)["serial"] == "8"

    res = call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="unpin", group="room2"))
    assert res["changed"] and res["serial"] == 9, res
    body = pointer(pub)
    # The same default, signed again above every serial (the pins' 5 and 7, its own 8).
    assert body["version"] == "v4" and body["serial"] == "9" and "group" not in body
    assert body["sha512"] == hashlib.sha512(b"image 3").hexdigest()
    assert pubhistory.read(str(pub))[-1]["action"] == "resign" and res["fallback"] == "v3"
    assert not (pub / "groups/room2").exists() and (pub / "groups/lab/version.txt").exists()
    members, serial = config_members(pub)
    assert members["./pinned"] == b"lab\n" and serial == 4
    assert res["pins"] == {"lab": {"version": "v3", "serial": 7}}

    again = call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="unpin", group="room2"))
    assert not again["changed"] and again["msg"] == "group room2 is not pinned"
    call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="unpin", group="lab"))
    members, _serial = config_members(pub)
    assert "./pinned" not in members and not os.listdir(pub / "groups")


def test_pin_without_a_published_config_d_publishes_the_list_alone(capsys, monkeypatch, tree):  # noqa: F811
    pub, common = tree
    res = call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="pin", group="room2", version="v3"))
    assert res["config_serial"] == 1
    assert config_members(pub)[0] == {"./pinned": b"room2\n"}


def test_pin_refuses_a_config_d_that_does_not_verify(capsys, monkeypatch, configured):
    pub, common, _conf = configured
    (pub / "config.txt").write_text("not signed\n")
    before = snapshot(pub)
    res = call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="pin", group="room2", version="v2"))
    assert res["failed"] and "config.txt does not verify" in res["msg"]
    assert snapshot(pub) == before
