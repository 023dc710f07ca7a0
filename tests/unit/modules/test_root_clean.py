"""root_clean: mount refusal, allowed parents, no symlink escape, check mode, changed/not changed."""
import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gse.stateless.plugins.module_utils import safe_paths
from ansible_collections.gse.stateless.plugins.modules import root_clean


def run_module(capsys, args, check=False):
    if check:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args), pytest.raises(SystemExit):
        root_clean.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A root with junk, a symlink to a 'host' directory and a host file that must survive."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "precious").write_text("keep")
    root = tmp_path / "parent" / "workdir"
    (root / "var/tmp/portage/build").mkdir(parents=True)
    (root / "var/tmp/portage/build/log").write_text("x" * 100)
    (root / "var/tmp/.hidden").write_text("yy")
    (root / "usr/share/doc/pkg").mkdir(parents=True)
    (root / "usr/share/doc/pkg/README").write_text("doc")
    (root / "etc").mkdir()
    (root / "etc/keep").write_text("k")
    (root / "tmp").symlink_to(host)              # tmp -> host dir (absolute, as in a chroot)
    (root / "usr/share/link").symlink_to(host)
    empty = tmp_path / "mountinfo"
    empty.write_text("22 1 0:21 / / rw shared:1 - ext4 /dev/vda rw\n")
    monkeypatch.setattr(safe_paths, "MOUNTINFO", str(empty))
    return tmp_path, root, host


def args_for(tmp_path, root, entries):
    return dict(root=str(root), entries=entries, allowed_parents=[str(tmp_path / "parent")])


def test_unescapes_octal_mount_points():
    text = "36 25 0:32 / /srv/with\\040space\\011tab rw - tmpfs tmpfs rw\n37 25 0:33 / /x rw - tmpfs t rw\n"
    assert safe_paths.mount_points(text) == ["/srv/with space\ttab", "/x"]


def test_mounts_under_root_detected(tmp_path):
    root = tmp_path / "my root"
    root.mkdir()
    info = tmp_path / "mi"
    escaped = str(root).replace(" ", "\\040")
    info.write_text("1 0 0:1 / / rw - ext4 x rw\n2 1 0:2 / %s/proc rw - proc proc rw\n"
                    "3 1 0:3 / %sx rw - tmpfs t rw\n" % (escaped, escaped))
    # A sibling whose name only starts like the root is not under it.
    assert safe_paths.mounts_at_or_under(str(root), str(info)) == [str(root) + "/proc"]


def test_refuses_when_mounted_under_root_and_deletes_nothing(capsys, tree, monkeypatch):
    tmp_path, root, _host = tree
    info = tmp_path / "mi2"
    info.write_text("2 1 0:2 / %s/var/tmp rw - tmpfs t rw\n" % root)
    monkeypatch.setattr(safe_paths, "MOUNTINFO", str(info))
    out = run_module(capsys, args_for(tmp_path, root, ["var/tmp/*"]))
    assert out["failed"] and str(root) + "/var/tmp" in out["mounts"]
    assert (root / "var/tmp/portage/build/log").exists()


@pytest.mark.parametrize("bad", ["/", "outside"])
def test_refuses_root_outside_allowed_parents(capsys, tree, bad):
    tmp_path, _root, host = tree
    root = "/" if bad == "/" else str(host)
    out = run_module(capsys, dict(root=root, entries=["*"], allowed_parents=[str(tmp_path / "parent"), "/"]
                                  if bad == "/" else [str(tmp_path / "parent")]))
    assert out["failed"]
    assert (host / "precious").exists()


def test_refuses_symlinked_root(capsys, tree):
    tmp_path, root, _host = tree
    link = tmp_path / "parent" / "alias"
    link.symlink_to(root)
    out = run_module(capsys, args_for(tmp_path, link, ["etc"]))
    assert out["failed"] and "symlink" in out["msg"]
    assert (root / "etc/keep").exists()


def test_refuses_dotdot(capsys, tree):
    tmp_path, root, host = tree
    out = run_module(capsys, args_for(tmp_path, root, ["var/../../host/*"]))
    assert out["failed"] and (host / "precious").exists()


def test_symlinks_are_removed_not_followed(capsys, tree):
    tmp_path, root, host = tree
    out = run_module(capsys, args_for(tmp_path, root, ["tmp/*", "tmp", "usr/share/link/*", "usr/share/link"]))
    assert out["changed"]
    assert out["removed"] == ["/tmp", "/usr/share/link"]
    assert (host / "precious").read_text() == "keep"
    assert not os.path.lexists(root / "tmp")


def test_check_mode_lists_then_removes_then_not_changed(capsys, tree):
    tmp_path, root, _host = tree
    args = args_for(tmp_path, root, ["var/tmp/*", "/usr/share/doc"])
    planned = run_module(capsys, args, check=True)
    assert planned["changed"] and planned["removed"] == ["/usr/share/doc", "/var/tmp/.hidden", "/var/tmp/portage"]
    assert planned["bytes"] == 105
    assert (root / "var/tmp/portage/build/log").exists()

    done = run_module(capsys, args)
    assert done["changed"] and done["removed"] == planned["removed"] and done["bytes"] == 105
    assert sorted(os.listdir(root / "var/tmp")) == [] and not (root / "usr/share/doc").exists()
    assert (root / "etc/keep").exists()

    again = run_module(capsys, args)
    assert not again["changed"] and again["removed"] == [] and again["bytes"] == 0


def test_other_filesystem_is_not_entered(tree):
    """A directory whose st_dev differs from the root's is refused, and nothing below it is removed."""
    _tmp_path, root, _host = tree
    fd = os.open(str(root / "var"), os.O_RDONLY | os.O_DIRECTORY)
    try:
        fake_root_dev = os.fstat(fd).st_dev + 1
        with pytest.raises(safe_paths.UnsafePath):
            safe_paths.remove_entry(fd, "tmp", fake_root_dev)
    finally:
        os.close(fd)
    assert (root / "var/tmp/portage/build/log").exists()
