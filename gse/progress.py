"""Read ansible-runner events: quiet-mode phase lines and the failed task.

A task's role names its part (the hook table's role column), so the failure
report needs no help from the playbook.  Quiet mode prints a line per
sub-part as it starts; runner events carry no tags, so the sub-part is read
from task names, the way the roles name them:

- a role includes each sub-part's tasks with a task named "<title> (<hook>)"
  (tagged always, so it starts even when the sub-part is skipped); the
  sub-part starts when the next task starts, unless that task is the
  "Scripts after" call of hook_scripts (the include brought nothing to run:
  skipped by tags or by its condition);
- a task whose name begins with a sub-part hook ("gextr extract ...") starts
  that sub-part itself.
"""
import re
import sys
import time

# "... (gupdate)": the task that includes a sub-part's tasks.
_MARKED = re.compile(r"\((g[a-z]+)\)$")


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


def subparts(parts):
    """sub-part hook -> (part number from 1, phase line)."""
    return {sub[0]: (index + 1, sub[2]) for index, part in enumerate(parts) for sub in part[6]}


class Watcher:
    """An ansible-runner event_handler: phase lines (quiet) and the failure."""

    def __init__(self, parts, quiet, start=None, out=None):
        self.parts = parts
        self.subparts = subparts(parts)
        self.quiet = quiet
        self.start = time.monotonic() if start is None else start
        self.out = out or sys.stdout
        self.current = None       # the sub-part whose line was printed last
        self.pending = None       # a sub-part included, not started yet
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
        """Print part L's "unchanged: <version> is already published" (a build that publishes nothing)."""
        if isinstance(msg, str) and msg.startswith("unchanged: "):
            self.out.write("gse: %s\n" % msg.splitlines()[0])
            self.out.flush()

    def task_started(self, data):
        name = (data.get("task") or data.get("name") or "").strip()
        action = data.get("resolved_action") or data.get("task_action") or ""
        pending, self.pending = self.pending, None
        marked = _MARKED.search(name)
        words = name.split()
        if action.endswith("hook_scripts"):
            return
        if marked and marked.group(1) in self.subparts and action.endswith("include_tasks"):
            self.pending = marked.group(1)
        elif marked and marked.group(1) in self.subparts:
            self.started(marked.group(1))
        elif words and words[0] in self.subparts:
            self.started(words[0])
        elif pending:
            self.started(pending)

    def started(self, hook):
        if hook == self.current:
            return
        self.current = hook
        if self.quiet:
            number, line = self.subparts[hook]
            self.out.write("[%2d/%d] %s (%s)\n" % (number, len(self.parts), line,
                                                   elapsed(time.monotonic() - self.start)))
            self.out.flush()
