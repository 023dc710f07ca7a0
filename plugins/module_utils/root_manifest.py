# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A digest of a root's state, cheap enough to take before every pack.

Packing reads and compresses every byte of the root; this reads only the
inodes.  find(1) lists every entry on the root's filesystem with its inode
number, link count, mode, owner, size, modification time and change time,
and the digest covers that list sorted by path.  The change time (ctime) is
set by the kernel on every write, chmod, chown, xattr or ACL change, rename
or link of an inode and cannot be set back from user space, so an entry
whose inode and ctime are unchanged has unchanged content and metadata.

Directories are the exception: creating and removing a temporary file in a
directory changes its times, and the build does that everywhere (resolv.conf,
logs, temporary files), although the directory ends up the same.  For a
directory the digest takes what the tarball stores (mode, owner, the
modification time as clamped to ``source_date_epoch``, its xattrs and ACLs,
read here) and leaves its inode times out; its entries are covered one by one.

Equal digests therefore mean a tar of the root with the same options gives
the same bytes.  A different digest only means "pack again": a file the build
rewrote with the same content changes the digest and costs one pack, never a
stale image.

The listing can be taken while tar reads the root (it then costs no wall
time of its own), given ``since``: the time, read before tar started, from
the clock the kernel stamps change times with.  An entry changed after that
has a change time at or after it (the kernel sets it, user space cannot set
it back), also a directory an entry was added to or removed from.  When any
listed entry has one, tar may have read another state than the one listed,
and the digest is None: nothing is recorded that could match later, and the
next pack packs.  Otherwise every entry was listed as it was before tar
started, so tar read that state or a later one, which a later digest shows.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import subprocess
import tempfile
import time

# Path, then the fields, then the symlink target: \0-separated, as names may hold anything.
FIND_FORMAT = "%P\\0%y %i %n %m %U %G %s %T@ %C@\\0%l\\0"
# The kernel stamps change times from the coarse real-time clock (or later
# fine-grained readings), never earlier than this clock's reading.
CLOCK_REALTIME_COARSE = getattr(time, "CLOCK_REALTIME_COARSE", 5)
# Filesystems that keep whole seconds (or two, FAT) truncate the stamps.
COARSE_STAMP_MARGIN = 2.0


class ManifestError(Exception):
    def __init__(self, msg, cmd, rc, stderr):
        super().__init__(msg)
        self.msg, self.cmd, self.rc, self.stderr = msg, cmd, rc, stderr


def find_argv(root):
    return ["find", root, "-xdev", "-printf", FIND_FORMAT]


def change_clock():
    """The ``since`` for a digest taken while tar runs, in nanoseconds: a tick of the coarse clock after now.

    Change times are stamped from the coarse real-time clock or, since
    Linux 6.13's multigrain time stamps, from the fine-grained clock, which
    runs up to a tick ahead of the coarse one.  So ``since`` is the first
    coarse reading beyond the fine clock at entry: a change made before this
    call has a stamp at or before that fine reading (before ``since``); a
    change after it returns has a stamp at or after the coarse clock then
    (at or after ``since``).  The wait is one or two ticks.
    """
    entry = time.clock_gettime_ns(time.CLOCK_REALTIME)
    step = time.clock_getres(CLOCK_REALTIME_COARSE) / 8
    while True:
        now = time.clock_gettime_ns(CLOCK_REALTIME_COARSE)
        if now > entry:
            return now
        time.sleep(step)


def _xattrs(path):
    try:
        names = sorted(os.listxattr(path, follow_symlinks=False))
        return [(n, os.getxattr(path, n, follow_symlinks=False).hex()) for n in names]
    except OSError:
        return None  # no xattr support: nothing tar could store either


def excluded(path, patterns):
    """Whether tar's ``--anchored --wildcards --exclude=<pattern>`` leaves out ``./<path>``.

    A pattern (``./var/tmp/*``, ``*`` crossing ``/``) matches the member name
    from its start; a directory it matches is left out with its content.
    """
    name = "./" + path
    while True:
        if any(fnmatch.fnmatchcase(name, p) for p in patterns):
            return True
        if "/" not in name[2:]:
            return False
        name = name.rsplit("/", 1)[0]


def digest(root, source_date_epoch=None, exclude_patterns=(), since=None):
    """Hex SHA-256 over the sorted entry list of ``root`` (see the module's description).

    Entries that ``exclude_patterns`` (tar's ``--exclude`` patterns, as
    ``tar_stream.exclude_args`` writes them without the option name) leave
    out of the tarball are left out here too.  With ``since`` (from
    ``change_clock``), None when a listed entry changed at or after it.
    """
    argv = find_argv(root)
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise ManifestError("listing %s failed" % root, argv, proc.returncode,
                            proc.stderr.decode("utf-8", "replace"))
    return digest_of_listing(proc.stdout, root, source_date_epoch, exclude_patterns, since)


class Listing:
    """find listing ``root`` in the background, into a temporary file: the digest without waiting for it.

    ``preexec_fn`` is given to the process (the pack's ``die_with_parent``).
    ``close`` ends find if it still runs.
    """

    def __init__(self, root, preexec_fn=None):
        self.root, self.argv = root, find_argv(root)
        self.out, self.err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
        self.proc = subprocess.Popen(self.argv, stdout=self.out, stderr=self.err, close_fds=True,
                                     preexec_fn=preexec_fn)

    def digest(self, source_date_epoch=None, exclude_patterns=(), since=None):
        """As ``digest``, of the listing find is making (waits for it)."""
        rc = self.proc.wait()
        if rc != 0:
            self.err.seek(0)
            raise ManifestError("listing %s failed" % self.root, self.argv, rc,
                                self.err.read().decode("utf-8", "replace"))
        self.out.seek(0)
        return digest_of_listing(self.out.read(), self.root, source_date_epoch, exclude_patterns, since)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.out.close()
        self.err.close()


def digest_of_listing(listing, root, source_date_epoch=None, exclude_patterns=(), since=None):
    """The digest of find's output ``listing`` (``FIND_FORMAT``) for ``root``; see ``digest``."""
    fields = listing.split(b"\0")
    entries = []
    newest = b""  # the latest change time (find writes them all with 10 decimals: compared as text)
    for i in range(0, len(fields) - 2, 3):
        path, meta, target = fields[i], fields[i + 1].split(b" "), fields[i + 2]
        if exclude_patterns and path and excluded(os.fsdecode(path), exclude_patterns):
            continue
        if len(meta[8]) > len(newest) or (len(meta[8]) == len(newest) and meta[8] > newest):
            newest = meta[8]
        if meta[0] == b"d":
            mtime = int(float(meta[7]))
            if source_date_epoch is not None:
                mtime = min(mtime, int(source_date_epoch))
            xattrs = _xattrs(os.path.join(os.fsencode(root), path))
            entries.append((path, b"d %s %s %s %d %r" % (meta[3], meta[4], meta[5], mtime, xattrs)))
        else:
            entries.append((path, fields[i + 1] + b" " + target))
    if since is not None and (newest and changed_since(newest, since)
                              or time.clock_gettime_ns(CLOCK_REALTIME_COARSE) < since):
        return None  # changed while tar read it, or the clock was set back: nothing to compare
    entries.sort()
    h = hashlib.sha256()
    for path, meta in entries:
        h.update(path + b"\0" + meta + b"\0")
    return h.hexdigest()


def stamp_ns(stamp):
    """A time as find writes it (``1700000000.1234567890``) in whole nanoseconds, without a float's rounding."""
    seconds, _dot, fraction = stamp.partition(b".")
    return int(seconds) * 1000000000 + int((fraction[:9] or b"0").ljust(9, b"0"))


def changed_since(stamp, since):
    """Whether a change time as find writes it is at or after ``since`` (nanoseconds, from change_clock).

    Whole-second stamps come from a filesystem that truncates them: then
    a change up to COARSE_STAMP_MARGIN seconds before ``since`` counts too.
    """
    fraction = stamp.partition(b".")[2]
    margin = int(COARSE_STAMP_MARGIN * 1000000000) if not fraction.strip(b"0") else 0
    return stamp_ns(stamp) >= since - margin
