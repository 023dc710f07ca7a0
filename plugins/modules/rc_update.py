#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Add services to OpenRC runlevels and remove them, one rc-update per change."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: rc_update
short_description: Put OpenRC services in runlevels (or take them out) with rc-update
description:
  - Runs C(rc-update add <service> <runlevel>) or C(rc-update del <service> <runlevel>) for each entry of
    O(services) that is not already in the wanted state.
  - The runlevel is always named on the command line; inside a chroot C(rc-update) without one falls back
    to C(sysinit), not to C(default).
  - The state is read from C(/etc/runlevels/<runlevel>/<service>) first; an entry already in place runs no
    command. C(changed) is read from the same place after C(rc-update) ran.
  - Every service to add must have its script in C(/etc/init.d) and every runlevel must exist; this is checked
    for all entries before any command runs, and the failure names what is missing.
options:
  services:
    description: The entries, applied in order.
    type: list
    elements: dict
    required: true
    suboptions:
      name:
        description: The service (the name of its script in C(/etc/init.d)).
        type: str
        required: true
        aliases: [service]
      runlevel:
        description: The runlevel.
        type: str
        default: default
      state:
        description: V(present) adds the service to the runlevel, V(absent) removes it.
        type: str
        choices: [present, absent]
        default: present
attributes:
  check_mode:
    support: full
    description: Reports the runlevel changes without running C(rc-update).
  diff_mode:
    support: none
    description: No diff; RV(results) lists each change.
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Runlevels of the lab image
  gse.stateless.rc_update:
    services:
      - {name: sshd, runlevel: default}
      - {name: udev, runlevel: sysinit}
      - {name: hwclock, runlevel: boot, state: absent}
"""

RETURN = r"""
results:
  description: One result per entry, in order.
  returned: always
  type: list
  elements: dict
  contains:
    name:
      description: The service.
      type: str
    runlevel:
      description: The runlevel.
      type: str
    state:
      description: The wanted state.
      type: str
    changed:
      description: Whether the entry changed the runlevel (would change it, in check mode).
      type: bool
    cmd:
      description: The rc-update command that ran (or would run in check mode); absent when nothing was to do.
      type: list
      elements: str
    rc:
      description: Its exit status.
      type: int
    stdout:
      description: Its standard output.
      type: str
    stderr:
      description: Its standard error.
      type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

# Where OpenRC keeps scripts and runlevels; tests point them into a temporary tree.
INIT_D = "/etc/init.d"
RUNLEVELS = "/etc/runlevels"


def in_runlevel(name, runlevel):
    """Whether the service is in the runlevel: its link exists (even dangling)."""
    return os.path.lexists(os.path.join(RUNLEVELS, runlevel, name))


def problems(entries):
    """What makes entries impossible, checked before anything runs."""
    found = []
    for e in entries:
        if e["state"] != "present":
            continue
        script = os.path.join(INIT_D, e["name"])
        if not os.path.isfile(script):
            found.append("service %s has no init script (%s is missing)" % (e["name"], script))
        if not os.path.isdir(os.path.join(RUNLEVELS, e["runlevel"])):
            found.append("runlevel %s does not exist (%s is missing)"
                         % (e["runlevel"], os.path.join(RUNLEVELS, e["runlevel"])))
    return found


def main():
    module = AnsibleModule(
        argument_spec=dict(
            services=dict(type="list", elements="dict", required=True, options=dict(
                name=dict(type="str", required=True, aliases=["service"]),
                runlevel=dict(type="str", default="default"),
                state=dict(type="str", default="present", choices=["present", "absent"]),
            )),
        ),
        supports_check_mode=True,
    )
    entries = module.params["services"]
    for e in entries:
        for key in ("name", "runlevel"):
            if not e[key] or "/" in e[key] or e[key] in (".", ".."):
                module.fail_json(msg="invalid %s %r" % (key, e[key]))
    missing = problems(entries)
    if missing:
        module.fail_json(msg="; ".join(missing), missing=missing)

    rc_update = module.get_bin_path("rc-update", required=True)
    results = []
    for e in entries:
        name, runlevel, state = e["name"], e["runlevel"], e["state"]
        result = dict(name=name, runlevel=runlevel, state=state, changed=False)
        results.append(result)
        before = in_runlevel(name, runlevel)
        if before == (state == "present"):
            continue
        argv = [rc_update, "add" if state == "present" else "del", name, runlevel]
        result["cmd"] = argv
        if module.check_mode:
            result["changed"] = True
            continue
        rc, out, err = module.run_command(argv)
        result.update(rc=rc, stdout=out, stderr=err, changed=in_runlevel(name, runlevel) != before)
        if rc != 0:
            module.fail_json(msg="rc-update %s %s %s failed (rc=%d)" % (argv[1], name, runlevel, rc),
                             cmd=argv, rc=rc, stdout=out, stderr=err, results=results,
                             changed=any(r["changed"] for r in results))
    module.exit_json(changed=any(r["changed"] for r in results), results=results)


if __name__ == "__main__":
    main()
