"""Read ansible-runner events: quiet-mode phase lines and the failed task.

A task's role names its part (the hook table's role column), so the failure
report needs no help from the playbook.  Quiet mode prints a line per
sub-part as it starts.  Runner events carry no tags, but every task event
carries ``task_path``, the task file and line the task comes from, and the
hook table names each sub-part's task file: a sub-part starts when the first
task of its file starts.  A sub-part skipped by tags or by its question
(the include's condition, generated from the table) includes no task and
prints no line.
"""
import os
import sys
import time


def part_of_role(parts, role):
    """The hook table row of the part a role belongs to, or None."""
    if not role:
        return None
    short = role.rsplit(".", 1)[-1]
    for index, part in enumerate(parts):
        if part.role == short:
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


def subparts(parts):
    """sub-part hook -> (part number from 1, phase line)."""
    return {sub.hook: (index + 1, sub.phase) for index, part in enumerate(parts) for sub in part.subs}


def task_files(parts):
    """(role, task file name) -> sub-part hook."""
    return {(part.role, sub.tasks): sub.hook for part in parts for sub in part.subs}


def task_file(data):
    """(role, file name) of the task an event is about, from its task_path ("<file>:<line>")."""
    path = (data.get("task_path") or "").rsplit(":", 1)[0]
    tasks_dir, name = os.path.split(path)
    role_dir, tasks = os.path.split(tasks_dir)
    if tasks != "tasks" or os.path.basename(os.path.dirname(role_dir)) != "roles":
        return None
    return os.path.basename(role_dir), name


class Watcher:
    """An ansible-runner event_handler: phase lines (quiet) and the failure."""

    def __init__(self, parts, quiet, start=None, out=None):
        self.parts = parts
        self.subparts = subparts(parts)
        self.quiet = quiet
        self.start = time.monotonic() if start is None else start
        self.out = out or sys.stdout
        self.files = task_files(parts)
        self.current = None       # the sub-part whose line was printed last
        self.failure = None

    def __call__(self, event):
        kind = event.get("event")
        data = event.get("event_data") or {}
        if kind == "playbook_on_task_start":
            self.task_started(data)
        elif kind == "runner_on_ok":
            self.notice((data.get("res") or {}).get("msg"))
        elif kind in ("runner_on_failed", "runner_on_unreachable") and self.failure is None:
            if not data.get("ignore_errors"):
                found = part_of_role(self.parts, data.get("role"))
                self.failure = Failure(found[1] if found else None, data.get("task"),
                                       data.get("host"), data.get("res"))
        return True

    def notice(self, msg):
        """Print part L's "unchanged: <version> is already published" (a build that publishes nothing) and
        each part a rebuild skips ("<part>: unchanged since <build>: skipped", roles' generated main.yml)."""
        if not isinstance(msg, str):
            return
        if msg.startswith("unchanged: ") or (": unchanged since " in msg and msg.endswith(": skipped")):
            self.out.write("gse: %s\n" % msg.splitlines()[0])
            self.out.flush()

    def task_started(self, data):
        hook = self.files.get(task_file(data))
        if hook:
            self.started(hook)

    def started(self, hook):
        if hook == self.current:
            return
        self.current = hook
        if self.quiet:
            number, line = self.subparts[hook]
            self.out.write("[%2d/%d] %s (%s)\n" % (number, len(self.parts), line,
                                                   elapsed(time.monotonic() - self.start)))
            self.out.flush()
