"""image_takeover: an image directory recorded beside the root is hard-linked whole only while it is intact."""
import json
import os
import shutil
import subprocess
import tempfile

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gse.stateless.plugins.module_utils import caindex
from ansible_collections.gse.stateless.plugins.module_utils.checksums import sha512_file
from ansible_collections.gse.stateless.plugins.modules import image_takeover

INPUTS = {"compression": "zstd", "level": 3, "excluded": ["var/cache/distfiles"]}


def run_module(capsys, check=False, **args):
    if check:
        args["_ansible_check_mode"] = True
    with patch_module_args(args), pytest.raises(SystemExit):
        image_takeover.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def image(tmp_path):
    """A root, an image directory of build one recorded for it, and an empty chunk store."""
    root = tmp_path / "work"
    root.mkdir()
    src = tmp_path / "images" / "one"
    src.mkdir(parents=True)
    for name in ("image.tar.zst", "image.tar.zst.asc", "SHA512SUMS.asc", "build-report.json", "image.caidx",
                 "image.tar.zst.caibx", "image.tar.zst.caibx.asc"):
        (src / name).write_text("content of %s\n" % name)
    # The tarball's digest is not read again (it is not checked here).
    (src / "SHA512SUMS").write_text("".join("%s  %s\n" % (sha512_file(str(src / n)) if n != "image.tar.zst" else "0" * 128, n)
                                            for n in ("build-report.json", "image.caidx", "image.tar.zst",
                                                      "image.tar.zst.caibx")))
    store = tmp_path / "chunks"
    store.mkdir()
    return root, src, store


def record(capsys, root, src, build="one", inputs=INPUTS):
    return run_module(capsys, root=str(root), dest=str(src), build=build, inputs=inputs, state="recorded")


def take(capsys, root, dest, store, build="one", inputs=INPUTS, check=False, **extra):
    return run_module(capsys, check=check, root=str(root), dest=str(dest), build=build, inputs=inputs,
                      store=str(store), **extra)


@pytest.fixture(autouse=True)
def no_chunks(monkeypatch):
    """The index's format is caindex's (tested there); here only which chunks it names matters."""
    monkeypatch.setattr(caindex, "read_index", lambda path: (0, 0, []))


def test_takes_the_recorded_image_over_by_hard_links(capsys, image, tmp_path):
    root, src, store = image
    recorded = record(capsys, root, src)
    assert recorded["files"] == sorted(os.listdir(src))
    dest = tmp_path / "images" / "two"
    report = tmp_path / "report.json"
    res = take(capsys, root, dest, store, report_copy=str(report))
    assert res["changed"] and res["taken_over"] and res["src"] == str(src), res
    assert sorted(os.listdir(dest)) == sorted(os.listdir(src))
    for name in os.listdir(src):
        assert os.stat(dest / name).st_ino == os.stat(src / name).st_ino
    # The tarball's blob index and its signature come along with the rest.
    assert "image.tar.zst.caibx" in res["files"] and "image.tar.zst.caibx.asc" in res["files"]
    assert sorted(res["signatures_reused"]) == [str(dest / "SHA512SUMS"), str(dest / "image.tar.zst"),
                                                str(dest / "image.tar.zst.caibx")]
    assert report.read_text() == (src / "build-report.json").read_text()
    # The record now names the new directory: the next rebuild takes that over.
    with open(str(root) + ".image.json", encoding="utf-8") as f:
        assert json.load(f)["dir"] == str(dest)
    third = take(capsys, root, tmp_path / "images" / "three", store)
    assert third["taken_over"] and third["src"] == str(dest)


def restored_mtime(path, text):
    """Rewrite a file in place (same inode, same size) and set its modification time back."""
    st = os.stat(path)
    path.write_text(text.ljust(st.st_size - 1) + "\n")
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))


def test_a_hard_link_made_by_publishing_does_not_stop_the_takeover(capsys, image, tmp_path):
    root, src, store = image
    record(capsys, root, src)
    os.link(src / "image.caidx", tmp_path / "published.caidx")  # sets the change time only
    assert take(capsys, root, tmp_path / "images" / "two", store)["taken_over"]


@pytest.mark.parametrize("change, reason", [
    (lambda src: (src / "SHA512SUMS").write_text("other\n"), "are not those recorded"),
    (lambda src: os.unlink(src / "image.tar.zst.asc"), "are not those recorded"),
    (lambda src: (src / "vmlinuz").write_text("k\n"), "are not those recorded"),
    (lambda src: restored_mtime(src / "build-report.json", "{}\n"), "build-report.json of"),
])
def test_a_changed_file_is_not_taken_over(capsys, image, tmp_path, change, reason):
    root, src, store = image
    record(capsys, root, src)
    change(src)
    dest = tmp_path / "images" / "two"
    res = take(capsys, root, dest, store)
    assert not res["taken_over"] and not res["changed"] and reason in res["reason"], res
    assert not dest.exists()


def test_other_inputs_or_another_build_are_not_taken_over(capsys, image, tmp_path):
    root, src, store = image
    record(capsys, root, src)
    dest = tmp_path / "images" / "two"
    res = take(capsys, root, dest, store, inputs=dict(INPUTS, level=19))
    assert not res["taken_over"] and res["reason"] == "the image's inputs changed"
    res = take(capsys, root, dest, store, build="zero")
    assert not res["taken_over"] and "of build one, not zero" in res["reason"]
    os.unlink(str(root) + ".image.json")
    res = take(capsys, root, dest, store)
    assert not res["taken_over"] and res["reason"] == "no record of an image of this root"
    assert not dest.exists()


def test_an_index_whose_chunks_left_the_store_is_not_taken_over(capsys, image, tmp_path, monkeypatch):
    root, src, store = image
    record(capsys, root, src)
    chunk = "ab" * 32
    monkeypatch.setattr(caindex, "read_index", lambda path: (0, 0, [chunk]))
    dest = tmp_path / "images" / "two"
    res = take(capsys, root, dest, store)
    assert not res["taken_over"] and "lacks chunks" in res["reason"]
    path = caindex.chunk_path(str(store), chunk)
    os.makedirs(os.path.dirname(path))
    with open(path, "w", encoding="utf-8") as f:
        f.write("chunk")
    assert take(capsys, root, dest, store)["taken_over"]


def test_check_mode_links_nothing(capsys, image, tmp_path):
    root, src, store = image
    record(capsys, root, src)
    dest = tmp_path / "images" / "two"
    res = take(capsys, root, dest, store, check=True)
    assert res["taken_over"] and res["changed"]
    assert not dest.exists()
    with open(str(root) + ".image.json", encoding="utf-8") as f:
        assert json.load(f)["dir"] == str(src)


def gpg(home, *args):
    return subprocess.run(["gpg", "--batch", "--quiet", "--homedir", home, *args], check=True, capture_output=True,
                          text=True)


def new_key(home):
    """A throwaway key with the one user ID both keys share; returns its fingerprint."""
    # --yes: gpg asks before making a second key with a user ID it already has.
    gpg(home, "--yes", "--pinentry-mode", "loopback", "--passphrase", "", "--quick-gen-key", UID, "ed25519", "sign",
        "never")
    fprs = [line.split(":")[9] for line in gpg(home, "--with-colons", "--list-secret-keys").stdout.splitlines()
            if line.startswith("fpr:")]
    return fprs[-1]


UID = "GSE Takeover <takeover@gse.invalid>"


@pytest.fixture
def gnupghome():
    # Short, under /tmp: gpg-agent's socket lives in it and a socket path has a length limit.
    home = tempfile.mkdtemp(prefix="gse-tko-")
    yield home
    subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], capture_output=True)
    shutil.rmtree(home)


def test_another_key_under_the_same_name_is_not_taken_over(capsys, image, tmp_path, gnupghome):
    """Real gpg, two real keys: the name and the inputs stay equal, only the key behind the name changes."""
    root, src, store = image
    first = new_key(gnupghome)
    signing = dict(signing_key="takeover@gse.invalid", gnupghome=gnupghome)
    recorded = run_module(capsys, root=str(root), dest=str(src), build="one", inputs=INPUTS, state="recorded",
                          **signing)
    assert recorded["signer"] == first
    with open(str(root) + ".image.json", encoding="utf-8") as f:
        assert json.load(f)["signer"] == first

    # The same key: taken over.
    dest = tmp_path / "images" / "two"
    res = take(capsys, root, dest, store, **signing)
    assert res["taken_over"] and res["signer"] == first, res

    # The key replaced in the keyring under the same user ID: the recorded signatures are not its own.
    gpg(gnupghome, "--yes", "--delete-secret-and-public-key", first)
    second = new_key(gnupghome)
    assert second != first
    three = tmp_path / "images" / "three"
    res = take(capsys, root, three, store, **signing)
    assert not res["taken_over"] and not res["changed"], res
    assert second in res["reason"] and first in res["reason"], res
    assert not three.exists()

    # Both keys under the name: which one would sign cannot be told, nothing is taken over.
    new_key(gnupghome)
    res = take(capsys, root, three, store, **signing)
    assert not res["taken_over"] and "2 secret keys match" in res["reason"], res
    assert not three.exists()


def test_a_record_without_a_signer_is_not_taken_over_for_a_signed_build(capsys, image, tmp_path, gnupghome):
    """A record written before fingerprints were recorded (or of an unsigned image) says nothing of the key."""
    root, src, store = image
    record(capsys, root, src)  # no signing key: no signer recorded
    new_key(gnupghome)
    dest = tmp_path / "images" / "two"
    res = take(capsys, root, dest, store, signing_key="takeover@gse.invalid", gnupghome=gnupghome)
    assert not res["taken_over"] and "no recorded key" in res["reason"], res
    assert not dest.exists()
