# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release the chroot's mounts when the process that owns them goes away.

Part B mounts /proc, /sys, /dev, /run, the repositories and distfiles into
the chroot; Part K releases them.  Between the two, the build can fail, be
interrupted with SIGINT or SIGTERM, or be killed outright.  Ansible has no
play-level ``finally``, so the mounts are guarded by a small detached process:
it watches the owner (the outermost ``ansible-playbook``, or the ``gse``
command that sets ``GSE_MOUNT_OWNER_PID``) and, as soon as the owner is gone,
unmounts every mount recorded in the state file, deepest first.  A normal
release removes the state file and the guard exits without touching anything.

The guard only ever unmounts; it never deletes a file.

This file runs in two places: imported by the ``chroot_mounts`` module, and
as the guard's own program (``python3 -c <this source> ...``), so it depends
on nothing but the standard library.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import time

POLL_SECONDS = 0.2


def process_start_time(pid):
    """The start time of ``pid`` in clock ticks, or None when it does not exist.

    Compared with the recorded value so that a recycled pid is not taken for
    the owner.
    """
    try:
        with open("/proc/%d/stat" % pid, "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: split after the last ')'.
    rest = stat[stat.rfind(")") + 2:].split()
    return int(rest[19])


def process_argv(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            return [a.decode("utf-8", "replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        return []


def parent_pid(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return 0
    return int(stat[stat.rfind(")") + 2:].split()[1])


def _is_ansible(argv):
    for arg in argv[:2]:
        name = os.path.basename(arg)
        if name.startswith("ansible"):
            return True
    return False


def find_owner(start_pid=None, environ=None):
    """Return the pid whose exit must release the mounts.

    ``GSE_MOUNT_OWNER_PID`` wins; otherwise the outermost ancestor that is an
    Ansible program (ansible-playbook, ansible-runner, ansible).  Returns
    None when neither exists.
    """
    environ = os.environ if environ is None else environ
    explicit = environ.get("GSE_MOUNT_OWNER_PID", "").strip()
    if explicit:
        pid = int(explicit)
        return pid if process_start_time(pid) is not None else None
    pid = start_pid or os.getppid()
    owner = None
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        if _is_ansible(process_argv(pid)):
            owner = pid
        pid = parent_pid(pid)
    return owner


_OCTAL = re.compile(r"\\([0-7]{3})")


def mount_points(path="/proc/self/mountinfo"):
    """Every mount point of this mount namespace, in mount order."""
    points = []
    with open(path, "r", encoding="utf-8", errors="surrogateescape") as fh:
        for line in fh:
            fields = line.split()
            if len(fields) > 4:
                # mountinfo escapes space, tab, newline and backslash as \ooo.
                points.append(_OCTAL.sub(lambda m: chr(int(m.group(1), 8)), fields[4]))
    return points


def release(state_file):
    """Unmount everything the state file records, deepest first; return what failed."""
    try:
        with open(state_file, "r", encoding="utf-8") as fh:
            state = json.load(fh)
    except (OSError, ValueError):
        return []
    failed = []
    targets = sorted(state.get("mounts", []), key=lambda m: (-m.count("/"), m))
    for target in targets:
        if target not in mount_points():
            continue
        rc = subprocess.call(["umount", "-R", target], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if rc != 0:
            # Busy (a process still inside): detach it now, the kernel finishes later.
            rc = subprocess.call(["umount", "-R", "-l", target], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if rc != 0:
            failed.append(target)
    if not failed:
        try:
            os.unlink(state_file)
        except OSError:
            pass
    return failed


def locked(state_file):
    """Take the lock that a mounting module run holds for its whole run (an
    exclusive flock on the directory holding the state file); return its
    descriptor (None when the directory does not exist), to be closed to
    unlock.  The owner can die while a module run
    is still mounting (the run is a process of its own): the guard waits for
    the run to finish, else a mount made after the release would be left
    behind."""
    try:
        fd = os.open(os.path.dirname(os.path.abspath(state_file)), os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None  # no directory: no state file, nothing mounted to guard
    fcntl.flock(fd, fcntl.LOCK_EX)
    return fd


def guard(state_file, owner_pid, owner_start):
    """Wait for the owner to exit (or the state file to go), then release."""
    while True:
        if not os.path.exists(state_file):
            return 0
        if process_start_time(owner_pid) != owner_start:
            break
        time.sleep(POLL_SECONDS)
    lock = locked(state_file)
    try:
        return 1 if release(state_file) else 0
    finally:
        if lock is not None:
            os.close(lock)


def spawn_guard(python, state_file, owner_pid):
    """Start the guard detached from this process's session; return its pid."""
    here = os.path.abspath(__file__)
    source = None
    loader = globals().get("__loader__")
    if loader is not None and hasattr(loader, "get_source"):
        try:
            source = loader.get_source(__name__)
        except Exception:  # pragma: no cover - zipimport quirks
            source = None
    if source is None:
        with open(here, "r", encoding="utf-8") as fh:
            source = fh.read()
    # Run as __main__: the block at the end of this file starts the guard.
    code = source
    proc = subprocess.Popen(
        [python, "-c", code, state_file, str(owner_pid), str(process_start_time(owner_pid))],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        start_new_session=True,
        cwd="/",
    )
    return proc.pid


if __name__ == "__main__":  # pragma: no cover - run through spawn_guard
    sys.exit(guard(sys.argv[1], int(sys.argv[2]), int(sys.argv[3])))
