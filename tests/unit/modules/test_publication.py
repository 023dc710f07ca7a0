"""publication: the history, list, rollback (verified, higher serial) and prune (never current or fallback).

Images are published with the real publish module; gpg, gpgv and casync are
the recorder of fake_gpg.py, so these tests show the decisions and the files
on disk, not that real signatures verify (tests/integration/test_publication_cli.py
runs gse publish with real keys).
"""
import hashlib
import json
import os

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gse.stateless.plugins.module_utils import caindex, pubhistory, pubtree
from ansible_collections.gse.stateless.plugins.module_utils.checksums import format_sums
from ansible_collections.gse.stateless.plugins.modules import publication, publish
from fake_gpg import MARK, FakeGpg, make_image


def call(capsys, monkeypatch, fake, module, args, check=False):
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, *a, **kw: fake(self, *a, **kw))
    if check:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args), pytest.raises(SystemExit):
        module.main()
    return json.loads(capsys.readouterr().out)


def index_bytes(chunk_ids):
    """A well-formed casync index naming ``chunk_ids`` (hex), each 100 bytes long."""
    items = b"".join(caindex.ITEM.pack(100 * (i + 1), bytes.fromhex(c)) for i, c in enumerate(chunk_ids))
    table_size = caindex.TABLE_HEADER.size + len(items) + caindex.TAIL.size
    return (caindex.HEADER.pack(caindex.HEADER.size, caindex.CA_FORMAT_INDEX, 0, 16, 64, 256)
            + caindex.TABLE_HEADER.pack(0xFFFFFFFFFFFFFFFF, caindex.CA_FORMAT_TABLE) + items
            + caindex.TAIL.pack(0, 0, caindex.HEADER.size, table_size, caindex.CA_FORMAT_TABLE_TAIL_MARKER))


def chunk_id(n):
    return hashlib.sha256(b"chunk %d" % n).hexdigest()


def make_indexed_image(d, store, chunks, payload, tarball_index=False):
    """An image directory with a chunk index over ``chunks`` (numbers), its chunks in ``store``; with
    ``tarball_index`` also the tarball's blob index (bytes that only stand for one: nothing here reads it)."""
    make_image(d, payload=payload)
    ids = [chunk_id(n) for n in chunks]
    (d / "image.caidx").write_bytes(index_bytes(ids))
    (d / "image.caidx.asc").write_text("good")
    (d / "build-report.json").write_text('{"root_bytes": 4096}')
    names = ("image.tar.zst", "build-report.json", "image.caidx")
    if tarball_index:
        (d / "image.tar.zst.caibx").write_bytes(b"blob index of " + payload)
        (d / "image.tar.zst.caibx.asc").write_text("good")
        names += ("image.tar.zst.caibx",)
    (d / "SHA512SUMS").write_text(format_sums({n: hashlib.sha512((d / n).read_bytes()).hexdigest() for n in names}))
    for c in ids:
        path = caindex.chunk_path(str(store), c)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb") as f:
            f.write(b"chunk bytes " + c.encode())


@pytest.fixture
def tree(tmp_path, capsys, monkeypatch):
    """v1..v4 published in turn as the default (v4 is current, v3 its fallback); v1 and v2 share chunk 1; v1
    has the tarball's blob index."""
    ring = tmp_path / "keyring.gpg"
    ring.write_text("pub")
    pub, store = tmp_path / "pub", tmp_path / "store"
    common = dict(publish_dir=str(pub), keyring=str(ring), gnupghome=str(tmp_path / "home"), signing_key="KEY")
    chunks = {"v1": [1, 2], "v2": [1, 3], "v3": [4], "v4": [5]}
    for n, version in enumerate(("v1", "v2", "v3", "v4")):
        src = tmp_path / "build" / version
        make_indexed_image(src, store, chunks[version], b"image %d" % n, tarball_index=version == "v1")
        res = call(capsys, monkeypatch, FakeGpg(), publish,
                   dict(common, src=str(src), version=version, default=True, chunk_store=str(store)))
        assert res["image"]["serial"] == n + 1
    return pub, common


def pointer(pub):
    return pubtree.parse_pointer((pub / "version.txt").read_text()[len(MARK):])


def test_publishing_records_history_and_list_names_current_and_fallback(capsys, monkeypatch, tree):
    pub, common = tree
    assert [(e["serial"], e["version"], e["action"]) for e in pubhistory.read(str(pub))] == [
        (1, "v1", "publish"), (2, "v2", "publish"), (3, "v3", "publish"), (4, "v4", "publish")]
    res = call(capsys, monkeypatch, FakeGpg(), publication, common)
    assert not res["changed"]
    assert res["current"] == {"version": "v4", "serial": 4} and res["fallback"] == "v3"
    assert [v["version"] for v in res["versions"]] == ["v4", "v3", "v2", "v1"]
    v4 = res["versions"][0]
    assert v4["current"] and not v4["fallback"] and v4["serials"] == [4] and v4["index"] and v4["bytes"] > 0
    assert res["versions"][1]["fallback"]


def test_rollback_verifies_the_image_and_takes_a_higher_serial(capsys, monkeypatch, tree):
    pub, common = tree
    fake = FakeGpg()
    res = call(capsys, monkeypatch, fake, publication, dict(common, action="rollback", version="v2"))
    assert res["changed"] and res["serial"] == 5 and res["msg"] == "v2 is the default with serial 5"
    image = str(pub / "images/v2")
    ring = common["keyring"]
    # The image's signatures, then its chunks from the store, then the pointer: in that order.
    assert fake.calls[0:3] == [
        ["gpgv", "--status-fd", "1", "--keyring", ring, image + "/SHA512SUMS.asc", image + "/SHA512SUMS"],
        ["gpgv", "--status-fd", "1", "--keyring", ring, image + "/image.tar.zst.asc", image + "/image.tar.zst"],
        ["gpgv", "--status-fd", "1", "--keyring", ring, image + "/image.caidx.asc", image + "/image.caidx"],
    ]
    assert fake.calls[3] == ["casync", "--store=" + str(pub / "store"), "digest", image + "/image.caidx"]
    body = pointer(pub)
    assert body["version"] == "v2" and body["serial"] == "5" and body["index"] == "images/v2/image.caidx"
    assert body["sha512"] == hashlib.sha512(b"image 1").hexdigest() and body["root_bytes"] == "4096"
    assert pubhistory.read(str(pub))[-1]["action"] == "rollback"
    assert res["current"]["version"] == "v2" and res["fallback"] == "v4"

    again = call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="rollback", version="v2"))
    assert not again["changed"] and again["msg"] == "v2 is already the default (serial 5)"
    assert (pub / ".gse/serial").read_text() == "5\n"


def test_rollback_and_pin_keep_the_tarball_index(capsys, monkeypatch, tree):
    pub, common = tree
    assert "tarball_index" not in pointer(pub)  # v4 has none
    res = call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="rollback", version="v1"))
    assert res["changed"]
    body = pointer(pub)
    assert body["version"] == "v1" and body["tarball_index"] == "images/v1/image.tar.zst.caibx"
    assert body["tarball_index_sha512"] == hashlib.sha512(b"blob index of image 0").hexdigest()
    assert body["tarball_index_size"] == str(len(b"blob index of image 0"))
    res = call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="pin", group="room2", version="v1"))
    assert res["changed"], res
    pin = pubtree.parse_pointer((pub / "groups/room2/version.txt").read_text()[len(MARK):])
    assert {k: pin[k] for k in pubtree.TARBALL_INDEX_KEYS} == {k: body[k] for k in pubtree.TARBALL_INDEX_KEYS}
    # Back to an image without one: the keys go.
    call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="rollback", version="v3"))
    assert "tarball_index" not in pointer(pub)


@pytest.mark.parametrize("damage", ["unknown version", "bad signature", "chunks gone"])
def test_refused_rollback_changes_nothing(capsys, monkeypatch, tree, damage):
    pub, common = tree
    before = (pub / "version.txt").read_bytes()
    version = "v9" if damage == "unknown version" else "v1"
    if damage == "bad signature":
        (pub / "images/v1/image.tar.zst.asc").write_text("forged")
    fake = FakeGpg(casync_rc=1 if damage == "chunks gone" else 0)
    res = call(capsys, monkeypatch, fake, publication, dict(common, action="rollback", version=version))
    assert res["failed"]
    if damage == "unknown version":
        assert "v9 is not published here (published: v1, v2, v3, v4)" in res["msg"]
    if damage == "chunks gone":
        assert res["cmd"][0] == "casync" and res["rc"] == 1
    assert (pub / "version.txt").read_bytes() == before and (pub / ".gse/serial").read_text() == "4\n"
    assert not [c for c in fake.calls if "--clearsign" in c]


def test_rollback_check_mode_says_the_serial_and_moves_nothing(capsys, monkeypatch, tree):
    pub, common = tree
    res = call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="rollback", version="v1"), check=True)
    assert res["changed"] and res["serial"] == 5 and "would become" in res["msg"]
    assert pointer(pub)["version"] == "v4" and (pub / ".gse/serial").read_text() == "4\n"


def test_prune_keeps_current_and_fallback_and_removes_unreferenced_chunks(capsys, monkeypatch, tree):
    pub, common = tree
    # A rollback to v1 makes v1 current and v4 its fallback: both must survive keep=1.
    call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="rollback", version="v1"))
    seen = call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="prune", keep=1), check=True)
    assert seen["removed"] == ["v2", "v3"] and seen["chunks_removed"] == 2
    assert sorted(os.listdir(pub / "images")) == ["v1", "v2", "v3", "v4"]  # check mode removed nothing

    res = call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="prune", keep=1))
    assert res["changed"] and res["removed"] == ["v2", "v3"]
    assert sorted(os.listdir(pub / "images")) == ["v1", "v4"]
    left = set(pubhistory.stored_chunks(str(pub)))
    assert left == {chunk_id(1), chunk_id(2), chunk_id(5)}  # chunk 1 of v2 stays: v1 names it too
    again = call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="prune", keep=1))
    assert not again["changed"] and again["removed"] == []


@pytest.mark.parametrize("leftover", [pubtree.pruning_name("v0"), ".staging-prune-v0"], ids=["now", "older release"])
def test_prune_finishes_an_interrupted_prune(capsys, monkeypatch, tree, leftover):
    pub, common = tree
    leftover = pub / "images" / leftover
    (leftover / "sub").mkdir(parents=True)
    (leftover / "sub" / "file").write_text("x")
    call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="prune", keep=4))
    assert not leftover.exists() and sorted(os.listdir(pub / "images")) == ["v1", "v2", "v3", "v4"]


@pytest.mark.parametrize("bad", ["pointer does not verify", "keep 0"])
def test_prune_refuses_and_removes_nothing(capsys, monkeypatch, tree, bad):
    pub, common = tree
    args = dict(common, action="prune", keep=0 if bad == "keep 0" else 1)
    if bad == "pointer does not verify":
        (pub / "version.txt").write_text("not signed\n")
    res = call(capsys, monkeypatch, FakeGpg(), publication, args)
    assert res["failed"]
    assert ("does not verify" if bad != "keep 0" else "keep must be at least 1") in res["msg"]
    assert sorted(os.listdir(pub / "images")) == ["v1", "v2", "v3", "v4"]
    assert len(pubhistory.stored_chunks(str(pub))) == 5


def test_history_is_bounded(tmp_path):
    pub = str(tmp_path)
    os.mkdir(os.path.join(pub, ".gse"))
    with open(pubhistory.history_path(pub), "w") as f:  # the bulk at once: the bound is under test
        f.write("".join(json.dumps(dict(serial=s, version="v%d" % s, published="x", action="publish")) + "\n"
                        for s in range(1, pubhistory.HISTORY_LIMIT + 6)))
    for serial in range(pubhistory.HISTORY_LIMIT + 6, pubhistory.HISTORY_LIMIT + 11):
        pubhistory.append(pub, serial, "v%d" % serial, "2026-11-30T00:00:00Z", "publish")
    entries = pubhistory.read(pub)
    assert len(entries) == pubhistory.HISTORY_LIMIT
    assert (entries[0]["serial"], entries[-1]["serial"]) == (11, pubhistory.HISTORY_LIMIT + 10)


def test_a_lost_serial_counter_never_gives_clients_a_lower_serial(capsys, monkeypatch, tree):
    pub, common = tree
    # .gse restored from an old backup: the counter says 1, clients have seen 4.
    (pub / ".gse/serial").write_text("1\n")
    res = call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="rollback", version="v3"))
    assert res["serial"] == 5 and pointer(pub)["serial"] == "5"
    assert (pub / ".gse/serial").read_text() == "5\n"


def test_rollback_moves_boot_script_to_the_versions_controller(capsys, monkeypatch, tmp_path):
    """Network-booted clients follow the pointer: after a rollback boot.ipxe
    names the rolled-back version's kernel and initramfs, with the command
    line the script had."""
    ring = tmp_path / "keyring.gpg"
    ring.write_text("pub")
    pub = tmp_path / "pub"
    common = dict(publish_dir=str(pub), keyring=str(ring), gnupghome=str(tmp_path / "home"), signing_key="KEY")
    for n, version in enumerate(("k1", "k2")):
        src = tmp_path / "build" / version
        make_image(src, payload=b"image %d" % n)
        (src / "vmlinuz").write_bytes(b"kernel %d" % n)
        (src / "initramfs").write_bytes(b"initramfs %d" % n)
        names = ("image.tar.zst", "build-report.json", "vmlinuz", "initramfs")
        (src / "SHA512SUMS").write_text(format_sums({m: hashlib.sha512((src / m).read_bytes()).hexdigest()
                                                     for m in names}))
        call(capsys, monkeypatch, FakeGpg(), publish, dict(common, src=str(src), version=version, default=True,
                                                           boot_cmdline="root=gse gse.site=lab"))
    assert "kernel images/k2/vmlinuz initrd=initramfs root=gse gse.site=lab\n" in (pub / "boot.ipxe").read_text()
    res = call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="rollback", version="k1"))
    assert res["changed"] and pointer(pub)["kernel"] == "images/k1/vmlinuz"
    assert pointer(pub)["kernel_sha512"] == hashlib.sha512(b"kernel 0").hexdigest()
    script = (pub / "boot.ipxe").read_text()
    assert "kernel images/k1/vmlinuz initrd=initramfs root=gse gse.site=lab\n" in script
    assert "initrd images/k1/initramfs\n" in script and "serial 3" in script


@pytest.mark.parametrize("version", ["v1", "prune-v1", "prune-", "p", "1.0+x"])
def test_no_version_stages_where_a_prune_hides_an_image(version):
    """Whatever a version is called, the rest of a prune's hidden name after ``.staging-`` is no version."""
    hidden = pubtree.pruning_name(version)
    assert hidden.startswith(pubtree.staging_name(""))  # servers refuse it like any staging name
    with pytest.raises(pubtree.TreeError):
        pubtree.check_version(hidden[len(pubtree.staging_name("")):])
    assert hidden != pubtree.staging_name(pubtree.check_version(version))


def test_a_version_named_like_the_prune_prefix_is_published_and_never_pruned_as_a_leftover(
        capsys, monkeypatch, tree, tmp_path):
    pub, common = tree
    images = pub / "images"
    # A prune of v1 interrupted between its rename and its delete (as prune leaves it).
    hidden = images / pubtree.pruning_name("v1")
    os.rename(images / "v1", hidden)
    src = tmp_path / "build" / "prune-v1"
    make_indexed_image(src, tmp_path / "store", [6], b"image named like the prefix")
    res = call(capsys, monkeypatch, FakeGpg(), publish,
               dict(common, src=str(src), version="prune-v1", default=True, chunk_store=str(tmp_path / "store")))
    assert not res.get("failed"), res
    assert pointer(pub)["version"] == "prune-v1"
    # The publish staged in its own name and left the prune's leftover to the prune.
    assert res["stale"]["removed"] == [] and hidden.is_dir()
    published = {n: (images / "prune-v1" / n).read_bytes() for n in os.listdir(images / "prune-v1")}

    res = call(capsys, monkeypatch, FakeGpg(), publication, dict(common, action="prune", keep=2))
    assert not res.get("failed"), res
    assert res["removed"] == ["v2", "v3"]
    # The interrupted prune is finished; the version called prune-v1 is the current one, whole.
    assert sorted(os.listdir(images)) == ["prune-v1", "v4"]
    assert {n: (images / "prune-v1" / n).read_bytes() for n in os.listdir(images / "prune-v1")} == published
