# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The published-version history of a publication tree, and what a prune keeps.

``.gse/history`` (server side, never served) holds one JSON object a line,
oldest first, one line each time ``version.txt`` moved:
``{"serial": 7, "version": "20261130-1", "published": "...Z", "action": "publish"}``
(``action`` is ``publish``, ``rollback`` or ``resign``: the same version
signed again with a higher serial when a group is unpinned).  It is bounded: the newest
HISTORY_LIMIT lines are kept.  The signed pointer stays the truth of what
clients install; the history only says what it named before, which gives the
fallback (the version the clients' backup slot holds after an update) and
the order a prune keeps versions in.

Every function that changes the tree is called with the tree lock held.
"""

from __future__ import annotations

import datetime
import json
import os

from ansible_collections.gse.stateless.plugins.module_utils import caindex
from ansible_collections.gse.stateless.plugins.module_utils import pubtree as tree
from ansible_collections.gse.stateless.plugins.module_utils.atomic_file import write_atomic

HISTORY = "history"
HISTORY_LIMIT = 1000
ACTIONS = ("publish", "rollback", "resign")
STAMP = "%Y-%m-%dT%H:%M:%SZ"


def history_path(pub):
    return os.path.join(pub, tree.STATE, HISTORY)


def read(pub):
    """The history entries, oldest first; lines that do not parse are skipped (the file is advisory)."""
    try:
        with open(history_path(pub), encoding="utf-8") as f:
            lines = f.read().splitlines()
    except FileNotFoundError:
        return []
    out = []
    for line in lines:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and isinstance(entry.get("version"), str) \
                and isinstance(entry.get("serial"), int):
            out.append(entry)
    return out


def append(pub, serial, version, published, action):
    """Record one move of version.txt; keeps the newest HISTORY_LIMIT entries (atomic rewrite)."""
    if action not in ACTIONS:
        raise ValueError("action %r is not one of %s" % (action, ", ".join(ACTIONS)))
    entries = read(pub) + [dict(serial=serial, version=version, published=published, action=action)]
    entries = entries[-HISTORY_LIMIT:]
    text = "".join(json.dumps(e, sort_keys=True) + "\n" for e in entries)
    write_atomic(history_path(pub), text, mode=0o600)


def fallback(entries, current):
    """The version version.txt named before ``current`` (the newest other one), or None."""
    for entry in reversed(entries):
        if entry["version"] != current:
            return entry["version"]
    return None


def image_versions(pub):
    """The published image directories (names), staging directories excluded."""
    images = os.path.join(pub, tree.IMAGES)
    try:
        names = os.listdir(images)
    except FileNotFoundError:
        return []
    return sorted(n for n in names if not n.startswith(".") and os.path.isdir(os.path.join(images, n))
                  and not os.path.islink(os.path.join(images, n)))


def _epoch(stamp):
    """Seconds since the epoch of a history time stamp (``%Y-%m-%dT%H:%M:%SZ``), or 0."""
    try:
        return datetime.datetime.strptime(stamp, STAMP).replace(tzinfo=datetime.timezone.utc).timestamp()
    except (TypeError, ValueError):
        return 0


def stamp(seconds):
    """A time stamp in the history's format."""
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc).strftime(STAMP)


def last_used(pub, entries):
    """{version: (seconds, serial)}: when each published image was last published or named by version.txt.

    The history gives the moves of the pointer (time and serial); a
    directory's mtime (the rename that made it visible) gives when an image
    was published, also one never marked as the default (serial 0).  The
    serial orders moves made within the same second.
    """
    named = {}
    for entry in entries:
        old = named.get(entry["version"], (0, 0))
        named[entry["version"]] = max(old, (_epoch(entry.get("published")), entry["serial"]))
    out = {}
    for version in image_versions(pub):
        mtime = os.stat(os.path.join(pub, tree.IMAGES, version)).st_mtime
        seconds, serial = named.get(version, (0, 0))
        out[version] = (max(int(mtime), seconds), serial)
    return out


def retained(pub, entries, current, keep, pinned=()):
    """(kept, removed): sets of versions.

    The ``keep`` most recently used versions are kept, and always the current
    version, its fallback and the versions groups are pinned to (``pinned``),
    whatever their age.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    order = last_used(pub, entries)
    newest_first = sorted(order, key=lambda v: (order[v], v), reverse=True)
    kept = set(newest_first[:keep])
    for must in (current, fallback(entries, current)) + tuple(pinned):
        if must in order:
            kept.add(must)
    return kept, set(order) - kept


def referenced_chunks(pub, versions):
    """The chunk ids the indexes of ``versions`` name (caindex.CaIndexError on a damaged index)."""
    ids = set()
    for version in versions:
        index = os.path.join(pub, tree.IMAGES, version, tree.INDEX)
        if os.path.isfile(index):
            ids.update(caindex.read_index(index)[2])
    return ids


def stored_chunks(pub):
    """{chunk id: path} of every chunk file in store/."""
    store = os.path.join(pub, tree.STORE)
    out = {}
    if not os.path.isdir(store):
        return out
    for sub in os.listdir(store):
        d = os.path.join(store, sub)
        if not os.path.isdir(d) or os.path.islink(d):
            continue
        for name in os.listdir(d):
            if name.endswith(caindex.CHUNK_SUFFIX):
                out[name[:-len(caindex.CHUNK_SUFFIX)]] = os.path.join(d, name)
    return out
