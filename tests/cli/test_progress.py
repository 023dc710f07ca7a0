"""Quiet-mode phase lines from ansible-runner events shaped as the real roles produce them.

The real roles (their tasks/main.yml generated from the hook table) include each
sub-part's task file between two hook_scripts calls; a sub-part skipped by tags
or by its question includes no task.  Every task event carries the file it
comes from (task_path), and that is what names the sub-part.
(tests/cli/test_run.py checks the lines of a whole run of the stand-in
playbook; test_quiet_roles.py those of the real roles.)
"""
import io
import os
import re

from gse import layout
from gse.progress import Watcher

TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

HOOK_SCRIPTS = "gse.stateless.hook_scripts"
INCLUDE = "ansible.builtin.include_tasks"
ROLES = "/usr/share/ansible/collections/ansible_collections/gse/stateless/roles"


def start(role, name, action, path=None):
    path = "%s/%s/tasks/%s:1" % (ROLES, role, path or "main.yml")
    return {"event": "playbook_on_task_start",
            "event_data": {"role": role, "task": name, "resolved_action": action, "task_path": path}}


def sub_part(role, hook, tasks):
    """The events of one sub-part of a role: scripts before, include, its tasks, scripts after."""
    sub = next(s for p in layout.hooks().PARTS for s in p.subs if s.hook == hook)
    events = [start(role, "Scripts before %s" % hook, HOOK_SCRIPTS),
              start(role, "%s (%s)" % (sub.title, hook), INCLUDE)]
    events += [start(role, t, "ansible.builtin.command", sub.tasks) for t in tasks]
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
    events += sub_part("fundamentals", "gseed", ["Download the stage3", "Verify it"])
    events += sub_part("fundamentals", "gcat", [])   # when: catalyst
    events += sub_part("fundamentals", "gextr", ["Unpack"])
    events.append(start("fundamentals", "Scripts after gparta", HOOK_SCRIPTS))
    # The next role's dependency runs its own tasks before the role's first hook.
    events.append(start("common", "Load config.d", "ansible.builtin.include_vars", "configd.yml"))
    events += sub_part("chroot_prepare", "gmount", [])                      # --lawful-good=gmount
    events += sub_part("chroot_prepare", "ginject", ["Copy"])
    events += sub_part("portage", "gupdate", ["Check the sync method"])
    assert lines(events) == [
        "[ 1/12] Fetching the stage3 and the Portage snapshot",
        "[ 1/12] Extracting tarball",
        "[ 2/12] Injecting custom files",
        "[ 3/12] Updating Portage",
    ]


def test_task_names_do_not_name_sub_parts():
    # A task named like a hook, or like an include, in a file that is no
    # sub-part's starts nothing; a sub-part's file starts its sub-part once.
    events = [start("portage", "gapply emerge the changes", "fake_emerge"),
              start("portage", "Something (gupdate)", "ansible.builtin.command"),
              start("portage", "Emerge the changes", "gse.stateless.emerge", "apply.yml"),
              start("portage", "Emerge the rest", "gse.stateless.emerge", "apply.yml"),
              start("other", "Sign", "ansible.builtin.command", "sign.yml"),
              start("archive", "Sign", "ansible.builtin.command", "sign.yml")]
    assert lines(events) == ["[ 3/12] Applying USE flags", "[11/12] Signing the tarball"]


def test_not_quiet_prints_no_phase_lines():
    events = sub_part("fundamentals", "gextr", ["Unpack"])
    assert lines(events, quiet=False) == []


def test_the_table_has_a_phase_line_for_every_sub_part():
    for part in layout.hooks().PARTS:
        for sub in part.subs:
            assert sub.hook.startswith("g") and sub.title and sub.phase and sub.phase[0].isupper(), sub


def test_an_unchanged_image_is_reported_in_one_line_at_every_verbosity():
    unchanged = {"event": "runner_on_ok", "event_data": {
        "role": "publish", "task": "Publish the image",
        "res": {"changed": False, "msg": "unchanged: 20261125T190000Z is already published"}}}
    other = {"event": "runner_on_ok", "event_data": {"role": "publish", "res": {"msg": "All items completed"}}}
    for quiet in (True, False):
        assert lines([other, unchanged], quiet=quiet) == ["gse: unchanged: 20261125T190000Z is already published"]


def test_a_skipped_part_is_reported_in_one_line_at_every_verbosity():
    """The message a part an unchanged rebuild skips prints, as the generated role (scripts/gen-hooks) writes it."""
    import yaml
    with open(os.path.join(TOP, "roles/configure/tasks/main.yml"), encoding="utf-8") as f:
        (message,) = [t["ansible.builtin.debug"]["msg"] for t in yaml.safe_load(f) if "ansible.builtin.debug" in t]
    message = message.replace("{{ gse_built_build }}", "20261125T190000Z")
    skipped = {"event": "runner_on_ok", "event_data": {
        "role": "configure", "task": "Part E unchanged since the last build",
        "res": {"changed": False, "msg": message}}}
    other = {"event": "runner_on_ok", "event_data": {"role": "configure", "res": {"msg": "Configuration: skipped"}}}
    for quiet in (True, False):
        assert lines([other, skipped], quiet=quiet) == ["gse: " + message]
    assert "20261125T190000Z" in message
