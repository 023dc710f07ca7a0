# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read what emerge printed: the pretend list, failures, build log paths.

emerge runs with ``--color=n`` so the text is plain; the escape sequences are
stripped anyway in case a user asked for colour.
"""

from __future__ import annotations

import re

_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
# "[ebuild  N     ] app-misc/hello-lab-1.0::gse-test  0 KiB"
# "[binary   R    ] app-misc/hello-lab-1.0-1::gse-test"
# "[uninstall     ] app-misc/old-2"
_PRETEND = re.compile(r"^\[(ebuild|binary|uninstall|nomerge)\s*([^\]]*)\]\s+(\S+)")
# Scheduler._failed_pkg_msg: ">>> Failed to emerge dev-util/broken-build-1.0, Log file:"
_FAILED = re.compile(
    r"Failed to (?:emerge|fetch|install|execute postinst for)\s+"
    r"([A-Za-z0-9+_.-]+/[A-Za-z0-9+_.-]+?)(?:,|\s|$)")
# The summary printed with --keep-going: " *  dev-util/broken-build-1.0, Log file:"
_FAILED_SUMMARY = re.compile(
    r"^\s*\*\s+([A-Za-z0-9+_.-]+/[A-Za-z0-9+_.-]+)(?: \(postinst failed\))?, Log file:")
# elog: " * ERROR: dev-util/broken-build-1.0::gse-test failed (compile phase):"
_ERROR = re.compile(r"\* ERROR: ([A-Za-z0-9+_.-]+/[A-Za-z0-9+_.-]+?)(?:::\S+)? failed")
_LOG_PATH = re.compile(r"'(/[^']+)'")
# unmerge.py: "All selected packages: =app-misc/foo-1.0 =app-misc/bar-2"
_SELECTED = re.compile(r"^All selected packages:(.*)$")
# action_deselect: '>>> Would remove app-misc/foo from "world" favorites file...'
_DESELECT = re.compile(r'^>>> (?:Would remove|Removing) (\S+) from "(world|world_sets)" favorites file')


def plain(text):
    return _ANSI.sub("", text or "")


def _strip_repo(cpv):
    return cpv.split("::", 1)[0]


def pretend_list(text):
    """[{type, flags, cpv}] from ``emerge --pretend`` output, in merge order."""
    result = []
    for line in plain(text).splitlines():
        m = _PRETEND.match(line.strip())
        if m:
            result.append({"type": m.group(1), "flags": m.group(2).strip(), "cpv": _strip_repo(m.group(3))})
    return result


def would_merge(text):
    """cpvs ``emerge --pretend`` would build or install."""
    return [e["cpv"] for e in pretend_list(text) if e["type"] in ("ebuild", "binary")]


def would_unmerge(text):
    """cpvs a pretend run would remove: uninstall entries and depclean's selection."""
    result = [e["cpv"] for e in pretend_list(text) if e["type"] == "uninstall"]
    for line in plain(text).splitlines():
        m = _SELECTED.match(line.strip())
        if m:
            result.extend(a.lstrip("=") for a in m.group(1).split())
    return result


def would_deselect(text):
    """Entries a pretend ``--deselect`` would remove from the world files."""
    return [m.group(1) for m in (_DESELECT.match(l.strip()) for l in plain(text).splitlines()) if m]


def failed_packages(text):
    """cpvs emerge reported as failed, first failure first, without repeats."""
    found = []
    for line in plain(text).splitlines():
        for rx in (_FAILED, _FAILED_SUMMARY, _ERROR):
            m = rx.search(line)
            if m:
                cpv = _strip_repo(m.group(1))
                if cpv not in found:
                    found.append(cpv)
                break
    return found


def failure_logs(text):
    """Build log paths emerge named after "Log file:", in order."""
    logs = []
    lines = plain(text).splitlines()
    for i, line in enumerate(lines):
        if not line.rstrip().endswith("Log file:"):
            continue
        m = _LOG_PATH.search(line)
        if not m and i + 1 < len(lines):
            m = _LOG_PATH.search(lines[i + 1])
        if m and m.group(1) not in logs:
            logs.append(m.group(1))
    return logs
