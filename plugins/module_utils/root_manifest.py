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
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import subprocess

# Path, then the fields, then the symlink target: \0-separated, as names may hold anything.
FIND_FORMAT = "%P\\0%y %i %n %m %U %G %s %T@ %C@\\0%l\\0"


class ManifestError(Exception):
    def __init__(self, msg, cmd, rc, stderr):
        super().__init__(msg)
        self.msg, self.cmd, self.rc, self.stderr = msg, cmd, rc, stderr


def find_argv(root):
    return ["find", root, "-xdev", "-printf", FIND_FORMAT]


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


def digest(root, source_date_epoch=None, exclude_patterns=()):
    """Hex SHA-256 over the sorted entry list of ``root`` (see the module's description).

    Entries that ``exclude_patterns`` (tar's ``--exclude`` patterns, as
    ``tar_stream.exclude_args`` writes them without the option name) leave
    out of the tarball are left out here too.
    """
    argv = find_argv(root)
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
    if proc.returncode != 0:
        raise ManifestError("listing %s failed" % root, argv, proc.returncode,
                            proc.stderr.decode("utf-8", "replace"))
    fields = proc.stdout.split(b"\0")
    entries = []
    for i in range(0, len(fields) - 2, 3):
        path, meta, target = fields[i], fields[i + 1].split(b" "), fields[i + 2]
        if exclude_patterns and path and excluded(os.fsdecode(path), exclude_patterns):
            continue
        if meta[0] == b"d":
            mtime = int(float(meta[7]))
            if source_date_epoch is not None:
                mtime = min(mtime, int(source_date_epoch))
            xattrs = _xattrs(os.path.join(os.fsencode(root), path))
            entries.append((path, b"d %s %s %s %d %r" % (meta[3], meta[4], meta[5], mtime, xattrs)))
        else:
            entries.append((path, fields[i + 1] + b" " + target))
    entries.sort()
    h = hashlib.sha256()
    for path, meta in entries:
        h.update(path + b"\0" + meta + b"\0")
    return h.hexdigest()
