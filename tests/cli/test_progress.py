"""Quiet-mode phase lines from ansible-runner events shaped as the real roles produce them.

The real roles include each sub-part's tasks with a task named "<title> (<hook>)"
between two hook_scripts calls; a sub-part skipped by tags or by its condition
starts its include but none of its tasks.  (tests/cli/test_run.py checks the
lines of a whole run of the stand-in playbook.)
"""
import io
import re

from gse import layout
from gse.progress import Watcher

HOOK_SCRIPTS = "gse.stateless.hook_scripts"
INCLUDE = "ansible.builtin.include_tasks"


def start(role, name, action):
    return {"event": "playbook_on_task_start",
            "event_data": {"role": role, "task": name, "resolved_action": action}}


def sub_part(role, hook, title, tasks):
    """The events of one sub-part of a role: scripts before, include, its tasks, scripts after."""
    events = [start(role, "Scripts before %s" % hook, HOOK_SCRIPTS),
              start(role, "%s (%s)" % (title, hook), INCLUDE)]
    events += [start(role, t, "ansible.builtin.command") for t in tasks]
    events.append(start(role, "Scripts after %s" % hook, HOOK_SCRIPTS))
    return events


def lines(events, quiet=True):
    out = io.StringIO()
    watcher = Watcher(layout.hooks().PARTS, quiet, out=out)
    for e in events:
        assert watcher(e) is True
    return [re.sub(r" \(\d+:\d\d:\d\d\)$", "", line) for line in out.getvalue().splitlines()]


def test_a_line_per_sub_part_that_runs_tasks_numbered_with_its_part():
    events = [start("fundamentals", "Scripts before gparta", HOOK_SCRIPTS)]
    events += sub_part("fundamentals", "gseed", "Locate the seed", ["Download the stage3", "Verify it"])
    events += sub_part("fundamentals", "gcat", "Build the stages with catalyst", [])   # when: catalyst
    events += sub_part("fundamentals", "gextr", "Extract the stage3", ["Unpack"])
    events.append(start("fundamentals", "Scripts after gparta", HOOK_SCRIPTS))
    # The next role's dependency runs its own tasks before the role's first hook.
    events.append(start("common", "Load config.d", "ansible.builtin.include_vars"))
    events += sub_part("chroot_prepare", "gmount", "Mount", [])                      # --lawful-good=gmount
    events += sub_part("chroot_prepare", "ginject", "Inject", ["Copy"])
    events += sub_part("portage", "gupdate", "Sync the repositories", ["Check the sync method"])
    assert lines(events) == [
        "[ 1/12] Fetching the stage3 and the Portage snapshot",
        "[ 1/12] Extracting tarball",
        "[ 2/12] Injecting custom files",
        "[ 3/12] Updating Portage",
    ]


def test_tasks_named_after_their_hook_start_it_once():
    events = [start("portage", "gapply emerge the changes", "fake_emerge"),
              start("portage", "gapply ran", "ansible.builtin.debug"),
              start("portage", "Hold the run here", "ansible.builtin.command"),
              start("archive", "gsign ran", "ansible.builtin.debug")]
    assert lines(events) == ["[ 3/12] Applying USE flags", "[11/12] Signing the tarball"]


def test_not_quiet_prints_no_phase_lines():
    events = sub_part("fundamentals", "gextr", "Extract the stage3", ["Unpack"])
    assert lines(events, quiet=False) == []


def test_the_table_has_a_phase_line_for_every_sub_part():
    for part in layout.hooks().PARTS:
        for name, title, line in part[6]:
            assert name.startswith("g") and title and line and line[0].isupper(), (name, line)


def test_an_unchanged_image_is_reported_in_one_line_at_every_verbosity():
    unchanged = {"event": "runner_on_ok", "event_data": {
        "role": "publish", "task": "Publish the image",
        "res": {"changed": False, "msg": "unchanged: 20261125T190000Z is already published"}}}
    other = {"event": "runner_on_ok", "event_data": {"role": "publish", "res": {"msg": "All items completed"}}}
    for quiet in (True, False):
        assert lines([other, unchanged], quiet=quiet) == ["gse: unchanged: 20261125T190000Z is already published"]
