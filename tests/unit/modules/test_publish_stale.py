"""publish: what an interrupted publish left is removed by the next one, and nothing else.

The leftovers are crafted as a killed publisher leaves them (a staging
directory with files in it, a config staging directory); gpg is the
recorder of fake_gpg.py.  tests/integration/test_chunk_publish.py kills a
real publish with real casync and checks the chunks it left.
"""
import os
import subprocess

import pytest

from test_publish import env, run_module  # noqa: F401  (env: the fixture)
from fake_gpg import FakeGpg, make_image


def leftovers(pub, outside):
    """A publish of v0, of a version prune-v0 and of config serial 7 killed in the middle; a symlink and a
    prune's leftover."""
    (pub / "images/.staging-v0").mkdir(parents=True)
    (pub / "images/.staging-v0/image.tar.zst").write_bytes(b"half an image")
    (pub / "config/.staging-7").mkdir(parents=True)
    (pub / "config/.staging-7/config.d.tar.gz").write_bytes(b"half a config")
    outside.mkdir()
    (outside / "precious").write_text("keep me\n")
    os.symlink(str(outside), str(pub / "images/.staging-evil"))
    # A version may be called prune-<anything>: its staging directory is the publish's own (and so is an
    # older release's prune leftover of that name: a leftover either way).
    (pub / "images/.staging-prune-v0").mkdir()
    (pub / "images/.staging-prune-v0/image.tar.zst").write_bytes(b"half an image called prune-v0")
    (pub / "images/.staging-.prune-old").mkdir()  # the prune's to finish, not the publish's
    (pub / "images/.staging-.prune-old/x").write_text("x")


def test_the_next_publish_removes_what_a_killed_one_left(capsys, monkeypatch, env):  # noqa: F811
    tmp_path, args, _sha = env
    pub = tmp_path / "pub"
    res = run_module(capsys, monkeypatch, FakeGpg(), args)
    assert res["stale"] == {"removed": [], "chunks_removed": 0, "skipped": []}
    published = {n: (pub / "images/v1" / n).read_bytes() for n in os.listdir(pub / "images/v1")}
    leftovers(pub, tmp_path / "outside")

    src = tmp_path / "build" / "v2"
    make_image(src, payload=b"image two")
    res = run_module(capsys, monkeypatch, FakeGpg(), dict(args, src=str(src), version="v2"))
    assert not res.get("failed"), res
    assert res["stale"]["removed"] == ["images/.staging-prune-v0", "images/.staging-v0", "config/.staging-7"]
    assert res["stale"]["skipped"] == [
        "images/.staging-evil is not a directory (a symlink is never followed); left alone"]
    assert sorted(os.listdir(pub / "images")) == [".staging-.prune-old", ".staging-evil", "v1", "v2"]
    assert os.listdir(pub / "config") == []
    assert (tmp_path / "outside" / "precious").read_text() == "keep me\n"
    assert {n: (pub / "images/v1" / n).read_bytes() for n in os.listdir(pub / "images/v1")} == published


def test_check_mode_names_the_leftovers_and_removes_nothing(capsys, monkeypatch, env):  # noqa: F811
    tmp_path, args, _sha = env
    pub = tmp_path / "pub"
    run_module(capsys, monkeypatch, FakeGpg(), args)
    leftovers(pub, tmp_path / "outside")
    res = run_module(capsys, monkeypatch, FakeGpg(), args, check=True)
    assert res["changed"]
    assert res["stale"]["removed"] == ["images/.staging-prune-v0", "images/.staging-v0", "config/.staging-7"]
    assert (pub / "images/.staging-v0/image.tar.zst").exists() and (pub / "config/.staging-7").exists()


@pytest.fixture
def mounted(tmp_path):
    """A tmpfs mounted inside a staging directory (as a bind mount of a build could be)."""
    target = tmp_path / "pub/images/.staging-v0/mnt"
    target.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "gse-test-staging", str(target)], check=True)
    (target / "file").write_text("on the mount\n")
    yield target
    subprocess.run(["umount", str(target)], check=True)


def test_a_staging_directory_with_a_mount_below_is_left_alone(capsys, monkeypatch, env, mounted):  # noqa: F811
    tmp_path, args, _sha = env
    res = run_module(capsys, monkeypatch, FakeGpg(), args)
    assert not res.get("failed"), res
    assert res["stale"]["removed"] == []
    assert res["stale"]["skipped"] == [
        "images/.staging-v0 has a mount point below it (%s); left alone" % mounted]
    assert (mounted / "file").read_text() == "on the mount\n"
