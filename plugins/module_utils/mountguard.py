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
a file.  It waits for the mount lock a bounded time (``LOCK_SECONDS``); past
it, it leaves ``guard_error`` in the state file, naming the pid that holds the
lock and the release command, and exits.

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
# How long a run or a guard waits for the mount lock before it gives up and
# names the holder (GSE_MOUNT_LOCK_SECONDS overrides).  A mounting run takes
# seconds; ending a build takes at most buildunit.end's 60 s deadline.
LOCK_SECONDS = 300.0


def process_start_time(pid):
    """The start time of ``pid`` in clock ticks, or None when it does not exist
    (``buildunit.start_time``: compared with the recorded value so that a
    recycled pid is not taken for the owner)."""
    return buildunit.start_time(pid)


def owner_alive(pid, start):
    """True while the owner recorded as ``pid`` started at ``start`` still runs.

    A recycled pid (another start time) is not the owner, and neither is a
    zombie: an owner killed but not yet reaped by its parent (a shell or a
    CI runner that does not wait) keeps its /proc entry and start time
    while it runs nothing, and a guard that took it for alive would wait
    for as long as the parent does."""
    return start is not None and buildunit.start_time(pid) == start and buildunit.alive(pid)


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


class LockTimeout(Exception):
    """The lock of the state file's directory was held longer than the wait allows."""


def lock_holders(path, locks="/proc/locks"):
    """The pids holding a flock on ``path`` (/proc/locks; waiters, lines with ``->``, are not holders)."""
    try:
        st = os.stat(path)
        with open(locks, "r", encoding="ascii", errors="replace") as fh:
            lines = fh.read().splitlines()
    except OSError:
        return []
    # /proc/locks names the file as MAJOR:MINOR:INODE, the device numbers in hex.
    wanted = "%02x:%02x:%d" % (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    pids = []
    for line in lines:
        fields = line.split()
        if len(fields) > 5 and fields[1] == "FLOCK" and fields[5] == wanted and fields[4].isdigit():
            pids.append(int(fields[4]))
    return sorted(set(pids))


def release_command(root):
    """The documented command that ends the build of the chroot ``root`` and releases its mounts."""
    root = os.path.realpath(root) if root else ""
    name = os.path.basename(root)
    base = name[len("workdir-"):] if name.startswith("workdir-") else "<base>"
    cmd = "ansible-playbook playbooks/release.yml -e gse_base=%s" % base
    cdistdir = os.path.dirname(root) if root else ""
    if cdistdir and cdistdir != "/var/tmp/gse":
        cmd += " -e gse_cdistdir=%s" % cdistdir
    return cmd


def lock_seconds(environ=None):
    """How long a run or a guard waits for the lock: ``GSE_MOUNT_LOCK_SECONDS``, else LOCK_SECONDS."""
    environ = os.environ if environ is None else environ
    try:
        value = float(environ.get("GSE_MOUNT_LOCK_SECONDS", ""))
    except ValueError:
        return LOCK_SECONDS
    return value if value > 0 else LOCK_SECONDS


def locked(state_file, timeout=None, root=None):
    """Take the lock that a mounting module run holds for its whole run (an
    exclusive flock on the directory holding the state file); return its
    descriptor (None when the directory does not exist), to be closed to
    unlock.  The owner can die while a module run
    is still mounting (the run is a process of its own): the guard waits for
    the run to finish, else a mount made after the release would be left
    behind.

    The wait is bounded (``timeout`` seconds, default ``lock_seconds()``): a
    run hung in ``mount`` must not keep a guard, or the next run, waiting
    for ever.  Past it, LockTimeout says which pids hold the lock and the
    command that ends the build (``root``, the chroot) and releases its mounts."""
    directory = os.path.dirname(os.path.abspath(state_file))
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    except OSError:
        return None  # no directory: no state file, nothing mounted to guard
    deadline = time.monotonic() + (lock_seconds() if timeout is None else timeout)
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except BlockingIOError:
            if time.monotonic() >= deadline:
                break
            time.sleep(POLL_SECONDS)
    holders = lock_holders(directory)
    os.close(fd)
    raise LockTimeout(
        "the mount lock on %s is still held after %g seconds by pid %s; end that process, or end the build "
        "and release its mounts with: %s"
        % (directory, lock_seconds() if timeout is None else timeout,
           " ".join(map(str, holders)) or "(not found in /proc/locks)", release_command(root)))


def record_error(state_file, message):
    """Leave ``message`` in the state file as ``guard_error`` (the guard has no terminal to say it on)."""
    try:
        with open(state_file, "r", encoding="utf-8") as fh:
            state = json.load(fh)
    except (OSError, ValueError):
        state = {"mounts": []}
    state["guard_error"] = message
    tmp = state_file + ".guard-tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=1, sort_keys=True)
        os.rename(tmp, state_file)
    except OSError:
        pass


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
    while owner_alive(owner_pid, owner_start):
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
    try:
        lock = locked(state_file, root=root)
    except LockTimeout as exc:
        # Exit rather than wait on: the message stays in the state file and on stderr.
        record_error(state_file, str(exc))
        sys.stderr.write("gse mount guard: %s\n" % exc)
        buildunit.remove(unit)
        return 2
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
    # OWNER_START is "None" when the owner was gone before the guard started: it is released at once.
    sys.exit(guard(sys.argv[1], int(sys.argv[2]), int(sys.argv[3]) if sys.argv[3].isdigit() else None,
                   sys.argv[4] if len(sys.argv) > 4 else None))
