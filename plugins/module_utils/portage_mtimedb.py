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
import os

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


# --- the resume list bound to the emerge that failed ------------------------------
#
# Every emerge that merges replaces mtimedb's resume list with its own, so a
# list left by a failed emerge is lost to the next one that runs.  A failed
# emerge with an id (the sub-part hook of its task) therefore records the list
# beside mtimedb, under its id; only the emerge with the same id puts it back
# and continues it, and clears the record once it succeeds.

RECORD_NAME = "gse-resume.json"


def record_path(mtimedb_path=MTIMEDB):
    return os.path.join(os.path.dirname(mtimedb_path), RECORD_NAME)


def record_failure(task, mtimedb_path=MTIMEDB):
    """Keep the resume list emerge just left, bound to ``task``; False when there is none."""
    db = read_mtimedb(mtimedb_path)
    key, _entries = resume_entries(db)
    if key is None:
        return False
    _write_json(record_path(mtimedb_path), {"task": task, "resume": db[key]})
    return True


def bound_resume(task, mtimedb_path=MTIMEDB):
    """The resume list recorded for ``task`` (mtimedb's ``resume`` entry), or None."""
    try:
        with open(record_path(mtimedb_path), "rb") as f:
            data = json.loads(f.read().decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or data.get("task") != task or not isinstance(data.get("resume"), dict):
        return None
    return data["resume"]


def recorded_task(mtimedb_path=MTIMEDB):
    """The id of the emerge whose resume list is recorded, or None."""
    try:
        with open(record_path(mtimedb_path), "rb") as f:
            data = json.loads(f.read().decode("utf-8", "replace"))
    except (OSError, ValueError):
        return None
    return data.get("task") if isinstance(data, dict) else None


def restore(entry, mtimedb_path=MTIMEDB):
    """Put ``entry`` back as mtimedb's ``resume`` list (what ``emerge --resume`` continues)."""
    db = read_mtimedb(mtimedb_path)
    db["resume"] = entry
    db.pop("resume_backup", None)
    _write_json(mtimedb_path, db)


def clear_record(mtimedb_path=MTIMEDB):
    try:
        os.unlink(record_path(mtimedb_path))
    except OSError:
        pass


def _write_json(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, sort_keys=True)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)
