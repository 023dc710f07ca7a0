"""clamp_build_times on a small root laid out as Portage and shadow write it (real files, no stand-ins).

What this cannot show: that Portage 3.0.83 accepts the clamped records (the
integration tests build on them: tests/integration/test_reproducible.py).
"""
import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gse.stateless.plugins.module_utils import safe_paths
from ansible_collections.gse.stateless.plugins.modules import clamp_build_times

EPOCH = 1783019100            # the stage's date
BUILT = EPOCH + 13 * 86400    # when the build ran
OLD = EPOCH - 86400           # a file of the stage


def run_module(capsys, args, check=False):
    if check:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args), pytest.raises(SystemExit):
        clamp_build_times.main()
    return json.loads(capsys.readouterr().out)


def write(path, text, mtime=None):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)
    if mtime is not None:
        os.utime(path, (mtime, mtime))


@pytest.fixture
def root(tmp_path, monkeypatch):
    r = tmp_path / "workdir"
    write(r / "usr/share/tool/data", "d", BUILT)             # merged, unmodified
    write(r / "etc/tool.conf", "changed by the build", BUILT + 60)  # merged, then changed
    write(r / "usr/share/tool/old", "o", OLD)                # from the stage
    os.symlink("data", r / "usr/share/tool/link")
    os.utime(r / "usr/share/tool/link", (BUILT, BUILT), follow_symlinks=False)
    pkg = r / "var/db/pkg/app-misc/tool-1.0"
    write(pkg / "BUILD_TIME", "%d\n" % BUILT)
    write(pkg / "CONTENTS", "dir /usr/share/tool\n"
          "obj /usr/share/tool/data 8277e0910d750195b448797616e091ad %d\n"
          "obj /etc/tool.conf 0cc175b9c0f1b6a831c399e269772661 %d\n"
          "obj /usr/share/tool/old d41d8cd98f00b204e9800998ecf8427e %d\n"
          "sym /usr/share/tool/link -> data %d\n" % (BUILT, BUILT, OLD, BUILT))
    os.chmod(pkg / "CONTENTS", 0o600)
    os.utime(pkg, (BUILT, BUILT))
    dir_ns = os.stat(pkg).st_mtime_ns
    write(pkg / "metadata", "#format=1\nBUILD_TIME=%d\nSLOT=0\n#dir_mtime=%d\n" % (BUILT, dir_ns))
    os.utime(pkg, ns=(dir_ns, dir_ns))  # written last, as Portage does
    stage = r / "var/db/pkg/sys-apps/stage-1.0"
    write(stage / "BUILD_TIME", "%d\n" % OLD)
    write(stage / "CONTENTS", "obj /usr/share/tool/old d41d8cd98f00b204e9800998ecf8427e %d\n" % OLD)
    os.utime(stage, (OLD, OLD))
    write(r / "etc/shadow", "root:*:%d:0:99999:7:::\nstudent:$6$x$y:%d:0:99999:7:::\n" % (OLD // 86400,
                                                                                           BUILT // 86400))
    info = tmp_path / "mountinfo"
    info.write_text("22 1 0:21 / / rw - ext4 /dev/vda rw\n")
    monkeypatch.setattr(safe_paths, "MOUNTINFO", str(info))
    return r


def ctimes(root):
    return {os.path.join(d, n): os.lstat(os.path.join(d, n)).st_ctime_ns
            for d, ds, fs in os.walk(root) for n in ds + fs}


def test_clamps_what_the_build_wrote_and_keeps_portage_consistent(capsys, root):
    pkg = root / "var/db/pkg/app-misc/tool-1.0"
    res = run_module(capsys, dict(root=str(root), source_date_epoch=EPOCH))
    assert res["changed"] and res["packages"] == ["app-misc/tool-1.0"] and res["shadow"] == ["etc/shadow"]
    assert res["files"] == 2  # data and the symlink; tool.conf was changed after the merge
    assert (pkg / "BUILD_TIME").read_text() == "%d\n" % EPOCH
    contents = (pkg / "CONTENTS").read_text().splitlines()
    assert contents[1].endswith(" %d" % EPOCH) and contents[2].endswith(" %d" % EPOCH)
    assert contents[3].endswith(" %d" % OLD) and contents[4] == "sym /usr/share/tool/link -> data %d" % EPOCH
    assert os.stat(pkg / "CONTENTS").st_mode & 0o777 == 0o600
    # Portage's view: a file whose time equals its record is unmodified.
    assert os.lstat(root / "usr/share/tool/data").st_mtime == EPOCH
    assert os.lstat(root / "usr/share/tool/link").st_mtime == EPOCH
    assert os.lstat(root / "etc/tool.conf").st_mtime == BUILT + 60  # still "modified"
    assert os.lstat(root / "usr/share/tool/old").st_mtime == OLD
    # The metadata file stays valid: its #dir_mtime is the clamped directory time.
    meta = (pkg / "metadata").read_text()
    assert "BUILD_TIME=%d\n" % EPOCH in meta and meta.endswith("#dir_mtime=%d\n" % (EPOCH * 10**9))
    assert os.stat(pkg).st_mtime_ns == EPOCH * 10**9
    assert (root / "etc/shadow").read_text().splitlines()[1].split(":")[2] == str(EPOCH // 86400)
    assert (root / "etc/shadow").read_text().splitlines()[0].split(":")[2] == str(OLD // 86400)

    before = ctimes(root)
    again = run_module(capsys, dict(root=str(root), source_date_epoch=EPOCH))
    assert not again["changed"] and again["files"] == 0
    assert ctimes(root) == before, "a second run touched inodes (pack could not take over the tarball)"


def test_a_stale_metadata_file_stays_rejected(capsys, root):
    pkg = root / "var/db/pkg/app-misc/tool-1.0"
    meta = (pkg / "metadata").read_text().replace("#dir_mtime=", "#dir_mtime=1")
    write(pkg / "metadata", meta)
    run_module(capsys, dict(root=str(root), source_date_epoch=EPOCH))
    assert "#dir_mtime=" not in (pkg / "metadata").read_text()


def test_check_mode_writes_nothing(capsys, root):
    before = ctimes(root)
    res = run_module(capsys, dict(root=str(root), source_date_epoch=EPOCH), check=True)
    assert res["changed"] and res["packages"] == ["app-misc/tool-1.0"] and res["files"] == 2
    assert ctimes(root) == before


def test_refuses_a_mounted_root(capsys, root, tmp_path):
    (tmp_path / "mountinfo").write_text("22 1 0:21 / / rw - ext4 /dev/vda rw\n"
                                        "40 22 0:5 / %s/proc rw - proc proc rw\n" % root)
    before = ctimes(root)
    res = run_module(capsys, dict(root=str(root), source_date_epoch=EPOCH))
    assert res["failed"] and "mounted" in res["msg"] and ctimes(root) == before
