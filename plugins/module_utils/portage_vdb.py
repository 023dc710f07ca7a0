# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What is installed, read from Portage's package database (/var/db/pkg).

Modules snapshot it before and after running emerge and report what really
changed.  Each installed package is ``<category>/<pf>`` with a ``COUNTER``
file that Portage raises on every merge, so a reinstall of the same version
(``--emptytree``, a USE change) shows as a changed counter.
"""

from __future__ import annotations

import os

VDB = "/var/db/pkg"
WORLD = "/var/lib/portage/world"
WORLD_SETS = "/var/lib/portage/world_sets"


def _identity(pkgdir):
    """The merge identity of one installed package: its COUNTER, else its mtime."""
    try:
        with open(os.path.join(pkgdir, "COUNTER"), "r") as f:
            return "counter:" + f.read().strip()
    except OSError:
        pass
    try:
        return "mtime:%d" % os.stat(pkgdir).st_mtime_ns
    except OSError:
        return None


def installed(vdb=VDB):
    """{cpv: identity} of every package in the vdb."""
    result = {}
    try:
        categories = os.listdir(vdb)
    except OSError:
        return result
    for cat in categories:
        catdir = os.path.join(vdb, cat)
        if cat.startswith(".") or not os.path.isdir(catdir):
            continue
        for pf in os.listdir(catdir):
            # Portage merges into "-MERGING-<pf>" and leaves lockfiles next to
            # the entries: neither is an installed package.
            if pf.startswith(("-MERGING-", ".")):
                continue
            pkgdir = os.path.join(catdir, pf)
            if os.path.isdir(pkgdir):
                result["%s/%s" % (cat, pf)] = _identity(pkgdir)
    return result


def compare(before, after):
    """(merged, unmerged) cpv lists between two ``installed()`` snapshots."""
    merged = sorted(cpv for cpv, ident in after.items() if before.get(cpv) != ident)
    unmerged = sorted(cpv for cpv in before if cpv not in after)
    return merged, unmerged


def read_selected(world=WORLD, world_sets=WORLD_SETS):
    """The selected atoms and sets (the @selected set), as a sorted list."""
    entries = set()
    for path in (world, world_sets):
        try:
            with open(path, "r") as f:
                entries.update(line.strip() for line in f if line.strip() and not line.startswith("#"))
        except OSError:
            pass
    return sorted(entries)
