"""A stdout callback for the tests: the whole run as one JSON document.

Shaped like ansible.posix's json callback (plays → tasks → hosts, stats),
which ansible-core does not ship; only what the tests read.
"""
import json
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = r"""
name: gse_test_json
type: stdout
short_description: The run as one JSON document (tests only)
description: Prints plays, tasks with per-host results, and stats as JSON at the end of the run.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "stdout"
    CALLBACK_NAME = "gse_test_json"

    def __init__(self):
        super().__init__()
        self.plays = []

    def v2_playbook_on_play_start(self, play):
        self.plays.append({"play": {"name": play.get_name()}, "tasks": []})

    def _task(self, task):
        tasks = self.plays[-1]["tasks"]
        if not tasks or tasks[-1]["task"]["id"] != str(task._uuid):
            tasks.append({"task": {"name": task.get_name(), "id": str(task._uuid)}, "hosts": {},
                          "start": time.monotonic()})
        return tasks[-1]

    def v2_playbook_on_task_start(self, task, is_conditional):
        self._task(task)

    def _record(self, result, **extra):
        entry = self._task(result._task)
        res = dict(result._result)
        res.update(extra)
        entry["hosts"][result._host.get_name()] = res
        # Wall seconds from the task's start to its last host's result (the rebuild bench sums them).
        entry["seconds"] = round(time.monotonic() - entry.get("start", time.monotonic()), 3)

    def v2_runner_on_ok(self, result):
        self._record(result)

    def v2_runner_on_failed(self, result, ignore_errors=False):
        self._record(result, failed=True, ignore_errors=ignore_errors)

    def v2_runner_on_skipped(self, result):
        self._record(result, skipped=True)

    def v2_runner_on_unreachable(self, result):
        self._record(result, unreachable=True, failed=True)

    def v2_playbook_on_stats(self, stats):
        summary = {h: stats.summarize(h) for h in sorted(stats.processed)}
        self._display.display(json.dumps({"plays": self.plays, "stats": summary}, default=str))
