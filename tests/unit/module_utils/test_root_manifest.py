"""root_manifest: what changes the digest of a root (and what does not) on a real tree."""
import os

import pytest

from ansible_collections.gse.stateless.plugins.module_utils import root_manifest

EPOCH = 1_700_000_000


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "root"
    (r / "etc").mkdir(parents=True)
    (r / "etc/hostname").write_text("lab\n")
    (r / "lib").symlink_to("usr/lib")
    return r


def digest(r):
    return root_manifest.digest(str(r), EPOCH)


def test_argv():
    assert root_manifest.find_argv("/w") == ["find", "/w", "-xdev", "-printf", "%P\\0%y %i %n %m %U %G %s %T@ %C@\\0%l\\0"]


def test_temporary_entries_in_a_directory_leave_it_unchanged(root):
    before = digest(root)
    (root / "etc/resolv.conf").write_text("x")
    assert digest(root) != before
    os.unlink(root / "etc/resolv.conf")
    assert digest(root) == before


@pytest.mark.parametrize("change", ["rewrite_same", "chmod_file", "chmod_dir", "dir_xattr", "relink", "rename",
                                    "dir_old_mtime", "chown"])
def test_changes_change_the_digest(root, change):
    os.utime(root / "etc", (EPOCH - 100, EPOCH - 100))
    before = digest(root)
    if change == "rewrite_same":
        (root / "etc/hostname").write_text("lab\n")
    elif change == "chmod_file":
        os.chmod(root / "etc/hostname", 0o600)
    elif change == "chmod_dir":
        os.chmod(root / "etc", 0o700)
    elif change == "dir_xattr":
        os.setxattr(root / "etc", "user.gse", b"1")
    elif change == "relink":
        os.unlink(root / "lib")
        (root / "lib").symlink_to("usr/lib64")
    elif change == "rename":
        os.rename(root / "etc/hostname", root / "etc/hostname2")
    elif change == "dir_old_mtime":  # below the epoch the directory's time is stored as it is
        os.utime(root / "etc", (EPOCH - 50, EPOCH - 50))
    else:
        os.chown(root / "etc/hostname", 1234, 1234)
    assert digest(root) != before


def test_missing_root_is_an_error(tmp_path):
    with pytest.raises(root_manifest.ManifestError) as e:
        root_manifest.digest(str(tmp_path / "nope"))
    assert e.value.cmd[0] == "find" and e.value.rc != 0 and "nope" in e.value.stderr


def test_entries_left_out_of_the_tarball_are_left_out_here(root):
    (root / "var/cache/edb").mkdir(parents=True)
    (root / "var/cache/edb/mtimedb").write_text("{}")
    (root / "usr/share/doc/pkg").mkdir(parents=True)
    (root / "usr/share/doc/pkg/README").write_text("x")
    patterns = ["./var/cache/edb/mtimedb", "./usr/share/doc"]
    before = root_manifest.digest(str(root), EPOCH, patterns)
    (root / "var/cache/edb/mtimedb").write_text("{}")  # every emerge run writes it again
    (root / "usr/share/doc/pkg/README").write_text("y")
    assert root_manifest.digest(str(root), EPOCH, patterns) == before
    (root / "etc/hostname").write_text("lab\n")
    assert root_manifest.digest(str(root), EPOCH, patterns) != before


@pytest.mark.parametrize("path,patterns,left_out", [
    ("var/tmp/x", ["./var/tmp/*"], True),
    ("var/tmp", ["./var/tmp/*"], False),
    ("usr/share/doc/a/b", ["./usr/share/doc"], True),
    ("usr/share/documents", ["./usr/share/doc"], False),
    ("var/db/pkg/a/b-1/environment.bz2", ["./var/db/pkg/*/*/environment.bz2"], True),
    ("etc/hostname", [], False),
])
def test_excluded_follows_tar(path, patterns, left_out):
    assert root_manifest.excluded(path, patterns) is left_out
