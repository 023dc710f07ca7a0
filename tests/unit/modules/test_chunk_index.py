"""chunk_index: the exact casync, cp and tar argv, the views, idempotency, reuse and refusals.

``run_command`` is replaced by a recorder: ``cp`` and ``tar`` run for real
(the views are a real hard-linked copy and a real extraction), ``casync`` is
a stand-in that looks at the tree it was given and writes a well-formed
index of two chunks (it adds no chunk files: the reuse tests write them).  The integration test
(tests/integration/test_chunk_publish.py) runs the real casync.
"""
import json
import os
import struct
import subprocess

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gse.stateless.plugins.module_utils import caindex, safe_paths
from ansible_collections.gse.stateless.plugins.modules import chunk_index

CASYNC = ["casync", "--exclude-file=no", "--exclude-nodump=no", "--exclude-submounts=yes", "--with=unix",
          "--with=nsec-time", "--without=user-names", "--with=xattrs", "--with=acl", "--with=fcaps"]


def index_bytes(chunk_ids, sizes):
    out = struct.pack("<QQQQQQ", 48, caindex.CA_FORMAT_INDEX, 0, 16384, 65536, 262144)
    out += struct.pack("<QQ", 0xFFFFFFFFFFFFFFFF, caindex.CA_FORMAT_TABLE)
    end = 0
    for chunk, size in zip(chunk_ids, sizes):
        end += size
        out += struct.pack("<Q32s", end, bytes.fromhex(chunk))
    table = 16 + 40 * len(chunk_ids) + 40
    return out + struct.pack("<QQQQQ", 0, 0, 48, table, caindex.CA_FORMAT_TABLE_TAIL_MARKER)


class Recorder:
    """run_command: cp for real; casync writes an index naming the entries it saw (so content shapes it)."""

    def __init__(self, casync_rc=0):
        self.calls, self.seen, self.casync_rc = [], [], casync_rc

    def __call__(self, argv):
        self.calls.append(list(argv))
        if argv[0] in ("cp", "tar"):
            p = subprocess.run(argv, capture_output=True, text=True)
            return p.returncode, p.stdout, p.stderr
        tree = sorted(os.path.relpath(os.path.join(d, n), argv[-1]) for d, ds, fs in os.walk(argv[-1])
                      for n in ds + fs)
        self.seen.append(dict(tree=tree, mtime=os.stat(os.path.join(argv[-1], "usr")).st_mtime_ns))
        if self.casync_rc:
            return self.casync_rc, "", "casync: boom\n"
        first = format(len(tree), "064x")
        with open(argv[-2], "wb") as f:
            f.write(index_bytes([first, "ab" * 32], [1000, 24]))
        return 0, "d1g357\n", ""


def run_module(capsys, monkeypatch, args, recorder, check=False):
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda module, argv, *a, **kw: recorder(argv))
    if check:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args), pytest.raises(SystemExit):
        chunk_index.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def env(tmp_path, monkeypatch):
    root = tmp_path / "cdist" / "workdir"
    for d in ("etc", "usr/share/doc/pkg", "usr/bin"):
        (root / d).mkdir(parents=True)
    (root / "etc/hostname").write_text("lab\n")
    (root / "usr/share/doc/pkg/README").write_text("x" * 5000)
    (root / "usr/bin/tool").write_bytes(b"t" * 300)
    (root / "lib").symlink_to("usr/lib")
    os.utime(root / "usr", ns=(1, 1234567890123456789))
    info = tmp_path / "mountinfo"
    info.write_text("22 1 0:21 / / rw - ext4 /dev/vda rw\n")
    monkeypatch.setattr(safe_paths, "MOUNTINFO", str(info))
    img = tmp_path / "cdist" / "images" / "v1"
    store = tmp_path / "cdist" / "chunks"
    return root, img, store, info


def test_make_then_unchanged(capsys, monkeypatch, env):
    root, img, store, _info = env
    args = dict(root=str(root), dest=str(img / "image.caidx"), store=str(store))
    rec = Recorder()
    res = run_module(capsys, monkeypatch, args, rec)
    partial = str(img / ".partial-image.caidx")
    assert rec.calls == [CASYNC + ["--store=%s" % store, "make", partial, str(root)]]
    assert res["changed"] and res["chunks"] == 2 and res["archive_size"] == 1024 and res["digest"] == "d1g357"
    # 4096 for . etc usr usr/share usr/share/doc usr/share/doc/pkg usr/bin lib, plus the three files.
    assert res["root_bytes"] == 8 * 4096 + 4 + 5000 + 300
    assert sorted(os.listdir(img)) == ["image.caidx"] and store.is_dir()

    again = run_module(capsys, monkeypatch, args, rec)
    assert not again["changed"] and again["sha512"] == res["sha512"] and len(rec.calls) == 2
    assert sorted(os.listdir(img)) == ["image.caidx"]


def test_excludes_make_the_index_of_a_view_without_them(capsys, monkeypatch, env):
    root, img, store, _info = env
    args = dict(root=str(root), dest=str(img / "image.caidx"), store=str(store), excludes=["/usr/share/doc/"])
    rec = Recorder()
    res = run_module(capsys, monkeypatch, args, rec)
    view = str(root.parent / ".workdir.index-view")
    assert rec.calls == [["cp", "-a", "--link", "--no-target-directory", str(root), view],
                         CASYNC + ["--store=%s" % store, "make", str(img / ".partial-image.caidx"), view]]
    assert "usr/share/doc" not in rec.seen[0]["tree"] and "usr/share" in rec.seen[0]["tree"]
    assert rec.seen[0]["mtime"] == 1234567890123456789  # usr's mtime, not the removal's
    assert res["root_bytes"] == 6 * 4096 + 4 + 300
    assert not os.path.lexists(view) and (root / "usr/share/doc/pkg/README").exists()


def test_casync_failure_leaves_nothing(capsys, monkeypatch, env):
    root, img, store, _info = env
    res = run_module(capsys, monkeypatch, dict(root=str(root), dest=str(img / "image.caidx"), store=str(store),
                                               excludes=["usr/bin"]), Recorder(casync_rc=1))
    assert res["failed"] and res["rc"] == 1 and res["cmd"][0] == "casync" and "boom" in res["stderr"]
    assert os.listdir(img) == [] and not os.path.lexists(root.parent / ".workdir.index-view")


@pytest.mark.parametrize("case", ["record", "mounted", "dest_inside", "store_inside"])
def test_refusals_run_nothing(capsys, monkeypatch, env, case):
    root, img, store, info = env
    args = dict(root=str(root), dest=str(img / "image.caidx"), store=str(store))
    if case == "record":
        (root / ".gse-installed").write_text("version: forged\n")
    elif case == "mounted":
        info.write_text("22 1 0:21 / / rw - ext4 /dev/vda rw\n40 22 0:5 / %s/proc rw - proc proc rw\n" % root)
    elif case == "dest_inside":
        args["dest"] = str(root / "image.caidx")
    else:
        args["store"] = str(root / "var/chunks")
    for check in (False, True):
        rec = Recorder()
        res = run_module(capsys, monkeypatch, args, rec, check=check)
        assert res["failed"] and rec.calls == [], res
        assert {"record": ".gse-installed", "mounted": "mounted", "dest_inside": "dest",
                "store_inside": "store"}[case] in res["msg"]
    assert not img.exists() and not store.exists()


def test_check_mode_writes_nothing(capsys, monkeypatch, env):
    root, img, store, _info = env
    rec = Recorder()
    res = run_module(capsys, monkeypatch, dict(root=str(root), dest=str(img / "image.caidx"), store=str(store),
                                               excludes=["usr/share/doc"]), rec, check=True)
    assert res["changed"] and rec.calls == [] and res["root_bytes"] == 6 * 4096 + 4 + 300
    assert not img.exists() and not store.exists()


def test_read_index_refuses_malformed(tmp_path):
    good = index_bytes(["00" * 32, "11" * 32], [10, 20])
    path = tmp_path / "i.caidx"
    path.write_bytes(good)
    assert caindex.read_index(str(path)) == (0, 30, ["00" * 32, "11" * 32])
    for bad in (good[:60], good[:-1], b"x" * 200, good[:48 + 16 + 40] + good[48 + 16:]):
        path.write_bytes(bad)
        with pytest.raises(caindex.CaIndexError):
            caindex.read_index(str(path))
    assert caindex.chunk_path("/s", "abcd" + "0" * 60) == "/s/abcd/abcd%s.cacnk" % ("0" * 60)


def packed(root, tarball, epoch):
    """The root packed as pack packs it (clamped to ``epoch``), without usr/share/doc."""
    from ansible_collections.gse.stateless.plugins.module_utils import tar_stream
    argv = tar_stream.tar_argv(str(root), ["usr/share/doc"], epoch)
    with open(tarball, "wb") as out:
        tar = subprocess.Popen(argv, stdout=subprocess.PIPE)
        subprocess.run(["zstd", "-q", "-c"], stdin=tar.stdout, stdout=out, check=True)
        assert tar.wait() == 0


def root_ids(root):
    return {os.path.join(d, n): os.lstat(os.path.join(d, n)).st_ctime_ns
            for d, ds, fs in os.walk(root) for n in ds + fs}


def test_tarball_view_holds_the_clamped_times_and_leaves_the_root_alone(capsys, monkeypatch, env):
    root, img, store, _info = env
    img.mkdir(parents=True)
    tarball = img / "image.tar.zst"
    packed(root, tarball, 1000000000)  # usr's time (2009) is later: clamped to 2001
    before = root_ids(root)
    args = dict(root=str(root), dest=str(img / "image.caidx"), store=str(store), tarball=str(tarball))
    rec = Recorder()
    res = run_module(capsys, monkeypatch, args, rec)
    view = str(root.parent / ".workdir.index-view")
    assert rec.calls[0][:2] == ["tar", "--extract"] and rec.calls[0][2:4] == ["--file=%s" % tarball, "--zstd"]
    assert rec.calls[1] == CASYNC + ["--store=%s" % store, "make", str(img / ".partial-image.caidx"), view]
    assert rec.seen[0]["mtime"] == 1000000000 * 10**9, "casync saw the root's time, not the tarball's"
    assert "usr/share/doc" not in rec.seen[0]["tree"] and "usr/bin/tool" in rec.seen[0]["tree"]
    assert res["root_bytes"] == 6 * 4096 + 4 + 300 and "reused" not in res
    assert not os.path.lexists(view)
    assert root_ids(root) == before, "the root's inodes were touched"


def test_the_same_tarball_reuses_its_index_while_it_and_its_chunks_are_intact(capsys, monkeypatch, env):
    root, img, store, _info = env
    img.mkdir(parents=True)
    packed(root, img / "image.tar.zst", None)
    args = dict(root=str(root), dest=str(img / "image.caidx"), store=str(store), tarball=str(img / "image.tar.zst"))
    rec = Recorder()
    first = run_module(capsys, monkeypatch, args, rec)
    for chunk in caindex.read_index(first["path"])[2]:
        os.makedirs(os.path.dirname(caindex.chunk_path(str(store), chunk)), exist_ok=True)
        open(caindex.chunk_path(str(store), chunk), "wb").close()
    # The next build: another image directory, the same tarball bytes.
    img2 = img.parent / "v2"
    img2.mkdir()
    packed(root, img2 / "image.tar.zst", None)
    args2 = dict(args, dest=str(img2 / "image.caidx"), tarball=str(img2 / "image.tar.zst"))
    second = run_module(capsys, monkeypatch, args2, rec)
    assert len(rec.calls) == 2, "indexed again: %s" % rec.calls[2:]
    assert second["reused"] == first["path"] and second["changed"]
    assert os.path.samefile(first["path"], second["path"])
    assert {k: second[k] for k in ("sha512", "chunks", "root_bytes")} == \
        {k: first[k] for k in ("sha512", "chunks", "root_bytes")}
    # A chunk gone from the store, or another tarball: indexed again.
    os.unlink(caindex.chunk_path(str(store), caindex.read_index(first["path"])[2][1]))
    img3 = img.parent / "v3"
    img3.mkdir()
    packed(root, img3 / "image.tar.zst", None)
    third = run_module(capsys, monkeypatch, dict(args, dest=str(img3 / "image.caidx"),
                                                tarball=str(img3 / "image.tar.zst")), rec)
    assert "reused" not in third and rec.calls[-1][-2].endswith(".partial-image.caidx")
    (root / "etc/hostname").write_text("other\n")
    packed(root, img3 / "image.tar.zst", None)
    calls = len(rec.calls)
    run_module(capsys, monkeypatch, dict(args, dest=str(img3 / "image.caidx"), tarball=str(img3 / "image.tar.zst")),
               rec)
    assert len(rec.calls) == calls + 2  # tar and casync again


def test_a_tarball_carrying_the_controller_record_is_refused(capsys, monkeypatch, env):
    root, img, store, _info = env
    img.mkdir(parents=True)
    (root / ".gse-installed").write_text("version: forged\n")
    packed(root, img / "image.tar.zst", None)
    (root / ".gse-installed").unlink()
    res = run_module(capsys, monkeypatch, dict(root=str(root), dest=str(img / "image.caidx"), store=str(store),
                                               tarball=str(img / "image.tar.zst")), Recorder())
    assert res["failed"] and ".gse-installed" in res["msg"]
    assert not os.path.lexists(root.parent / ".workdir.index-view") and not (img / "image.caidx").exists()
