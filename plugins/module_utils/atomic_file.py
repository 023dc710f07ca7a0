# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replace a file so that a reader sees the old content or the new one, never a mix.

Write ``<path>.tmp``, fsync it, ``rename(2)`` it over ``path`` and fsync the
directory so that the rename itself survives a crash.  This is the
collection's one atomic writer: modules, their state files and the managed
configuration files (``managed_file``) all go through ``write_atomic``.
"""

from __future__ import annotations

import filecmp
import json
import os
import stat
import tempfile


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path, data, mode=0o644, keep_existing=False, unique=False):
    """Atomically replace ``path`` with ``data`` (bytes, or str written as UTF-8).

    The file gets ``mode``; with ``keep_existing``, a file that exists keeps
    its own mode and owner (an administrator's chmod survives).  With
    ``unique``, the temporary file has a name of its own (``.<name>.XXXXXX``)
    instead of ``<path>.tmp``: for writers that may replace the same file at
    the same time (packs sharing a root, a threaded receiver).  On any error
    the temporary file is removed and ``path`` is untouched.
    """
    if isinstance(data, str):
        data = data.encode("utf-8", "surrogateescape")
    owner = None
    if keep_existing:
        try:
            st = os.stat(path)
            mode, owner = stat.S_IMODE(st.st_mode), (st.st_uid, st.st_gid)
        except FileNotFoundError:
            pass
    if unique:
        fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=os.path.dirname(os.path.abspath(path)))
    else:
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask does not narrow the requested mode
            if owner is not None:
                os.fchown(fd, *owner)
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except BaseException:
        if os.path.lexists(tmp):
            os.unlink(tmp)
        raise
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def discard(path):
    """Remove the file ``path`` when it exists (a temporary file on a failure path)."""
    if os.path.lexists(path):
        os.unlink(path)


def settle(tmp, dest):
    """Make the finished temporary file ``tmp`` the file ``dest``, unless ``dest`` holds the same bytes.

    ``tmp`` is fsynced first.  A different or missing ``dest`` is replaced by
    rename(2) and its directory fsynced; an identical one is kept (its inode
    and times too: hard links to it stay valid) and ``tmp`` removed.
    Returns whether ``dest`` changed.
    """
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    if os.path.isfile(dest) and filecmp.cmp(dest, tmp, shallow=False):
        discard(tmp)
        return False
    rename_durable(tmp, dest)
    return True


def rename_durable(src, dst):
    """rename(2) and fsync the directory that holds ``dst``."""
    os.rename(src, dst)
    fsync_dir(os.path.dirname(os.path.abspath(dst)))


def read_json_dict(path):
    """The JSON object in ``path`` as a dict; None when the file is missing, unreadable, not JSON or not an object.

    The records the modules keep beside a work directory are read with this:
    a record that cannot be read counts as none, so the work is done again.
    """
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
