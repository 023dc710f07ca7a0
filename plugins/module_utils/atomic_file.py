# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replace a file so that a reader sees the old content or the new one, never a mix.

Write ``<path>.tmp``, fsync it, ``rename(2)`` it over ``path`` and fsync the
directory so that the rename itself survives a crash.
"""

from __future__ import annotations

import os


def fsync_dir(path):
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path, data, mode=0o644):
    """Atomically replace ``path`` with ``data`` (bytes or str)."""
    if isinstance(data, str):
        data = data.encode("utf-8")
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, mode)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)
    fsync_dir(os.path.dirname(os.path.abspath(path)))


def rename_durable(src, dst):
    """rename(2) and fsync the directory that holds ``dst``."""
    os.rename(src, dst)
    fsync_dir(os.path.dirname(os.path.abspath(dst)))
