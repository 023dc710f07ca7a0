"""root_manifest: what changes the digest of a root (and what does not) on a real tree."""
import os
import time

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


# Taken while tar reads the root (the pack's listing beside tar): ``since`` from change_clock.

def test_listing_beside_tar_gives_the_same_digest(root):
    since = root_manifest.change_clock()
    listing = root_manifest.Listing(str(root))
    try:
        assert listing.digest(EPOCH, (), since) == digest(root)
    finally:
        listing.close()


@pytest.mark.parametrize("change", ["write", "create", "remove", "chmod_dir"])
def test_a_change_after_since_records_no_digest(root, change):
    since = root_manifest.change_clock()
    if change == "write":
        (root / "etc/hostname").write_text("lab\n")
    elif change == "create":
        (root / "etc/new").write_text("x")
    elif change == "remove":  # gone from the listing: its directory's change time tells
        os.unlink(root / "etc/hostname")
    else:
        os.chmod(root / "etc", 0o700)
    assert root_manifest.digest(str(root), EPOCH, (), since) is None
    # What was changed before the clock was read stays in the digest.
    assert root_manifest.digest(str(root), EPOCH, (), root_manifest.change_clock()) == digest(root)


def test_a_change_in_a_left_out_entry_does_not_count(root):
    (root / "var/tmp").mkdir(parents=True)
    since = root_manifest.change_clock()
    (root / "var/tmp/x").write_text("x")
    # var/tmp itself changed (an entry was added) and is in the tarball: no digest.
    assert root_manifest.digest(str(root), EPOCH, ["./var/tmp/*"], since) is None
    since = root_manifest.change_clock()
    (root / "var/tmp/x").write_text("y")  # a left-out file's content: not in the tarball
    assert root_manifest.digest(str(root), EPOCH, ["./var/tmp/*"], since) is not None


@pytest.mark.parametrize("stamp,since,changed", [
    (b"1700000000.5000000000", 1700000000500000000, True),
    (b"1700000000.4999999990", 1700000000500000000, False),
    # One nanosecond apart at today's times: a float cannot tell these apart.
    (b"1796065965.1652669650", 1796065965165266965, True),
    (b"1796065965.1652669640", 1796065965165266965, False),
    # Whole seconds: a filesystem that truncates stamps; a change just after since may show as before it.
    (b"1700000000.0000000000", 1700000000900000000, True),
    (b"1699999997.0000000000", 1700000000900000000, False),
])
def test_changed_since(stamp, since, changed):
    assert root_manifest.changed_since(stamp, since) is changed


def test_failed_listing_is_an_error(tmp_path):
    listing = root_manifest.Listing(str(tmp_path / "nope"))
    try:
        with pytest.raises(root_manifest.ManifestError) as e:
            listing.digest()
    finally:
        listing.close()
    assert e.value.cmd[0] == "find" and e.value.rc != 0 and "nope" in e.value.stderr


def test_change_clock_is_after_the_fine_clock_at_entry():
    # Multigrain stamps (Linux 6.13+) may be ahead of the coarse clock: a
    # change just before the call must still read as before ``since``.
    entry = time.clock_gettime_ns(time.CLOCK_REALTIME)
    assert root_manifest.change_clock() > entry
