# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read /proc/self/mountinfo: which mount points lie at or under a directory.

Shared by every piece that must know whether a build directory still has
something mounted in it before it deletes or packs anything.
"""

from __future__ import annotations

import os

# The parser lives with the mount guard, which must run on its own.
from ansible_collections.gse.stateless.plugins.module_utils.mountguard import mount_points


def mounts_under(root, mountinfo="/proc/self/mountinfo"):
    """Mount points at or below ``root`` (resolved), deepest first.

    Deepest first is the order they must be released in.
    """
    root = os.path.realpath(root).rstrip("/") or "/"
    prefix = root + "/"
    found = [m for m in mount_points(mountinfo) if m == root or m.startswith(prefix)]
    return sorted(set(found), key=lambda m: (-m.count("/"), m))


def is_mount_point(path, mountinfo="/proc/self/mountinfo"):
    """True when ``path`` (resolved) is itself a mount point."""
    return os.path.realpath(path) in mount_points(mountinfo)


def top_mounts_under(root, mountinfo="/proc/self/mountinfo"):
    """The outermost mount points strictly below ``root``: what ``umount -R`` must be given."""
    root = os.path.realpath(root).rstrip("/") or "/"
    below = [m for m in mounts_under(root, mountinfo) if m != root]
    return sorted(m for m in below if not any(m.startswith(o + "/") for o in below if o != m))
