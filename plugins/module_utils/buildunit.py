# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A build as one unit that ends as one.

Killing ``ansible-playbook`` (or ``gse``) does not end what it started: the
task workers, the module runs and, through the chroot connection, emerge and
the compilers inside the chroot each live on, in sessions of their own.  A
build therefore runs in a unit that holds every descendant:

- a cgroup v2 ``gse.<key>`` beside the root of the cgroup v2 hierarchy, one
  per work directory (``key`` is a digest of its path, so the unit of a work
  directory is found again without any record), with two children:
  ``build`` (ansible-playbook and everything below it) and ``owner`` (the
  ``gse`` command, kept apart so that it can end the build and live on);
  ``cgroup.kill`` ends all of it at once, whatever sessions were made below;
- wherever cgroup v2 is missing or not writable: the processes whose root
  (``/proc/PID/root``) lies in the chroot, and the descendants of the owner.

Every unit is also swept for processes rooted in the chroot: nothing may keep
a mount busy once the unit is ended.

Stdlib only: the mount guard runs this source as part of its own program.
"""

from __future__ import annotations

import hashlib
import os
import re
import signal
import time

CHILDREN = ("build", "owner")
POLL_SECONDS = 0.1
_OCTAL = re.compile(r"\\([0-7]{3})")


def _unescape(field):
    return _OCTAL.sub(lambda m: chr(int(m.group(1), 8)), field)


def cgroup2_mount(mountinfo="/proc/self/mountinfo"):
    """The mount point of the cgroup v2 hierarchy under /sys/fs/cgroup (never a copy bound into a chroot), or None."""
    found = []
    try:
        with open(mountinfo, "r", encoding="utf-8", errors="surrogateescape") as fh:
            for line in fh:
                left, _sep, right = line.partition(" - ")
                target = _unescape(left.split()[4]) if right.split()[:1] == ["cgroup2"] else ""
                # Only where init mounts it: a copy inside some chroot's /sys (another
                # build's rbind) is not this system's hierarchy to create units in.
                if target == "/sys/fs/cgroup" or target.startswith("/sys/fs/cgroup/"):
                    found.append(target)
    except OSError:
        return None
    return min(found, key=len) if found else None


def unit_path(workdir, mount=None):
    """Where the unit of ``workdir`` lives (whether or not it exists); None without cgroup v2."""
    mount = mount or cgroup2_mount()
    if not mount:
        return None
    key = hashlib.sha256(os.path.realpath(workdir).encode("utf-8", "surrogateescape")).hexdigest()[:16]
    return os.path.join(mount, "gse." + key)


def create(workdir):
    """Create the unit of ``workdir`` (kept when it exists); return its path, or None when the
    kernel offers no usable cgroup v2 (not mounted, read-only, or no ``cgroup.kill``)."""
    path = unit_path(workdir)
    if path is None:
        return None
    try:
        for d in (path,) + tuple(os.path.join(path, c) for c in CHILDREN):
            if not os.path.isdir(d):
                os.mkdir(d, 0o755)
    except OSError:
        return None
    if not os.path.exists(os.path.join(path, "cgroup.kill")):
        remove(path)  # a kernel before 5.14: the fallback ends the build instead
        return None
    return path


def why_no_cgroup(mount=None):
    """Why no unit can be made in cgroup v2 here (for the message that names the fallback)."""
    mount = mount or cgroup2_mount()
    if not mount:
        return "cgroup v2 is not mounted"
    if not os.access(mount, os.W_OK):
        return "cgroup v2 at %s is read-only or not delegated" % mount
    return "cgroup v2 at %s offers no cgroup.kill (Linux before 5.14) or refused a new cgroup" % mount


def mechanism(unit):
    """What holds the build's processes together, said in words: the cgroup, or the fallback and why."""
    if unit:
        return "cgroup v2 %s" % unit
    return ("process tree (%s): the owner's descendants and the processes rooted in the chroot"
            % why_no_cgroup())


def cgroup_of(pid):
    """The cgroup v2 directory ``pid`` is in, or None."""
    mount = cgroup2_mount()
    try:
        with open("/proc/%d/cgroup" % pid, "r", encoding="utf-8", errors="replace") as fh:
            for line in fh:
                if line.startswith("0::"):
                    rel = line[3:].strip()
                    return os.path.join(mount, rel.lstrip("/")) if mount else None
    except OSError:
        pass
    return None


def unit_of(pid):
    """The unit ``pid`` runs in (the ``gse.<key>`` directory), or None."""
    path = cgroup_of(pid)
    while path and os.path.basename(path) in CHILDREN:
        path = os.path.dirname(path)
    return path if path and os.path.basename(path).startswith("gse.") else None


def join(cgroup, pid=0):
    """Move ``pid`` (0: the caller) into ``cgroup``; False when it is gone or cannot move."""
    try:
        with open(os.path.join(cgroup, "cgroup.procs"), "w", encoding="ascii") as fh:
            fh.write("%d\n" % pid)
        return True
    except OSError:
        return False


def procs(cgroup):
    """Every pid in ``cgroup`` and the cgroups below it."""
    found = []
    if not cgroup:
        return found
    for dirpath, _dirs, _files in os.walk(cgroup):
        try:
            with open(os.path.join(dirpath, "cgroup.procs"), "r", encoding="ascii") as fh:
                found += [int(x) for x in fh.read().split()]
        except OSError:
            pass
    return found


def _parents():
    """pid -> parent pid of every process."""
    table = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % name, "rb") as fh:
                stat = fh.read().decode("ascii", "replace")
        except OSError:
            continue
        table[int(name)] = int(stat[stat.rfind(")") + 2:].split()[1])
    return table


def descendants(pid, parents=None):
    """Every process below ``pid``."""
    parents = _parents() if parents is None else parents
    children = {}
    for child, parent in parents.items():
        children.setdefault(parent, []).append(child)
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def ancestors(pid):
    """``pid`` and every process above it."""
    parents = _parents()
    chain = []
    while pid > 0 and pid not in chain:
        chain.append(pid)
        pid = parents.get(pid, 0)
    return chain


def move_tree(pid, cgroup, exclude=()):
    """Move ``pid`` and its descendants into ``cgroup``, leaving out ``exclude`` and what is below them.

    Repeated until a pass finds nothing new: a process forked by one not yet
    moved is caught by the next pass (once moved, children are born inside)."""
    for _attempt in range(10):
        parents = _parents()
        skip = set(exclude)
        for ex in exclude:
            skip.update(descendants(ex, parents))
        inside = set(procs(cgroup))
        todo = [p for p in [pid] + descendants(pid, parents) if p not in skip and p not in inside]
        if not todo:
            return
        for p in todo:
            join(cgroup, p)


def rooted_in(chroot):
    """The pids whose root directory is ``chroot`` or lies below it."""
    chroot = os.path.realpath(chroot).rstrip("/")
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            root = os.readlink("/proc/%s/root" % name)
        except OSError:
            continue
        if root == chroot or root.startswith(chroot + "/"):
            found.append(int(name))
    return found


def start_time(pid):
    """The start time of ``pid`` in clock ticks, or None when it does not exist.

    A pid is only taken for a process seen before when its start time is
    the recorded one: the kernel gives a freed pid to the next process.
    """
    try:
        with open("/proc/%d/stat" % pid, "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return None
    # comm (field 2) may hold spaces and parentheses: split after the last ')'.
    return int(stat[stat.rfind(")") + 2:].split()[19])


def identified(pids):
    """{pid: start time} of the ``pids`` that exist now (a dict is taken as it is)."""
    if isinstance(pids, dict):
        return dict(pids)
    out = {}
    for pid in pids:
        start = start_time(pid)
        if start is not None:
            out[pid] = start
    return out


def members(workdir, unit=None, extra=()):
    """The processes of the build of ``workdir``: its unit, the processes rooted in the chroot, ``extra``.

    ``extra`` ({pid: start time}, or pids taken as they are now) counts only
    while each is still the same process: never one that got a freed pid.
    """
    unit = unit or unit_path(workdir)
    found = set(procs(unit) if unit and os.path.isdir(unit) else [])
    found.update(rooted_in(workdir))
    found.update(p for p, start in identified(extra).items() if start_time(p) == start)
    return found


def _signal_all(pids, sig):
    for pid in pids:
        try:
            os.kill(pid, sig)
        except OSError:
            pass


def end(workdir, unit=None, extra=(), spare=(), grace=5.0, deadline=60.0):
    """End the build of ``workdir`` in order: SIGTERM, then after ``grace`` seconds SIGKILL
    (``cgroup.kill`` when none of ``spare`` is in the unit); poll until nothing is left.

    ``extra`` adds pids found otherwise (the owner's descendants where there is
    no cgroup); ``spare`` are never signalled (the caller and its ancestors).
    Returns the pids still alive at ``deadline`` (empty on success)."""
    unit = unit or unit_path(workdir)
    spare = set(spare)
    extra = identified(extra)  # each with its start time: a pid freed meanwhile is not signalled
    start = time.monotonic()
    sent_term = killed = False
    while True:
        left = members(workdir, unit, extra) - spare
        left = {p for p in left if not _zombie(p)}
        if not left:
            return []
        now = time.monotonic() - start
        if now > deadline:
            return sorted(left)
        if not sent_term:
            _signal_all(left, signal.SIGTERM)
            sent_term = True
        elif now > grace or killed:
            in_unit = set(procs(unit)) if unit and os.path.isdir(unit) else set()
            if in_unit and not (in_unit & spare) and os.path.exists(os.path.join(unit, "cgroup.kill")):
                try:
                    with open(os.path.join(unit, "cgroup.kill"), "w", encoding="ascii") as fh:
                        fh.write("1\n")
                except OSError:
                    pass
            _signal_all(left, signal.SIGKILL)
            killed = True
        time.sleep(POLL_SECONDS)


def alive(pid):
    """True while ``pid`` runs (a zombie, dead but not yet reaped, does not)."""
    return not _zombie(pid)


def _zombie(pid):
    try:
        with open("/proc/%d/stat" % pid, "rb") as fh:
            stat = fh.read().decode("ascii", "replace")
    except OSError:
        return True
    return stat[stat.rfind(")") + 2:].split()[0] in ("Z", "X")


def remove(unit):
    """Remove the unit's cgroups when they are empty (a cgroup with processes cannot go)."""
    if not unit:
        return
    for d in tuple(os.path.join(unit, c) for c in CHILDREN) + (unit,):
        try:
            os.rmdir(d)
        except OSError:
            pass
