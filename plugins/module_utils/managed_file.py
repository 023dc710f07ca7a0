# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Replace small configuration files and symlinks atomically, only when they differ.

Each writer returns whether the file changed (would change, in check mode),
so modules derive ``changed`` from the files themselves.
"""

from __future__ import annotations

import os

from ansible_collections.gse.stateless.plugins.module_utils.atomic_file import write_atomic


def read(path):
    """The text of ``path``, or None when it does not exist."""
    try:
        with open(path, "r", encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except FileNotFoundError:
        return None


def write(module, path, content, mode=0o644):
    """Write ``content`` to ``path`` unless it already holds it.  Returns changed.

    A new file gets ``mode``; an existing one keeps its owner and mode."""
    if read(path) == content:
        return False
    if module.check_mode:
        return True
    write_atomic(path, content, mode, keep_existing=True)
    return True


def symlink(module, path, target):
    """Make ``path`` a symlink to ``target`` (replacing a file or another link).  Returns changed."""
    if os.path.islink(path) and os.readlink(path) == target:
        return False
    if os.path.isdir(path) and not os.path.islink(path):
        module.fail_json(msg="%s is a directory, not a symlink: move it away first" % path)
    if module.check_mode:
        return True
    tmp = "%s.%d.tmp" % (path, os.getpid())
    if os.path.lexists(tmp):
        os.unlink(tmp)
    os.symlink(target, tmp)
    os.rename(tmp, path)
    return True


def describe_link(path):
    """How ``path`` looks, for a diff: its link target, or what it is."""
    if os.path.islink(path):
        return "%s -> %s\n" % (path, os.readlink(path))
    if os.path.exists(path):
        return "%s (not a symlink)\n" % path
    return ""
