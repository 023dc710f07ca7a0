# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Groups pinned to a version: their pointers ``groups/<GROUP>/version.txt``.

A pinned group's pointer is version.txt's body naming the pinned image plus
``group: GROUP``; its serial comes from version.txt's counter, so it is
higher than every serial handed out before it (clients keep one highest
serial for both).  Which groups are pinned is the set of these pointers;
the client config.d lists them (``pinned``, config_tarball.py).
"""

from __future__ import annotations

import os
import re

from ansible_collections.gse.stateless.plugins.module_utils import pubtree as tree
from ansible_collections.gse.stateless.plugins.module_utils.atomic_file import fsync_dir
from ansible_collections.gse.stateless.plugins.module_utils.pointers import read_verified

_SERIAL_LINE = re.compile(r"^serial:\s*([0-9]{1,30})\s*$", re.MULTILINE)


def groups(pub):
    """The pinned groups of the tree: sorted names of groups/<GROUP>/ holding a version.txt."""
    top = os.path.join(pub, tree.GROUPS)
    try:
        names = os.listdir(top)
    except FileNotFoundError:
        return []
    out = []
    for name in names:
        try:
            tree.check_group(name)
        except tree.TreeError:
            continue  # not ours (a .staging name, an editor's file): never listed to clients
        if os.path.isfile(os.path.join(top, name, tree.VERSION_POINTER)):
            out.append(name)
    return sorted(out)


def pointer_path(pub, group):
    return os.path.join(pub, tree.group_pointer(group))


def read(run, pub, keyring, workdir):
    """{group: the verified pointer as a dict, or None when it does not verify}."""
    return {g: read_verified(run, keyring, pointer_path(pub, g), workdir) for g in groups(pub)}


def serial_floor(pub):
    """The highest serial any group pointer carries (read without verifying:
    it only ever raises the next serial, never lowers it), 0 without pins."""
    floor = 0
    for group in groups(pub):
        try:
            with open(pointer_path(pub, group), encoding="utf-8", errors="replace") as f:
                found = [int(s) for s in _SERIAL_LINE.findall(f.read())]
        except OSError:
            continue
        floor = max([floor] + found)
    return floor


def remove(pub, group):
    """Remove the group's pointer and its directory (durably)."""
    path = pointer_path(pub, group)
    os.unlink(path)
    directory = os.path.dirname(path)
    fsync_dir(directory)
    try:
        os.rmdir(directory)
    except OSError:
        return  # something else is in it: left as it is
    fsync_dir(os.path.join(pub, tree.GROUPS))
