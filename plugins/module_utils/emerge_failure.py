# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Describe a failed emerge: the failed package, the resume list, its build log.

This is what a person needs to decide between resume, skip-first and a shell:
the package that broke, what is left to merge, and the end of its build log.
"""

from __future__ import annotations

import glob
import os

from ansible_collections.gse.stateless.plugins.module_utils import emerge_output
from ansible_collections.gse.stateless.plugins.module_utils import portage_mtimedb


def split_cpv(cpv):
    """("cat", "pf") of "cat/pf"."""
    cat, _sep, pf = cpv.partition("/")
    return cat, pf


def find_build_log(cpv, settings):
    """The newest build log of ``cpv`` that Portage wrote, or None.

    With PORTAGE_LOGDIR set, Portage writes ``<cat>:<pf>:<time>.log`` there
    (``build/<cat>/<pf>:<time>.log`` with FEATURES=split-log); without it, the
    log stays in the build directory as ``temp/build.log``.
    """
    if not cpv:
        return None
    cat, pf = split_cpv(cpv)
    candidates = []
    logdir = settings.get("PORTAGE_LOGDIR") or ""
    if logdir:
        candidates += glob.glob(os.path.join(glob.escape(logdir), "%s:%s:*.log" % (cat, pf)))
        candidates += glob.glob(os.path.join(glob.escape(logdir), "build", cat, "%s:*.log" % pf))
    tmpdir = settings.get("PORTAGE_TMPDIR") or "/var/tmp"
    build_log = os.path.join(tmpdir, "portage", cat, pf, "temp", "build.log")
    if os.path.isfile(build_log):
        candidates.append(build_log)
    candidates = [c for c in candidates if os.path.isfile(c)]
    if not candidates:
        return None
    return max(candidates, key=lambda p: os.stat(p).st_mtime_ns)


def tail(path, lines=40, max_bytes=256 * 1024):
    """The last ``lines`` lines of a text file (read from its end only)."""
    if not path or lines <= 0:
        return []
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - max_bytes))
            data = f.read()
    except OSError:
        return []
    text = emerge_output.plain(data.decode("utf-8", "replace"))
    return text.splitlines()[-lines:]


def describe(stdout, stderr, settings, mtimedb_path=portage_mtimedb.MTIMEDB, tail_lines=40):
    """The failure facts the emerge module returns next to msg/cmd/rc."""
    text = (stdout or "") + "\n" + (stderr or "")
    _key, resume = portage_mtimedb.read_resume(mtimedb_path)
    failed = emerge_output.failed_packages(text)
    # emerge's own words name the package that broke; the head of the resume
    # list is the same package when emerge stopped there (no --keep-going).
    failed_package = failed[0] if failed else (resume[0] if resume else None)
    logs = emerge_output.failure_logs(text)
    log = None
    for path in logs:
        if os.path.isfile(path) and (failed_package is None or split_cpv(failed_package)[1] in path):
            log = path
            break
    if log is None:
        log = find_build_log(failed_package, settings)
    return {
        "failed_package": failed_package,
        "failed_packages": failed,
        "resume": resume,
        "log": log,
        "log_tail": tail(log, tail_lines),
    }
