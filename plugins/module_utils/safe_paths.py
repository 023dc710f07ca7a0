# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Safe work inside a build root: mounts, allowed parents, no symlink escape.

The build root (the chroot's workdir) holds absolute symlinks such as
``var/tmp -> /tmp`` or ``lib -> usr/lib`` that point at the *host* when
followed from outside the chroot.  Everything here therefore works on
directory file descriptors opened with ``O_NOFOLLOW``: a symlink is an entry
(removed as such), never a directory to descend into, and a directory on
another filesystem is never entered.
"""

from __future__ import annotations

import errno
import fnmatch
import os
import re
import shutil
import stat

MOUNTINFO = "/proc/self/mountinfo"
_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
_OCTAL = re.compile(r"\\([0-7]{3})")


class UnsafePath(Exception):
    """A root or an entry that must not be touched."""


def unescape_mountinfo(field):
    """Undo the kernel's octal escapes (space, tab, newline, backslash) in a mountinfo path."""
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def mount_points(mountinfo_text):
    """Mount points listed in the text of /proc/self/mountinfo (field 5)."""
    points = []
    for line in mountinfo_text.splitlines():
        fields = line.split(" ")
        if len(fields) > 4:
            points.append(unescape_mountinfo(fields[4]))
    return points


def mounts_at_or_under(root, mountinfo_path=None):
    """Mount points at ``root`` or below it (``root`` is resolved first)."""
    real = os.path.realpath(root)
    with open(mountinfo_path or MOUNTINFO, encoding="utf-8", errors="surrogateescape") as f:
        text = f.read()
    prefix = real.rstrip("/") + "/"
    return sorted({p for p in mount_points(text) if p == real or p.startswith(prefix)})


def remove_unmounted(path):
    """Remove the directory tree ``path`` (a module's own scratch copy) unless
    anything is mounted at or under it; returns those mount points (nothing
    removed then), or [] once removed.  An absent ``path`` is [] too."""
    if not os.path.lexists(path):
        return []
    mounts = mounts_at_or_under(os.path.realpath(path))
    if mounts:
        return mounts
    shutil.rmtree(path)
    return []


def check_root(root, allowed_parents):
    """Resolve ``root`` and refuse ``/``, a symlinked root or one outside the allowed parents."""
    if not os.path.isabs(root):
        raise UnsafePath("root must be an absolute path: %s" % root)
    st = os.lstat(root)
    if stat.S_ISLNK(st.st_mode):
        raise UnsafePath("root is a symlink: %s" % root)
    if not stat.S_ISDIR(st.st_mode):
        raise UnsafePath("root is not a directory: %s" % root)
    real = os.path.realpath(root)
    if real == "/":
        raise UnsafePath("refusing to work on /")
    for parent in allowed_parents:
        preal = os.path.realpath(parent)
        # Strictly below: the parent itself (e.g. /var/tmp/gse) is not a root.
        if preal != "/" and real.startswith(preal.rstrip("/") + "/"):
            return real
        if preal == "/" and real != "/":
            return real
    raise UnsafePath("root %s is not below any allowed parent (%s)" % (real, ", ".join(allowed_parents) or "none"))


def split_pattern(pattern):
    """Components of an entry pattern relative to the root; refuses '..'."""
    parts = [p for p in pattern.strip("/").split("/") if p not in ("", ".")]
    if not parts:
        raise UnsafePath("empty entry pattern: %r" % pattern)
    if ".." in parts:
        raise UnsafePath("entry pattern leaves the root: %r" % pattern)
    return parts


def _has_magic(part):
    return any(c in part for c in "*?[")


def open_dir(name, dir_fd=None):
    """Open a directory without following a symlink; None when it is not one."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
    except (NotADirectoryError, FileNotFoundError):
        return None
    except OSError as e:
        if e.errno == errno.ELOOP:  # the name is a symlink
            return None
        raise


def find_entries(root_fd, pattern, root_dev):
    """Relative paths matching ``pattern`` below ``root_fd``.

    ``*``, ``?`` and ``[...]`` match within one component and also match
    names starting with a dot (cleanup wants ``var/tmp/*`` to include
    ``.hidden``).  Intermediate components are entered only when they are real
    directories on the root's filesystem.
    """
    parts = split_pattern(pattern)
    found = []

    def walk(fd, rel, idx):
        part = parts[idx]
        last = idx == len(parts) - 1
        if _has_magic(part):
            names = sorted(fnmatch.filter(os.listdir(fd), part))
        else:
            names = [part]
        for name in names:
            try:
                st = os.stat(name, dir_fd=fd, follow_symlinks=False)
            except FileNotFoundError:
                continue
            path = rel + "/" + name
            if last:
                found.append((path, st))
                continue
            if not stat.S_ISDIR(st.st_mode) or st.st_dev != root_dev:
                continue
            sub = open_dir(name, fd)
            if sub is None:
                continue
            try:
                walk(sub, path, idx + 1)
            finally:
                os.close(sub)

    walk(root_fd, "", 0)
    return found


def tree_size(dir_fd, name, root_dev):
    """Bytes of the regular files of an entry, counted without following links or leaving the filesystem."""
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        return st.st_size if stat.S_ISREG(st.st_mode) else 0
    if st.st_dev != root_dev:
        return 0
    sub = open_dir(name, dir_fd)
    if sub is None:
        return 0
    try:
        return sum(tree_size(sub, child, root_dev) for child in os.listdir(sub))
    finally:
        os.close(sub)


def remove_entry(dir_fd, name, root_dev):
    """Remove one entry; directories depth first through fds, never across a filesystem boundary.

    Returns the bytes of regular files removed.  Raises UnsafePath when a
    directory on another filesystem is found (nothing below it is touched).
    """
    st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    if not stat.S_ISDIR(st.st_mode):
        os.unlink(name, dir_fd=dir_fd)
        return st.st_size if stat.S_ISREG(st.st_mode) else 0
    if st.st_dev != root_dev:
        raise UnsafePath("%s is on another filesystem" % name)
    sub = open_dir(name, dir_fd)
    if sub is None:  # replaced by a symlink since the stat: remove the link
        os.unlink(name, dir_fd=dir_fd)
        return 0
    try:
        freed = sum(remove_entry(sub, child, root_dev) for child in os.listdir(sub))
    finally:
        os.close(sub)
    os.rmdir(name, dir_fd=dir_fd)
    return freed


def parent_fd_of(root_fd, rel):
    """An fd for the directory holding ``rel`` (a path found by find_entries), opened without following links."""
    parts = rel.strip("/").split("/")
    fd = os.dup(root_fd)
    for part in parts[:-1]:
        sub = open_dir(part, fd)
        os.close(fd)
        if sub is None:
            raise UnsafePath("%s changed while cleaning" % rel)
        fd = sub
    return fd, parts[-1]
