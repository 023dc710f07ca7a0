#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: chroot_mounts
short_description: Mount and release the file systems a Gentoo chroot needs, guarded against interruption
version_added: 0.1.0
description:
  - Mounts C(/proc), C(/sys), C(/dev) (with C(/dev/pts)), a private C(/run), the repositories and distfiles
    into a chroot, as the Gentoo Handbook's chroot step does, and releases them again.
  - Recursive bind mounts are made slaves (C(mount --make-rslave)) so that releasing them never unmounts
    anything of the build host.
  - Every mount is recorded in a state file next to the chroot. A detached guard process watches the owner of
    the mounts (the outermost C(ansible-playbook), or the process named by C(GSE_MOUNT_OWNER_PID)) and releases
    them when the owner exits for any reason (success, failure, SIGINT, SIGTERM, SIGKILL).
  - The build is one unit, a cgroup v2 C(gse.<key>) per chroot where the kernel offers one with C(cgroup.kill).
    When the guard starts, the owner and everything below it are moved into the unit unless they already run in
    one (the C(gse) command makes its own). When the owner exits, the guard ends every process of the unit and
    every process whose root lies in the chroot (SIGTERM, then SIGKILL), and only then releases the mounts.
    Without a usable cgroup v2 (not mounted, read-only, not delegated, or a kernel without C(cgroup.kill)) the
    unit is the process tree; the guard keeps the owner's descendants as it polls and, when the owner exits, ends
    them, their descendants and every process whose root lies in the chroot. The result's RV(mechanism) says which
    of the two holds the build, and why cgroup v2 is not used.
  - Releasing only unmounts (and, with O(end_build), ends the build's processes); this module never deletes a
    file.
options:
  root:
    description: The chroot directory.
    type: path
    required: true
  state:
    description:
      - V(mounted) mounts what is missing and starts the guard.
      - V(guarded) mounts nothing; it only makes the build's unit, moves the owner into it and starts the guard,
        so that a run that mounts nothing (a publish-only run, part K alone) is ended as one too. O(root) need not
        exist yet. Every build runs it first.
      - V(unmounted) releases every mount at or under O(root), deepest first, recorded or not.
    type: str
    choices: [mounted, guarded, unmounted]
    default: mounted
  repos_dir:
    description: Host directory bind-mounted read-only at C(/var/db/repos) inside the chroot. Empty to skip.
    type: path
    default: ''
  repos_writable:
    description: Bind the repositories read-write (needed when C(emerge --sync) runs inside the chroot).
    type: bool
    default: false
  distfiles_dir:
    description: Host directory bind-mounted at C(/var/cache/distfiles) inside the chroot. Empty to skip.
    type: path
    default: ''
  extra:
    description: Further bind mounts, each C({src, dest, readonly}), C(dest) relative to the chroot.
    type: list
    elements: dict
    default: []
  state_file:
    description: Where the mounts are recorded. Defaults to C(<root>.mounts.json) beside the chroot.
    type: path
  owner_pid:
    description:
      - The process whose exit releases the mounts. Default is C(GSE_MOUNT_OWNER_PID) from the environment,
        else the outermost Ansible process above this module.
    type: int
  guard:
    description: Start the guard process. Without it the mounts stay until released explicitly.
    type: bool
    default: true
  end_build:
    description:
      - With O(state=unmounted), first end the build that uses the chroot, whatever state it was left in (its
        owner alive or dead, its guard gone), that is every process of its unit and every process whose root lies in
        the chroot, with SIGTERM and then SIGKILL. This run and the processes above it are spared.
      - Without it a release leaves processes alone (part K's release, inside the running build).
    type: bool
    default: false
notes:
  - Needs root. Supports check mode.
  - A run holds an exclusive lock (flock) on the directory of the state file while it mounts or unmounts; the
    guard takes the same lock before it releases, so a run still mounting when its owner dies is waited for.
  - The wait for that lock is bounded (300 seconds, C(GSE_MOUNT_LOCK_SECONDS) in the environment overrides); past
    it the run fails, and the guard exits leaving C(guard_error) in the state file, with a message that names the
    pid holding the lock and the command that releases the build.
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Mount what the chroot needs
  gse.stateless.chroot_mounts:
    root: /var/tmp/gse/workdir-precomp
    repos_dir: /var/db/repos
    distfiles_dir: /var/cache/distfiles

- name: Hold the build in its unit before anything is mounted (a publish-only run too)
  gse.stateless.chroot_mounts:
    root: /var/tmp/gse/workdir-precomp
    state: guarded

- name: Release every mount under the chroot
  gse.stateless.chroot_mounts:
    root: /var/tmp/gse/workdir-precomp
    state: unmounted
"""

RETURN = r"""
mounted:
  description: Mount points made by this run.
  type: list
  elements: str
  returned: always
unmounted:
  description: Mount points released by this run.
  type: list
  elements: str
  returned: always
guard_pid:
  description: Pid of the guard process, when one was started.
  type: int
  returned: when a guard was started
unit:
  description: The cgroup of the build's unit; empty where the kernel offers no cgroup v2.
  type: str
  returned: when state is mounted or guarded and the guard is on
mechanism:
  description:
    - What holds the build's processes together, C(cgroup v2 <path>), or C(process tree) followed by why cgroup v2
      cannot be used.
  type: str
  returned: when state is mounted or guarded and the guard is on
  sample: "process tree (cgroup v2 is not mounted): the owner's descendants and the processes rooted in the chroot"
ended:
  description: Pids of the build's processes that O(end_build) ended.
  type: list
  elements: int
  returned: when O(end_build) is true
owner_pid:
  description: The process whose exit releases the mounts.
  type: int
  returned: when state is mounted
"""

import json
import os
import sys

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gse.stateless.plugins.module_utils import buildunit
from ansible_collections.gse.stateless.plugins.module_utils import mountguard
from ansible_collections.gse.stateless.plugins.module_utils.atomic_file import write_atomic
from ansible_collections.gse.stateless.plugins.module_utils.mountinfo import is_mount_point, mounts_under, top_mounts_under


def planned_mounts(p):
    """The mounts to make, in order: (dest inside root, argv list, argv to run after)."""
    plan = [
        ("proc", ["mount", "-t", "proc", "-o", "nosuid,noexec,nodev", "proc"], None),
        ("sys", ["mount", "--rbind", "/sys"], ["mount", "--make-rslave"]),
        ("dev", ["mount", "--rbind", "/dev"], ["mount", "--make-rslave"]),
        ("run", ["mount", "-t", "tmpfs", "-o", "mode=0755,nosuid,nodev", "tmpfs"], None),
    ]
    if p["repos_dir"]:
        plan.append(("var/db/repos", ["mount", "--bind", p["repos_dir"]], None if p["repos_writable"] else "ro"))
    if p["distfiles_dir"]:
        plan.append(("var/cache/distfiles", ["mount", "--bind", p["distfiles_dir"]], None))
    for item in p["extra"]:
        plan.append((item["dest"].strip("/"), ["mount", "--bind", item["src"]], "ro" if item.get("readonly") else None))
    return plan


def run(module, argv):
    rc, out, err = module.run_command(argv)
    if rc != 0:
        module.fail_json(msg="command failed: %s" % " ".join(argv), cmd=argv, rc=rc, stdout=out, stderr=err)


def read_state(path):
    try:
        with open(path, "r", encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return {"mounts": []}


def write_state(path, state):
    write_atomic(path, json.dumps(state, indent=1, sort_keys=True))


def inside(root, rel):
    """The host path of ``rel`` in the chroot, refusing any symlink on the way."""
    path = root
    for part in rel.split("/"):
        if part in ("", ".", ".."):
            raise ValueError("bad mount destination %r" % rel)
        path = os.path.join(path, part)
        if os.path.islink(path):
            raise ValueError("mount destination %s is a symlink inside the chroot; refusing to follow it" % path)
    return path


def do_mount(module, root, state_file):
    p = module.params
    result = {"changed": False, "mounted": [], "unmounted": []}
    owner = p["owner_pid"] or mountguard.find_owner()
    if p["guard"] and owner is None:
        module.fail_json(msg="cannot tell which process owns the mounts; set GSE_MOUNT_OWNER_PID or owner_pid")
    state = read_state(state_file)
    if p["guard"] and not module.check_mode:
        # The guard starts before the first mount, so a failure half way leaves nothing behind.
        if not guard_alive(state, state_file) or state.get("owner_pid") != owner:
            state["owner_pid"] = owner
            state["root"] = root
            write_state(state_file, state)
            state["guard_pid"] = mountguard.spawn_guard(sys.executable, state_file, owner, root)
        state["unit"] = enter_unit(root, owner, state["guard_pid"])
        state["mechanism"] = buildunit.mechanism(state["unit"])
        write_state(state_file, state)
        result["guard_pid"] = state["guard_pid"]
        result["unit"] = state["unit"]
        result["mechanism"] = state["mechanism"]
    for rel, argv, after in planned_mounts(p) if p["state"] == "mounted" else []:
        try:
            target = inside(root, rel)
        except ValueError as exc:
            module.fail_json(msg=str(exc))
        if is_mount_point(target):
            continue
        result["changed"] = True
        result["mounted"].append(target)
        if module.check_mode:
            continue
        if not os.path.isdir(target):
            os.makedirs(target, mode=0o755)
        # Record before mounting: a mount that exists is always one the guard knows.
        if target not in state["mounts"]:
            state["mounts"].append(target)
            write_state(state_file, state)
        run(module, argv + [target])
        if after == "ro":
            run(module, ["mount", "-o", "remount,bind,ro", target])
        elif after:
            run(module, after + [target])
    if owner is not None:
        result["owner_pid"] = owner
    return result


def enter_unit(root, owner, guard_pid):
    """The unit the build runs in: the owner's own (gse makes one), else the chroot's unit with the
    owner and everything below it moved in (not the guard, which must outlive them)."""
    unit = buildunit.unit_of(owner)
    if unit:
        return unit
    unit = buildunit.create(root)
    if unit is None:
        return ""
    buildunit.move_tree(owner, os.path.join(unit, "build"), exclude=[guard_pid])
    return unit


def end_build(module, root, state_file):
    """End every process of the build that uses ``root``, sparing this run and what is above it."""
    state = read_state(state_file)
    owner = state.get("owner_pid")
    extra = []
    if owner and mountguard.process_start_time(owner) is not None:
        extra = [owner] + buildunit.descendants(owner)
    spare = buildunit.ancestors(os.getpid())
    before = sorted(buildunit.members(root, extra=extra) - set(spare))
    if module.check_mode:
        return before
    left = buildunit.end(root, extra=extra, spare=spare)
    if left:
        module.fail_json(msg="processes of the build under %s would not end: %s" % (root, " ".join(map(str, left))),
                         ended=[p for p in before if p not in left])
    return before


def guard_alive(state, state_file):
    pid = state.get("guard_pid")
    if not pid or mountguard.process_start_time(pid) is None:
        return False
    return state_file_of(pid) == state_file


def state_file_of(pid):
    argv = mountguard.process_argv(pid)
    return argv[3] if len(argv) > 3 and argv[1] == "-c" else None


def do_unmount(module, root, state_file):
    result = {"changed": False, "mounted": [], "unmounted": []}
    if module.params["end_build"]:
        result["ended"] = end_build(module, root, state_file)
        result["changed"] = bool(result["ended"])
    # The chroot directory itself being a mount point (its own file system) is not ours to release.
    for target in sorted(top_mounts_under(root), key=lambda m: (-m.count("/"), m)):
        result["changed"] = True
        result["unmounted"].append(target)
        if module.check_mode:
            continue
        rc, out, err = module.run_command(["umount", "-R", target])
        if rc != 0 and is_mount_point(target):
            rc, out, err = module.run_command(["umount", "-R", "-l", target])
            if rc != 0:
                module.fail_json(msg="could not release %s" % target, cmd=["umount", "-R", "-l", target],
                                 rc=rc, stdout=out, stderr=err, **result)
    if not module.check_mode:
        left = [m for m in mounts_under(root) if m != os.path.realpath(root)]
        if left:
            module.fail_json(msg="mounts remain under %s: %s" % (root, ", ".join(left)), **result)
        if os.path.exists(state_file):
            # Released: the guard finds nothing to unmount when its owner exits.
            os.unlink(state_file)
        if module.params["end_build"]:
            buildunit.remove(buildunit.unit_path(root))
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            state=dict(type="str", default="mounted", choices=["mounted", "guarded", "unmounted"]),
            repos_dir=dict(type="path", default=""),
            repos_writable=dict(type="bool", default=False),
            distfiles_dir=dict(type="path", default=""),
            extra=dict(type="list", elements="dict", default=[]),
            state_file=dict(type="path"),
            owner_pid=dict(type="int"),
            guard=dict(type="bool", default=True),
            end_build=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    if os.geteuid() != 0:
        module.fail_json(msg="mounting a chroot needs root")
    root = os.path.realpath(module.params["root"])
    if root == "/":
        module.fail_json(msg="refusing to treat / as a chroot")
    state_file = module.params["state_file"] or root.rstrip("/") + ".mounts.json"
    if module.params["state"] == "mounted":
        if not os.path.isdir(root):
            module.fail_json(msg="chroot directory %s does not exist" % root)
        for d in (module.params["repos_dir"], module.params["distfiles_dir"]):
            if d and not os.path.isdir(d):
                module.fail_json(msg="%s does not exist on the build host" % d)
    if module.params["state"] == "guarded" and not module.check_mode:
        # The state file lives beside the chroot, which a first build has not made yet.
        os.makedirs(os.path.dirname(state_file), mode=0o755, exist_ok=True)
    # Held until this run exits: a guard whose owner died meanwhile waits
    # for it, so nothing is mounted after the guard released (see
    # mountguard.locked).
    try:
        lock = None if module.check_mode else mountguard.locked(state_file, root=root)
    except mountguard.LockTimeout as exc:
        module.fail_json(msg=str(exc))
    try:
        if module.params["state"] in ("mounted", "guarded"):
            result = do_mount(module, root, state_file)
        else:
            result = do_unmount(module, root, state_file)
    finally:
        if lock is not None:
            os.close(lock)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
