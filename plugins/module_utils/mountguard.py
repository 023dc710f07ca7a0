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
ends the build's unit (``buildunit``: every process the build started, the
ones inside the chroot too), then unmounts every mount recorded in the state
file, deepest first.  A normal release removes the state file; the guard then
only ends what is left of the unit when the owner exits.

The guard only ever ends the build's processes and unmounts; it never deletes
a file.

This file runs in two places: imported by the ``chroot_mounts`` module, and
as the guard's own program (``python3 -c <buildunit and this source> ...``),
so it depends on nothing but the standard library and ``buildunit``.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import subprocess
import sys
import time

try:
    from ansible_collections.gse.stateless.plugins.module_utils import buildunit
except ImportError:  # the guard's own program (spawn_guard), or loaded by file path
    buildunit = sys.modules.get("gse_buildunit")
    if buildunit is None:
        import importlib.util
        _spec = importlib.util.spec_from_file_location(
            "gse_buildunit", os.path.join(os.path.dirname(os.path.abspath(__file__)), "buildunit.py"))
        buildunit = importlib.util.module_from_spec(_spec)
        _spec.loader.exec_module(buildunit)
        sys.modules["gse_buildunit"] = buildunit

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


def release(state_file, root=None):
    """Unmount everything the state file records, and everything mounted under ``root``,
    deepest first; return what failed."""
    try:
        with open(state_file, "r", encoding="utf-8") as fh:
            state = json.load(fh)
    except (OSError, ValueError):
        state = {}
    failed = []
    found = set(state.get("mounts", []))
    if root:
        # Mounts the record misses (a state file lost with an earlier guard) are released too.
        prefix = os.path.realpath(root).rstrip("/") + "/"
        found.update(m for m in mount_points() if m.startswith(prefix))
    targets = sorted(found, key=lambda m: (-m.count("/"), m))
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


def guard(state_file, owner_pid, owner_start, root=None):
    """Wait for the owner to exit; then end the build's unit and release its mounts.

    ``root`` is the chroot: its unit and the processes rooted in it are ended
    before anything is unmounted, so no process of the build is left and no
    mount is busy.  Where there is no cgroup v2 the guard keeps the owner's
    descendants as it polls, to end them once the owner is gone."""
    mount = buildunit.cgroup2_mount()
    if mount:
        buildunit.join(mount)  # out of the unit it was started in: ending the unit must spare the guard
    unit = buildunit.unit_path(root) if root else None
    tracked = {}  # pid -> start time: a pid counts only while it is the process seen
    while process_start_time(owner_pid) == owner_start:
        if root and not (unit and os.path.isdir(unit)):
            for pid in buildunit.descendants(owner_pid):
                if pid not in tracked:
                    tracked[pid] = process_start_time(pid)
        time.sleep(POLL_SECONDS)
    if root:
        live = {pid: st for pid, st in tracked.items() if st is not None and process_start_time(pid) == st}
        extra = dict(live)
        for pid in live:
            extra.update(buildunit.identified(buildunit.descendants(pid)))
        buildunit.end(root, unit=unit, extra=extra, spare=[os.getpid()])
    if not os.path.exists(state_file) and not (root and any(
            m.startswith(os.path.realpath(root).rstrip("/") + "/") for m in mount_points())):
        buildunit.remove(unit)
        return 0
    lock = locked(state_file)
    try:
        return 1 if release(state_file, root) else 0
    finally:
        if lock is not None:
            os.close(lock)
        buildunit.remove(unit)


def _source(module, path):
    """The source text of ``module`` (a zipped module has no file to read), else of ``path``."""
    loader = getattr(module, "__loader__", None)
    if loader is not None and hasattr(loader, "get_source"):
        try:
            text = loader.get_source(module.__name__)
            if text:
                return text
        except Exception:  # pragma: no cover - zipimport quirks
            pass
    with open(path, "r", encoding="utf-8") as fh:
        return fh.read()


def spawn_guard(python, state_file, owner_pid, root=None):
    """Start the guard detached from this process's session; return its pid.

    Its program is ``buildunit``'s source, loaded as the module
    ``gse_buildunit``, then this file's source run as ``__main__``."""
    own = _source(sys.modules.get(__name__), os.path.abspath(__file__))
    unit = _source(buildunit, os.path.abspath(buildunit.__file__))
    code = ("import sys, types\n"
            "m = types.ModuleType('gse_buildunit')\n"
            "exec(compile(%r, 'buildunit.py', 'exec'), m.__dict__)\n"
            "sys.modules['gse_buildunit'] = m\n"
            "exec(compile(%r, 'mountguard.py', 'exec'), {'__name__': '__main__'})\n" % (unit, own))
    argv = [python, "-c", code, state_file, str(owner_pid), str(process_start_time(owner_pid))]
    if root:
        argv.append(root)
    proc = subprocess.Popen(
        argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
        start_new_session=True,
        cwd="/",
    )
    return proc.pid


if __name__ == "__main__":  # pragma: no cover - run through spawn_guard
    sys.exit(guard(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else None))
