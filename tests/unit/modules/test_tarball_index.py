"""tarball_index: the exact casync argv, the index against the tarball's bytes, idempotency, the throwaway store.

Most tests run the real casync on a small stand-in tarball (random bytes: casync
cuts a blob without looking into it).  The argv and failure tests replace
``run_command`` with a recorder, which cannot show what casync makes of the
argv; the real runs show that.
"""
import hashlib
import json
import os

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gse.stateless.plugins.module_utils import caindex, safe_paths
from ansible_collections.gse.stateless.plugins.modules import tarball_index


def run_module(capsys, args, check=False):
    if check:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args), pytest.raises(SystemExit):
        tarball_index.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def env(tmp_path, monkeypatch):
    info = tmp_path / "mountinfo"
    info.write_text("22 1 0:21 / / rw - ext4 /dev/vda rw\n")
    monkeypatch.setattr(safe_paths, "MOUNTINFO", str(info))
    img = tmp_path / "cdist" / "images" / "v1"
    img.mkdir(parents=True)
    tarball = img / "image.tar.zst"
    # Seeded, so that a failing run can be repeated; 24 MiB are more than one chunk of at most 16 MiB.
    tarball.write_bytes(hashlib.shake_256(b"tarball").digest(24 << 20))
    return dict(img=img, tarball=tarball, dest=img / "image.tar.zst.caibx", cdist=tmp_path / "cdist")


def test_argv_is_exactly_the_blob_index_command():
    assert caindex.blob_index_argv("/s", "/i/image.tar.zst.caibx", "/i/image.tar.zst") == [
        "casync", "--digest=sha256", "--chunk-size=1048576:4194304:16777216", "--compression=zstd", "--store=/s",
        "make", "/i/image.tar.zst.caibx", "/i/image.tar.zst"]


def test_index_names_the_tarballs_byte_ranges_by_sha256(capsys, env):
    res = run_module(capsys, dict(tarball=str(env["tarball"]), dest=str(env["dest"])))
    assert res["changed"] and res["path"] == str(env["dest"])
    data = env["tarball"].read_bytes()
    _flags, table = caindex.read_table(str(env["dest"]))
    assert len(table) == res["chunks"] > 1 and table[-1][1] == len(data) == res["tarball_size"]
    for start, end, chunk_id in table:
        assert 1 << 20 <= end - start <= 16 << 20 or end == len(data)
        assert hashlib.sha256(data[start:end]).hexdigest() == chunk_id
    assert res["sha512"] == hashlib.sha512(env["dest"].read_bytes()).hexdigest()
    assert res["size"] == env["dest"].stat().st_size
    # The throwaway store and the partial index are gone: the image directory holds the tarball and the index.
    assert sorted(os.listdir(env["img"])) == ["image.tar.zst", "image.tar.zst.caibx"]
    assert sorted(os.listdir(env["cdist"] / "images")) == ["v1"]


def test_same_tarball_same_index_and_unchanged(capsys, env, tmp_path):
    first = run_module(capsys, dict(tarball=str(env["tarball"]), dest=str(env["dest"])))
    inode = env["dest"].stat().st_ino
    again = run_module(capsys, dict(tarball=str(env["tarball"]), dest=str(env["dest"])))
    assert not again["changed"] and again["sha512"] == first["sha512"] and env["dest"].stat().st_ino == inode
    # A copy of the tarball elsewhere, with its own throwaway store: byte for byte the same index.
    other = tmp_path / "other"
    other.mkdir()
    (other / "image.tar.zst").write_bytes(env["tarball"].read_bytes())
    copy = run_module(capsys, dict(tarball=str(other / "image.tar.zst"), dest=str(other / "image.tar.zst.caibx"),
                                   tmpdir=str(tmp_path)))
    assert copy["changed"] and (other / "image.tar.zst.caibx").read_bytes() == env["dest"].read_bytes()
    # Another tarball: another index, and changed.
    env["tarball"].write_bytes(env["tarball"].read_bytes()[:-1] + b"!")
    changed = run_module(capsys, dict(tarball=str(env["tarball"]), dest=str(env["dest"])))
    assert changed["changed"] and changed["sha512"] != first["sha512"]


def test_check_mode_writes_nothing(capsys, env):
    res = run_module(capsys, dict(tarball=str(env["tarball"]), dest=str(env["dest"])), check=True)
    assert res["changed"] and not env["dest"].exists()
    assert sorted(os.listdir(env["cdist"] / "images")) == ["v1"]


def test_casync_failure_carries_the_command_and_leaves_nothing(capsys, env, monkeypatch):
    calls = []

    def fail(module, argv, *a, **kw):
        calls.append(list(argv))
        assert os.path.isdir(argv[4][len("--store="):].rsplit("/", 1)[0])
        return 1, "", "casync: boom\n"
    monkeypatch.setattr(basic.AnsibleModule, "run_command", fail)
    res = run_module(capsys, dict(tarball=str(env["tarball"]), dest=str(env["dest"])))
    assert res["failed"] and res["rc"] == 1 and res["stderr"] == "casync: boom\n" and res["cmd"] == calls[0]
    assert calls[0][-3:] == ["make", str(env["img"] / ".partial-image.tar.zst.caibx"), str(env["tarball"])]
    assert calls[0][4].startswith("--store=%s/.tarball-index-" % (env["cdist"] / "images"))
    assert sorted(os.listdir(env["img"])) == ["image.tar.zst"] and sorted(os.listdir(env["cdist"] / "images")) == ["v1"]


def test_an_index_short_of_the_tarball_is_refused(capsys, env, monkeypatch):
    """casync exiting 0 with an index of other bytes (here: of the first MiB only) must not become dest."""
    original = basic.AnsibleModule.run_command

    def short(module, argv, *a, **kw):
        head = env["img"] / "head"
        head.write_bytes(env["tarball"].read_bytes()[:1 << 20])
        try:
            return original(module, argv[:-1] + [str(head)])
        finally:
            head.unlink()
    monkeypatch.setattr(basic.AnsibleModule, "run_command", short)
    res = run_module(capsys, dict(tarball=str(env["tarball"]), dest=str(env["dest"])))
    assert res["failed"] and "the tarball has %d" % (24 << 20) in res["msg"], res
    assert sorted(os.listdir(env["img"])) == ["image.tar.zst"]


def test_refuses_a_dest_without_the_blob_suffix(capsys, env):
    res = run_module(capsys, dict(tarball=str(env["tarball"]), dest=str(env["img"] / "image.idx")))
    assert res["failed"] and ".caibx" in res["msg"] and sorted(os.listdir(env["img"])) == ["image.tar.zst"]
