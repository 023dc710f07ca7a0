"""The build as one unit: gse owns it, ends it on SIGINT/SIGTERM, and refuses a second build.

The unit and the mount guard are the collection's (plugins/module_utils/
buildunit.py, mountguard.py): gse creates the unit of its work directory,
moves itself in (so that everything it starts is inside), and starts the
guard at once, so that even a SIGKILL of gse during part A ends the build.
"""
import os
import sys
import time

from . import layout
from .errors import UsageError

# A guard whose owner died is ending the build and releasing the mounts: how
# long a new build waits for it before refusing.
GUARD_WAIT_SECONDS = 120


def release_command(plan):
    """The one command that ends a build left on ``plan``'s work directory and releases its mounts."""
    cmd = "ansible-playbook playbooks/release.yml -e gse_base=%s" % plan.base
    if os.path.realpath(plan.cdistdir) != "/var/tmp/gse":
        cmd += " -e gse_cdistdir=%s" % plan.cdistdir
    return cmd


def _releasing(guard, workdir):
    """True while a guard of ``workdir`` whose owner is gone is still at work."""
    state_file = os.path.realpath(workdir).rstrip("/") + ".mounts.json"
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        argv = guard.process_argv(int(name))
        # The guard's argv: python -c CODE STATE_FILE OWNER_PID OWNER_START [ROOT]
        if len(argv) > 5 and argv[1] == "-c" and argv[3] == state_file:
            try:
                owner, start = int(argv[4]), int(argv[5])
            except ValueError:
                continue
            if not guard.owner_alive(owner, start):  # a zombie owner is gone too
                return True
    return False


def running(plan, wait=GUARD_WAIT_SECONDS):
    """The pids of a build still running on the work directory ([] when none).

    A build whose owner is gone but whose guard lives is being ended by that
    guard: wait for it (bounded) rather than refuse."""
    guard = layout.mountguard()
    unit = guard.buildunit
    deadline = time.monotonic() + wait
    while True:
        pids = sorted(unit.members(plan.workdir) - set(unit.ancestors(os.getpid())))
        releasing = _releasing(guard, plan.workdir)
        if not pids and not releasing:
            return []
        if not releasing or time.monotonic() > deadline:
            return pids
        time.sleep(0.2)


def refuse_if_running(plan):
    pids = running(plan)
    if pids:
        raise UsageError(
            "a build is still running on %s (pids %s); end it and release its mounts with:\n  %s"
            % (plan.workdir, " ".join(map(str, pids)), release_command(plan)))


class Unit:
    """gse and everything it starts in the unit of the work directory, watched by a guard."""

    def __init__(self, plan):
        self.plan = plan
        self.guard = layout.mountguard()
        self.bu = self.guard.buildunit
        self.path = None
        self.previous = None

    def __enter__(self):
        workdir = os.path.realpath(self.plan.workdir)
        self.path = self.bu.create(workdir)
        if self.path:
            self.previous = self.bu.cgroup_of(os.getpid())
            self.bu.join(os.path.join(self.path, "owner"))
        else:
            # Said once per build: the fallback holds the build, and the admin learns why.
            print("gse: the build is held by its %s" % self.bu.mechanism(None), file=sys.stderr)
        self.guard.spawn_guard(sys.executable, workdir.rstrip("/") + ".mounts.json", os.getpid(), workdir)
        return self

    def end(self):
        """End every process of the build but gse (SIGTERM, then SIGKILL); return what would not end."""
        return self.bu.end(os.path.realpath(self.plan.workdir), unit=self.path,
                           spare=self.bu.ancestors(os.getpid()))

    def __exit__(self, *exc):
        self.end()
        if self.path and self.previous:
            self.bu.join(self.previous)
            self.bu.remove(self.path)
