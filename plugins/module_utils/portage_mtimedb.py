# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read emerge's resume list from Portage's mtimedb.

emerge keeps the mergelist of an interrupted or failed run in
``/var/cache/edb/mtimedb`` (JSON) under ``resume``; a newer run moves an
unfinished list to ``resume_backup``.  ``emerge --resume`` takes ``resume``
first and falls back to ``resume_backup``, so the list reported here follows
the same order.  Each mergelist entry is ``[type, root, cpv, action]``.
"""

from __future__ import annotations

import json

MTIMEDB = "/var/cache/edb/mtimedb"
RESUME_KEYS = ("resume", "resume_backup")


def read_mtimedb(path=MTIMEDB):
    """The mtimedb as a dict; empty when it is missing or not readable JSON."""
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read().decode("utf-8", "replace"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def resume_entries(mtimedb):
    """(key, entries) of the list ``emerge --resume`` would continue.

    ``entries`` are the well-formed ``[type, root, cpv, action]`` lists; a
    list that emerge itself would throw away (not a dict, no mergelist) gives
    ``(None, [])``.
    """
    for key in RESUME_KEYS:
        data = mtimedb.get(key)
        if not isinstance(data, dict):
            continue
        mergelist = data.get("mergelist")
        if not isinstance(mergelist, list) or not mergelist:
            continue
        entries = [list(x) for x in mergelist if isinstance(x, list) and len(x) == 4]
        if entries:
            return key, entries
    return None, []


def resume_cpvs(mtimedb, actions=("merge",)):
    """The cpvs left to merge, in order (``nomerge``/``uninstall`` entries left out)."""
    _key, entries = resume_entries(mtimedb)
    return [str(e[2]) for e in entries if e[3] in actions]


def read_resume(path=MTIMEDB):
    """(key, cpvs) of the resume list stored at ``path``."""
    db = read_mtimedb(path)
    key, _entries = resume_entries(db)
    return key, resume_cpvs(db)
