# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fingerprints of repository trees, to tell whether a sync changed anything.

Every sync method Portage uses leaves a mark: rsync and webrsync trees carry
``metadata/timestamp.chk`` (and ``timestamp.commit``/``timestamp.x``), git
trees a HEAD commit.  A tree with none of them has no fingerprint (None).
"""

from __future__ import annotations

import os

_STAMPS = ("metadata/timestamp.chk", "metadata/timestamp.commit", "metadata/timestamp.x", "metadata/timestamp")


def _read(path):
    try:
        with open(path, "r", errors="replace") as f:
            return f.read().strip()
    except OSError:
        return None


def _git_head(location):
    head = _read(os.path.join(location, ".git", "HEAD"))
    if head and head.startswith("ref: "):
        ref = head[5:].strip()
        return _read(os.path.join(location, ".git", ref)) or _packed_ref(location, ref)
    return head


def _packed_ref(location, ref):
    packed = _read(os.path.join(location, ".git", "packed-refs")) or ""
    for line in packed.splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[1] == ref:
            return parts[0]
    return None


def fingerprint(location):
    """A tuple that changes when the tree at ``location`` is synced, or None."""
    marks = tuple(_read(os.path.join(location, s)) for s in _STAMPS) + (_git_head(location),)
    return marks if any(m is not None for m in marks) else None


def repo_locations(module, root="/"):
    """{name: location} of the configured repositories, from portageq."""
    portageq = module.get_bin_path("portageq", required=True)
    rc, out, err = module.run_command([portageq, "get_repos", root])
    names = (out or "").split() if rc == 0 else []
    if not names:
        return {}
    rc, out, err = module.run_command([portageq, "get_repo_path", root] + names)
    paths = (out or "").splitlines() if rc == 0 else []
    return dict(zip(names, paths)) if len(paths) == len(names) else {}
