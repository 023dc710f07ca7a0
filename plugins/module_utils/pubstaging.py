# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The staging directories of the publication tree, and their safe removal.

A publish writes ``images/.staging-<version>`` and ``config/.staging-<serial>``
and renames them into place; a prune renames an image to
``images/.staging-.prune-<version>`` before deleting it (no version starts
with a dot, so no version's staging name is a prune's).  A publisher killed
in the middle (SIGKILL, a power cut) leaves its staging directory, and the
chunks it had already moved into ``store/``, behind.  Every writer holds the
tree's lock, so under the lock any staging directory is a leftover.  Each
writer clears only its own names: the publish here, the prune in the
publication module.

Releases before this one hid a pruned image as ``images/.staging-prune-<version>``,
which is also the publish's staging name of a version called
``prune-<version>``.  Such a leftover cannot be told from the other and need
not be: under the lock it is a leftover either way, and removing it with the
chunks that only it names (what the publish does) is what the prune would
have done too.  The publish therefore clears it as its own; the prune clears
it as well (LEGACY_PRUNING), so that a tree that is only pruned is cleared.
"""

from __future__ import annotations

import os
import re
import shutil

from ansible_collections.gse.stateless.plugins.module_utils import caindex
from ansible_collections.gse.stateless.plugins.module_utils import pubhistory
from ansible_collections.gse.stateless.plugins.module_utils import pubtree as tree
from ansible_collections.gse.stateless.plugins.module_utils.atomic_file import fsync_dir
from ansible_collections.gse.stateless.plugins.module_utils.mountinfo import mounts_under

STAGING = tree.staging_name("")  # ".staging-"
PRUNING = tree.pruning_name("")  # ".staging-.prune-"
LEGACY_PRUNING = STAGING + "prune-"  # older releases' prune: see above
_SERIAL = re.compile(r"^[0-9]{1,20}$")


def remove_tree(path):
    """Delete a directory of the publication tree; refuse a symlink and one with anything mounted at or below it.

    The mounts are read from /proc/self/mountinfo, the table ``findmnt -R``
    shows; ``findmnt -R DIR`` itself lists nothing when DIR is not a mount
    point, even with mounts below it, so it is not asked.  shutil.rmtree
    never follows a symlink below ``path``: it removes the link."""
    if os.path.islink(path):
        raise tree.TreeError("%s is a symlink; not followed, not removed" % path)
    mounted = mounts_under(path)
    if mounted:
        raise tree.TreeError("%s has a mount point at or below it (%s); not removed" % (path, ", ".join(mounted)))
    shutil.rmtree(path)


def publish_staging(pub):
    """The staging directories a publish makes that exist in ``pub``: [(relative path, kind)].

    ``kind`` is ``image`` or ``config``; only names a publish makes count
    (``images/.staging-<version>``, ``config/.staging-<serial>``; not a
    prune's ``.staging-.prune-<version>``, which is no version's staging
    name); a directory of the tree that is a symlink is not looked into."""
    found = []
    for sub, kind in ((tree.IMAGES, "image"), (tree.CONFIG, "config")):
        parent = os.path.join(pub, sub)
        if os.path.islink(parent) or not os.path.isdir(parent):
            continue
        for name in sorted(os.listdir(parent)):
            if not name.startswith(STAGING) or name.startswith(PRUNING):
                continue
            rest = name[len(STAGING):]
            if kind == "config" and not _SERIAL.match(rest):
                continue
            if kind == "image":
                try:
                    tree.check_version(rest)
                except tree.TreeError:
                    continue
            found.append((os.path.join(sub, name), kind))
    return found


def _orphaned_chunks(pub, staging_dirs):
    """{chunk id: path} in store/ that the staging directories' indexes name and no published index does.

    Empty when a published index cannot be read: the prune, which refuses
    then too, is left to decide."""
    named = set()
    for path in staging_dirs:
        index = os.path.join(path, tree.INDEX)
        if os.path.isfile(index) and not os.path.islink(index):
            try:
                named.update(caindex.read_index(index)[2])
            except (caindex.CaIndexError, OSError):
                continue  # cut when the publisher died: its chunks are the prune's to collect
    if not named:
        return {}
    try:
        wanted = pubhistory.referenced_chunks(pub, pubhistory.image_versions(pub))
    except (caindex.CaIndexError, OSError):
        return {}
    return {c: p for c, p in pubhistory.stored_chunks(pub).items() if c in named and c not in wanted}


def clear_stale(pub, check=False):
    """Remove what an interrupted publish left in ``pub``; call it holding the tree's lock.

    Returns dict(removed=[relative paths of staging directories],
    chunks_removed=N, skipped=[messages]): a symlink with a staging name is
    neither followed nor removed, nor is a directory with something mounted
    below it.  With ``check`` nothing is removed, what would be is returned."""
    removed, skipped, dirs = [], [], []
    for rel, kind in publish_staging(pub):
        path = os.path.join(pub, rel)
        if os.path.islink(path) or not os.path.isdir(path):
            skipped.append("%s is not a directory (a symlink is never followed); left alone" % rel)
            continue
        mounted = mounts_under(path)
        if mounted:
            skipped.append("%s has a mount point below it (%s); left alone" % (rel, ", ".join(mounted)))
            continue
        removed.append(rel)
        if kind == "image":
            dirs.append(path)
    chunks = _orphaned_chunks(pub, dirs)
    if not check:
        for rel in removed:
            remove_tree(os.path.join(pub, rel))
        for path in chunks.values():
            os.unlink(path)
        for sub in sorted({os.path.dirname(rel) for rel in removed}):
            fsync_dir(os.path.join(pub, sub))
        if chunks:
            fsync_dir(os.path.join(pub, tree.STORE))
    return dict(removed=removed, chunks_removed=len(chunks), skipped=skipped)
