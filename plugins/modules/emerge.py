#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run emerge inside the system being built and report what really changed."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: emerge
short_description: Merge, unmerge, deselect and sync with Portage, with resume support
description:
  - Runs C(emerge) on the managed system (inside the build chroot the system is C(/)).
  - C(changed) comes from the package database C(/var/db/pkg), snapshot before and after the run; for
    O(action=deselect) from the world files; for syncs from the repositories' timestamps or git HEAD.
  - On failure the result names the package that failed, the resume list emerge left in
    C(/var/cache/edb/mtimedb), and the build log with its last lines, so that the run can be resumed or the
    failed package skipped (O(resume)).
  - Every run is non-interactive and stream-friendly; see O(color) and the notes for the environment.
options:
  atoms:
    description:
      - Package atoms or sets (C(@world)) to act on. Required for O(action=merge) and O(action=deselect)
        unless a resume list is continued.
    type: list
    elements: str
    default: []
    aliases: [name, packages]
  action:
    description:
      - V(merge) builds and installs O(atoms); V(depclean) removes what nothing needs (only O(atoms) when given);
        V(deselect) removes O(atoms) from the world files; V(sync) runs C(emerge --sync [repo]);
        V(webrsync) runs C(emerge-webrsync).
    type: str
    choices: [merge, depclean, deselect, sync, webrsync]
    default: merge
  repo:
    description: The repository to sync with O(action=sync); all auto-sync repositories when omitted.
    type: str
  update:
    description: C(--update).
    type: bool
    default: false
  deep:
    description: C(--deep).
    type: bool
    default: false
  newuse:
    description: C(--newuse).
    type: bool
    default: false
  changed_use:
    description: C(--changed-use).
    type: bool
    default: false
  emptytree:
    description: C(--emptytree).
    type: bool
    default: false
  oneshot:
    description: C(--oneshot), do not add O(atoms) to the world file.
    type: bool
    default: false
  noreplace:
    description: C(--noreplace), skip packages that are already installed.
    type: bool
    default: false
  nodeps:
    description: C(--nodeps).
    type: bool
    default: false
  usepkg:
    description: C(--usepkg), use binary packages when available.
    type: bool
    default: false
  keep_going:
    description: C(--keep-going).
    type: bool
    default: false
  verbose:
    description: C(--verbose).
    type: bool
    default: false
  quiet_build:
    description: C(--quiet-build=y) or C(--quiet-build=n); Portage's default when omitted.
    type: bool
  jobs:
    description: C(--jobs=N).
    type: int
  load_average:
    description: C(--load-average=X).
    type: float
  extra_args:
    description: Further emerge arguments, placed before O(atoms).
    type: list
    elements: str
    default: []
  resume:
    description:
      - What to do when emerge left a resume list (a previous run failed or was interrupted).
      - V(none) ignores it and runs the requested emerge.
      - V(resume) continues the list with C(emerge --resume); V(skipfirst) drops its first package (the one
        that failed) with C(emerge --resume --skipfirst). O(atoms) and the merge options are then not used.
      - When there is no resume list, V(resume) and V(skipfirst) run the requested emerge normally.
      - Only for O(action=merge).
      - With O(resume_id), only the list recorded by the failed emerge with the same id is continued (see there).
    type: str
    choices: [none, resume, skipfirst]
    default: none
  resume_id:
    description:
      - Binds the resume list to this emerge (the build uses the hook of its sub-part, for example V(gpkg)).
      - When it fails, the resume list emerge left is recorded beside C(mtimedb) (C(gse-resume.json)) under this id.
        O(resume) then continues only the list recorded under the same id, put back into C(mtimedb) first (another
        emerge run since may have replaced it); any other emerge runs its own request normally and leaves the record
        alone. A successful run of the bound emerge clears the record.
      - Empty (the default) continues whatever list C(mtimedb) holds.
    type: str
    default: ""
  color:
    description: Let emerge use colour (C(--color=y)); by default C(--color=n) and C(NOCOLOR=true).
    type: bool
    default: false
  log_tail_lines:
    description: How many lines of the failed build log to return in RV(log_tail).
    type: int
    default: 40
  live_log:
    description:
      - A file on the managed system to which emerge's standard output and error are appended line by line
        while it runs, so that its progress can be followed before the task ends (the C(gse) command tails
        it). The output is still returned in RV(stdout) and RV(stderr).
      - Empty (the default) writes no file.
    type: str
    default: ""
notes:
  - "Every emerge runs with C(--ask=n --nospinner --color=n) and the environment C(CLEAN_DELAY=0
    EMERGE_WARNING_DELAY=0 ACCEPT_PROPERTIES=-interactive PAGER=cat TERM=dumb NOCOLOR=true): nothing waits
    for a terminal or counts down, ebuilds that would ask questions are masked instead of blocking, and the
    output has no colour codes or redrawn lines."
  - Portage settings (C(PORTAGE_LOGDIR), C(PORTAGE_TMPDIR)) are read with C(portageq envvar).
  - In check mode merges, depcleans and deselects run with C(--pretend) and report what they would do;
    syncs are not run and report C(changed).
  - With O(live_log) the command and its environment are the same; only its output is also copied to the file.
attributes:
  check_mode:
    support: full
    description: Runs emerge with C(--pretend) and reports what it would merge, unmerge or deselect; a sync is only reported.
  diff_mode:
    support: none
    description: No diff; RV(merged) and RV(unmerged) say what changed.
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Install eix unless it is there
  gse.stateless.emerge:
    atoms: [app-portage/eix]
    noreplace: true

- name: Apply USE changes
  gse.stateless.emerge:
    atoms: ["@world"]
    update: true
    deep: true
    changed_use: true

- name: Rebuild the system
  gse.stateless.emerge:
    atoms: ["@system"]
    emptytree: true
    quiet_build: true

- name: Continue a failed run, skipping the package that failed
  gse.stateless.emerge:
    atoms: [app-misc/hello-lab]
    resume: skipfirst

- name: Merge the user's packages; a resume request continues only this emerge's own failure
  gse.stateless.emerge:
    atoms: [app-misc/lab-tools]
    resume: "{{ gse_emerge_resume | default('none') }}"
    resume_id: gpkg

- name: Rebuild the system, following emerge's output in a file meanwhile
  gse.stateless.emerge:
    atoms: ["@system"]
    emptytree: true
    live_log: /var/log/gse-live.log

- name: Drop build-only tools and clean up
  gse.stateless.emerge:
    action: deselect
    atoms: [app-portage/eix]
- gse.stateless.emerge:
    action: depclean

- name: Sync the gentoo repository
  gse.stateless.emerge:
    action: sync
    repo: gentoo
"""

RETURN = r"""
merged:
  description: cpvs merged (in check mode, that would be merged), including reinstalls.
  returned: always
  type: list
  elements: str
  sample: [app-misc/hello-lab-1.0]
unmerged:
  description: cpvs removed (in check mode, that would be removed).
  returned: always
  type: list
  elements: str
deselected:
  description: World file entries removed (in check mode, that would be removed) by O(action=deselect).
  returned: when O(action=deselect)
  type: list
  elements: str
resumed:
  description: Whether a stored resume list was continued instead of a fresh emerge.
  returned: when O(action=merge)
  type: bool
skipped_packages:
  description: The cpvs dropped from the resume list by O(resume=skipfirst).
  returned: when O(action=merge)
  type: list
  elements: str
cmd:
  description: The command that ran.
  returned: when a command ran
  type: list
  elements: str
rc:
  description: Its exit status.
  returned: when a command ran
  type: int
stdout:
  description: Its standard output.
  returned: when a command ran
  type: str
stderr:
  description: Its standard error.
  returned: when a command ran
  type: str
failed_package:
  description: The cpv that failed, from emerge's output or else the head of the resume list.
  returned: on failure
  type: str
  sample: dev-util/broken-build-1.0
failed_packages:
  description: Every cpv emerge reported as failed (several with O(keep_going)).
  returned: on failure
  type: list
  elements: str
resume:
  description: The cpvs left to merge in the resume list emerge stored, in order (head = the failed package).
  returned: on failure
  type: list
  elements: str
  sample: [dev-util/broken-build-1.0, app-misc/lab-tools-1.0]
log:
  description: The build log of the failed package (under C(PORTAGE_LOGDIR) or its build directory).
  returned: on failure
  type: str
  sample: /var/log/portage/dev-util:broken-build-1.0:20261125-101010.log
log_tail:
  description: The last O(log_tail_lines) lines of RV(log).
  returned: on failure
  type: list
  elements: str
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gse.stateless.plugins.module_utils import emerge_args
from ansible_collections.gse.stateless.plugins.module_utils import emerge_failure
from ansible_collections.gse.stateless.plugins.module_utils import emerge_output
from ansible_collections.gse.stateless.plugins.module_utils import live_command
from ansible_collections.gse.stateless.plugins.module_utils import portage_mtimedb
from ansible_collections.gse.stateless.plugins.module_utils import portage_repos
from ansible_collections.gse.stateless.plugins.module_utils import portage_vdb
from ansible_collections.gse.stateless.plugins.module_utils import portageq

# Where this module looks; tests point them into a temporary tree.
VDB = portage_vdb.VDB
WORLD = portage_vdb.WORLD
WORLD_SETS = portage_vdb.WORLD_SETS
MTIMEDB = portage_mtimedb.MTIMEDB


def _run(module, argv):
    env = emerge_args.environment(module.params)
    if module.params["live_log"]:
        return live_command.run_logged(module, argv, module.params["live_log"], environ_update=env)
    return module.run_command(argv, environ_update=env)


def _fail(module, msg, argv, rc, out, err, **extra):
    module.fail_json(msg=msg, cmd=argv, rc=rc, stdout=out, stderr=err, **extra)


def _fail_build(module, argv, rc, out, err, **extra):
    """A failed merge: add the failed package, the resume list and the build log."""
    settings = portageq.envvars(module, ["PORTAGE_LOGDIR", "PORTAGE_TMPDIR"])
    facts = emerge_failure.describe(out, err, settings, MTIMEDB, module.params["log_tail_lines"])
    what = facts["failed_package"] or "emerge"
    msg = "%s failed (rc=%d)" % (what, rc)
    if facts["log"]:
        msg += "; build log: %s" % facts["log"]
    _fail(module, msg, argv, rc, out, err, **dict(extra, **facts))


def run_packages(module, emerge):
    """merge and depclean: changed = what changed in /var/db/pkg."""
    p = module.params
    action = p["action"]
    resumed, skipped = False, []
    bound = None
    if action == "merge" and p["resume"] != "none":
        if p["resume_id"]:
            bound = portage_mtimedb.bound_resume(p["resume_id"], MTIMEDB)
            pending = portage_mtimedb.resume_cpvs({"resume": bound}) if bound else []
        else:
            _key, pending = portage_mtimedb.read_resume(MTIMEDB)
        if pending:
            resumed = True
            skipfirst = p["resume"] == "skipfirst"
            skipped = pending[:1] if skipfirst else []
    if action == "merge" and not resumed and not p["atoms"]:
        module.fail_json(msg="atoms is required for action=merge (no resume list to continue)")

    def argv_for(pretend):
        if resumed:
            return emerge_args.resume(emerge, p, skipfirst=bool(skipped), pretend=pretend)
        return getattr(emerge_args, action)(emerge, p, pretend=pretend)

    extra = {"resumed": resumed, "skipped_packages": skipped} if action == "merge" else {}
    if module.check_mode:
        argv = argv_for(True)
        rc, out, err = _run(module, argv)
        if rc != 0:
            _fail(module, "emerge --pretend failed (rc=%d)" % rc, argv, rc, out, err, **extra)
        text = out + "\n" + err
        merged, unmerged = emerge_output.would_merge(text), emerge_output.would_unmerge(text)
        module.exit_json(changed=bool(merged or unmerged), merged=merged, unmerged=unmerged,
                         cmd=argv, rc=rc, stdout=out, stderr=err, **extra)

    if resumed and bound:
        portage_mtimedb.restore(bound, MTIMEDB)
    argv = argv_for(False)
    before = portage_vdb.installed(VDB)
    rc, out, err = _run(module, argv)
    merged, unmerged = portage_vdb.compare(before, portage_vdb.installed(VDB))
    changed = bool(merged or unmerged)
    if action == "merge" and p["resume_id"]:
        if rc != 0:
            portage_mtimedb.record_failure(p["resume_id"], MTIMEDB)
        elif portage_mtimedb.recorded_task(MTIMEDB) == p["resume_id"]:
            portage_mtimedb.clear_record(MTIMEDB)
    if rc != 0:
        _fail_build(module, argv, rc, out, err, changed=changed, merged=merged, unmerged=unmerged, **extra)
    module.exit_json(changed=changed, merged=merged, unmerged=unmerged,
                     cmd=argv, rc=rc, stdout=out, stderr=err, **extra)


def run_deselect(module, emerge):
    """deselect: changed = what left the world files."""
    p = module.params
    if not p["atoms"]:
        module.fail_json(msg="atoms is required for action=deselect")
    argv = emerge_args.deselect(emerge, p, pretend=module.check_mode)
    before = portage_vdb.read_selected(WORLD, WORLD_SETS)
    rc, out, err = _run(module, argv)
    if rc != 0:
        _fail(module, "emerge --deselect failed (rc=%d)" % rc, argv, rc, out, err)
    if module.check_mode:
        removed = emerge_output.would_deselect(out + "\n" + err)
    else:
        after = set(portage_vdb.read_selected(WORLD, WORLD_SETS))
        removed = [e for e in before if e not in after]
    module.exit_json(changed=bool(removed), deselected=removed, merged=[], unmerged=[],
                     cmd=argv, rc=rc, stdout=out, stderr=err)


def run_sync(module):
    """sync and webrsync: changed = a repository's timestamp or HEAD moved."""
    p = module.params
    if p["action"] == "webrsync":
        argv = emerge_args.webrsync(module.get_bin_path("emerge-webrsync", required=True), p)
    else:
        argv = emerge_args.sync(module.get_bin_path("emerge", required=True), p)
    if module.check_mode:
        module.exit_json(changed=True, merged=[], unmerged=[], cmd=argv,
                         msg="check mode: the repositories would be synced")
    locations = portage_repos.repo_locations(module)
    if p["action"] == "sync" and p["repo"]:
        locations = {k: v for k, v in locations.items() if k == p["repo"]}
    before = {name: portage_repos.fingerprint(path) for name, path in locations.items()}
    rc, out, err = _run(module, argv)
    after = {name: portage_repos.fingerprint(path) for name, path in locations.items()}
    if rc != 0:
        _fail(module, "%s failed (rc=%d)" % (" ".join(argv[:2]), rc), argv, rc, out, err)
    synced = sorted(n for n in after if after[n] != before[n])
    # A tree without any timestamp cannot tell: a sync that succeeded counts.
    unknown = not any(after.values())
    module.exit_json(changed=bool(synced) or unknown, synced=synced, merged=[], unmerged=[],
                     cmd=argv, rc=rc, stdout=out, stderr=err)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            atoms=dict(type="list", elements="str", default=[], aliases=["name", "packages"]),
            action=dict(type="str", default="merge", choices=["merge", "depclean", "deselect", "sync", "webrsync"]),
            repo=dict(type="str"),
            update=dict(type="bool", default=False),
            deep=dict(type="bool", default=False),
            newuse=dict(type="bool", default=False),
            changed_use=dict(type="bool", default=False),
            emptytree=dict(type="bool", default=False),
            oneshot=dict(type="bool", default=False),
            noreplace=dict(type="bool", default=False),
            nodeps=dict(type="bool", default=False),
            usepkg=dict(type="bool", default=False),
            keep_going=dict(type="bool", default=False),
            verbose=dict(type="bool", default=False),
            quiet_build=dict(type="bool"),
            jobs=dict(type="int"),
            load_average=dict(type="float"),
            extra_args=dict(type="list", elements="str", default=[]),
            resume=dict(type="str", default="none", choices=["none", "resume", "skipfirst"]),
            resume_id=dict(type="str", default=""),
            color=dict(type="bool", default=False),
            log_tail_lines=dict(type="int", default=40),
            live_log=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    action = module.params["action"]
    if action in ("sync", "webrsync"):
        run_sync(module)
    emerge = module.get_bin_path("emerge", required=True)
    if action == "deselect":
        run_deselect(module, emerge)
    run_packages(module, emerge)


if __name__ == "__main__":
    main()
