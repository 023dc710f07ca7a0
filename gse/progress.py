"""Read ansible-runner events: quiet-mode phase lines and the failed task.

A task's role names its part (the hook table's role column), so the phase
line and the failure report need no help from the playbook.
"""
import sys
import time


def part_of_role(parts, role):
    """The hook table row of the part a role belongs to, or None."""
    if not role:
        return None
    short = role.rsplit(".", 1)[-1]
    for index, part in enumerate(parts):
        if part[1] == short:
            return index, part
    return None


def elapsed(seconds):
    seconds = int(seconds)
    return "%d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)


class Failure:
    """The first failed task of a run."""

    def __init__(self, part, task, host, result):
        self.part = part          # hook table row, or None
        self.task = task
        self.host = host
        self.result = result or {}

    @property
    def is_emerge(self):
        return "resume" in self.result or "failed_package" in self.result


class Watcher:
    """An ansible-runner event_handler: phase lines (quiet) and the failure."""

    def __init__(self, parts, quiet, start=None, out=None):
        self.parts = parts
        self.quiet = quiet
        self.start = time.monotonic() if start is None else start
        self.out = out or sys.stdout
        self.current = None
        self.failure = None

    def __call__(self, event):
        kind = event.get("event")
        data = event.get("event_data") or {}
        if kind == "playbook_on_task_start":
            found = part_of_role(self.parts, data.get("role"))
            if found and found[0] != self.current:
                self.current = found[0]
                if self.quiet:
                    self.phase(found)
        elif kind in ("runner_on_failed", "runner_on_unreachable") and self.failure is None:
            if not data.get("ignore_errors"):
                found = part_of_role(self.parts, data.get("role"))
                self.failure = Failure(found[1] if found else None, data.get("task"),
                                       data.get("host"), data.get("res"))
        return True

    def phase(self, found):
        index, part = found
        self.out.write("[%2d/%d] %s (%s)\n" % (index + 1, len(self.parts), part[5],
                                               elapsed(time.monotonic() - self.start)))
        self.out.flush()
