#!/usr/bin/python
"""Test double of an emerge that fails the way Portage does (observed on the fixture).

A failed ``emerge`` leaves a resume list; ``--resume`` fails again while the
head still fails (here: until the file ``fixed`` exists in the workdir, which a
person creates from the shell); ``--resume --skipfirst`` drops the head and
finishes.  The result carries the keys the real emerge module returns.
"""
import os

from ansible.module_utils.basic import AnsibleModule

RESUME = ["app-misc/broken-1", "app-misc/hello-1"]


def main():
    module = AnsibleModule(argument_spec=dict(workdir=dict(type="path", required=True),
                                              mode=dict(type="str", default="")))
    mode = module.params["mode"]
    fixed = os.path.exists(os.path.join(module.params["workdir"], "fixed"))
    argv = ["emerge", "--resume"] + (["--skipfirst"] if mode == "skipfirst" else []) if mode else \
        ["emerge", "app-misc/broken", "app-misc/hello"]
    if mode == "skipfirst" or (mode == "resume" and fixed):
        module.exit_json(changed=True, cmd=argv, rc=0)
    module.fail_json(msg="emerge failed: app-misc/broken-1", cmd=argv, rc=1,
                     stdout=">>> Emerging (1 of 2) app-misc/broken-1::gse-test",
                     stderr=" * ERROR: app-misc/broken-1::gse-test failed (compile phase):\n *   die",
                     failed_package="app-misc/broken-1", resume=RESUME,
                     log="/var/log/portage/app-misc:broken-1:20261125.log",
                     log_tail="make: *** [all] Error 1\n * ERROR: compile phase failed")


if __name__ == "__main__":
    main()
