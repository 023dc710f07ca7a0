# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a build's root is made of, as one digest: the inputs of parts A to J.

A rebuild whose inputs and root equal what the last completed build recorded
(``<workdir>.built.json``) skips parts B to J: their work would end where the
root already is.  The inputs are

- every setting the parts read: the settings of the roles of parts A-J (the
  hook table names them), of ``common`` and ``client_health``, and every other
  setting those roles' files name, less ``EXCLUDED`` (each with the reason it
  does not shape the root); the run's tags and skip tags;
- the content of files: the collection's sources the parts run (their roles,
  ``plugins/``, the playbook), the config.d directories, the ``--sdir``
  scripts; a file a setting names (``--kernel``, ``--initrd``, a kernel
  configuration, the inject-custom sources) counts by its content, not by
  its place;
- the listing of the Portage repositories the chroot mounts (``gse_repos_dir``,
  the ``gse_extra_mounts`` sources): every entry's inode, size and change time,
  as ``root_manifest`` lists a root, so an ebuild bump is seen;
- the stage3 part A extracted (its marker, ``<workdir>.extracted.json``).

With a sync configured (``gse_sync_method`` other than ``none``) what the
repositories will hold is not known at part A: the decision takes two steps
(``decide``, then ``decide_synced``).  Part A compares everything but the
synced repositories' listing; when only that is left, the parts run up to
and including the sync, and the listing after the sync is compared with the
recorded one.

Like hooks.py and settings.py this file imports nothing from Ansible.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat

from . import hooks as _hooks
from . import root_manifest
from .atomic_file import read_json_dict

FORMAT = 1
# The parts whose work an unchanged build skips, and whose roles' settings are inputs.
SKIPPED_PARTS = _hooks.UNCHANGED_SKIPS
INPUT_PARTS = ("gparta",) + SKIPPED_PARTS
# Roles those parts run besides their own: common (every play), client_health (part G includes it).
EXTRA_ROLES = ("common", "client_health")

# Settings of those roles that do not shape the root, and why.
EXCLUDED = {
    "gse_build_id": "names the run; a new one every build",
    "gse_clocallg": "the run's log directory (named by the build id)",
    "gse_log_root": "where logs go",
    "gse_verbose": "how much is shown",
    "gse_live_log": "where emerge's output is shown",
    "gse_enforce": "any enforced hook of parts A-J runs the whole build (checked, not hashed)",
    "gse_configd_dirs": "their files' content is hashed instead",
    "gse_configd_file": "the config.d the gse command read: its values are the settings, hashed one by one",
    "gse_sdir": "its scripts' content is hashed instead (a replay lays them out elsewhere)",
    "gse_stage3_pin": "the extracted stage3 is hashed by its marker instead",
    "gse_kernel_configured": "set by gse when it re-enters after menuconfig, within one run",
    "gse_min_free_mb": "a check of free space, not an input of the root",
    "gse_nice": "scheduling only",
    "gse_ionice_class": "scheduling only",
    "gse_ionice_level": "scheduling only",
    "gse_state_dir": "where time states are kept",
    "gse_publish_dir": "part L's tree",
    "gse_downloads_dir": "where the stage3 is kept; the extracted stage3 is hashed by its marker",
    "gse_stage3_mirror": "where the stage3 comes from; the extracted stage3 is hashed by its marker",
    "gse_stage3_keyring": "checks the stage3; the extracted stage3 is hashed by its marker",
    "gse_catalyst_version_stamp": "names catalyst's products (the build day by default); the stage3 they make "
                                  "is hashed by its marker",
}

_NAME = re.compile(r"\bgse_[a-z0-9_]+\b")


def input_roles():
    return tuple(_hooks.part(h).role for h in INPUT_PARTS) + EXTRA_ROLES


def _named_in(directory):
    """Every ``gse_*`` name in the files under ``directory``."""
    names = set()
    for top, dirs, files in os.walk(directory):
        dirs.sort()
        for name in files:
            try:
                with open(os.path.join(top, name), encoding="utf-8", errors="replace") as fh:
                    names.update(_NAME.findall(fh.read()))
            except OSError:
                continue
    return names


def covered_settings(schema, roles_dir):
    """The names of the settings that are inputs, sorted: see the module's description."""
    roles = input_roles()
    names = {n for n, s in schema.items() if s.role in roles}
    for role in roles:
        names |= _named_in(os.path.join(roles_dir, role)) & set(schema)
    return sorted(names - set(EXCLUDED))


def source_paths(collection_dir):
    """{label: path} of the collection's sources that parts A-J run."""
    out = {"collection:plugins": os.path.join(collection_dir, "plugins"),
           "collection:playbook": os.path.join(collection_dir, "playbooks", "build.yml")}
    for role in input_roles():
        out["collection:roles/" + role] = os.path.join(collection_dir, "roles", role)
    return out


def _canonical(value):
    return json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)


def settings_digest(values):
    """SHA-256 over the settings' values (``{name: value}``)."""
    return hashlib.sha256(_canonical(values).encode("utf-8", "surrogateescape")).hexdigest()


def _file_sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def content_digest(path):
    """SHA-256 over what ``path`` holds: a file's mode and bytes, a directory's entries (names relative to it,
    modes, bytes, symlink targets), or "missing".  The path itself is not hashed, only what is under it."""
    h = hashlib.sha256()

    def entry(rel, full):
        st = os.lstat(full)
        h.update(rel.encode("utf-8", "surrogateescape") + b"\0" + oct(st.st_mode).encode() + b"\0")
        if stat.S_ISLNK(st.st_mode):
            h.update(os.readlink(full).encode("utf-8", "surrogateescape"))
        elif stat.S_ISREG(st.st_mode):
            h.update(_file_sha256(full).encode())
        h.update(b"\0")

    if not path or not os.path.lexists(path):
        return "missing"
    if not os.path.isdir(path) or os.path.islink(path):
        entry("", path)
        return h.hexdigest()
    for top, dirs, files in os.walk(path):
        dirs.sort()
        dirs[:] = [d for d in dirs if d != "__pycache__"]
        for name in sorted(dirs + files):
            full = os.path.join(top, name)
            if name.endswith(".pyc"):
                continue
            entry(os.path.relpath(full, path), full)
    return h.hexdigest()


def files_digest(paths):
    """SHA-256 over ``{label: path}``: each label with what its path holds (``content_digest``)."""
    return settings_digest({label: content_digest(path) for label, path in paths.items()})


def tree_digest(path):
    """The listing of a directory the chroot mounts, as root_manifest takes a root's; "missing" when absent."""
    if not path or not os.path.isdir(path):
        return "missing"
    return root_manifest.digest(path)


def combine(parts):
    """One SHA-256 over ``{name: digest}``."""
    return settings_digest(parts)


def record_path(root):
    return root.rstrip("/") + ".built.json"


def read_record(path):
    """The record as a dict, or None when there is none or it is not one this code wrote."""
    data = read_json_dict(path)
    if data is None or data.get("format") != FORMAT:
        return None
    return data


def _listed(names, limit=5):
    names = sorted(names)
    return ", ".join(names[:limit]) + (" and %d more" % (len(names) - limit) if len(names) > limit else "")


def _recorded_components(record):
    return record.get("components") if isinstance(record.get("components"), dict) else {}


def differing(record, components, limit=5, ignore=()):
    """The names of the components that differ from the record's, as a reason names them (less ``ignore``)."""
    old = _recorded_components(record)
    return _listed([n for n in set(old) | set(components) if n not in ignore and old.get(n) != components.get(n)],
                   limit)


# The verdicts of ``decide``.
UNCHANGED = "unchanged"      # parts B to J are skipped
AFTER_SYNC = "after sync"    # only the synced repositories are undecided: decided once the sync ran
RUN = "run"                  # parts B to J run


def tree_component(path):
    """The component name of a tree's listing."""
    return "tree:" + path


def decide(record, components, root, run_all="", synced=()):
    """(verdict, reason) of part A: ``UNCHANGED`` when ``components`` and ``root`` equal the record's,
    ``AFTER_SYNC`` when everything does but the listings of the ``synced`` trees (what the sync brings is not
    known before it ran), else ``RUN``; the reason names what differs ("" when unchanged)."""
    if run_all:
        return RUN, run_all
    if record is None:
        return RUN, "no record of a completed build"
    undecided = {tree_component(t) for t in synced}
    if not undecided:
        if record.get("inputs") != combine(components):
            return RUN, "inputs changed: %s" % differing(record, components)
    else:
        changed = differing(record, components, ignore=undecided)
        if changed:
            return RUN, "inputs changed: %s" % changed
        unrecorded = [n for n in undecided if n not in _recorded_components(record)]
        if unrecorded:
            return RUN, "no recorded listing of %s" % _listed(unrecorded)
    if record.get("root") != root:
        return RUN, "root changed"
    if undecided:
        return AFTER_SYNC, "the repositories are synced: decided after the sync"
    return UNCHANGED, ""


def recorded_listings(record, synced):
    """{component: digest} the record holds for the listings of the ``synced`` trees."""
    old = _recorded_components(record or {})
    return {tree_component(t): old[tree_component(t)] for t in synced if tree_component(t) in old}


def decide_synced(recorded, components):
    """(verdict, reason) once the sync ran: ``UNCHANGED`` when every listing in ``recorded`` (``{component:
    digest}`` the record held for the synced trees) equals the one in ``components``, else ``RUN``."""
    names = sorted(n for n in recorded if recorded[n] != components.get(n))
    if not recorded:
        return RUN, "no recorded listing of the synced repositories"
    if names:
        return RUN, "the sync changed: %s" % ", ".join(names)
    return UNCHANGED, ""


def record_text(build, components, root):
    return json.dumps({"format": FORMAT, "build": build, "inputs": combine(components), "components": components,
                       "root": root}, indent=1, sort_keys=True) + "\n"
