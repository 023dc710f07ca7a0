#!/usr/bin/python
"""Test double of an emerge that fails the way Portage does (observed on the fixture).

A failed ``emerge`` leaves a resume list; ``--resume`` fails again while the
head still fails (here: until the file ``fixed`` exists in the workdir, which a
person creates from the shell); ``--resume --skipfirst`` drops the head and
finishes.  The result carries the keys the real emerge module returns.

With ``live_log`` it appends its progress to that file (a chroot path, under
the workdir here) while it runs, as the real module does, and waits between
two lines until ``live_ack`` exists: a test creates it once it has seen the
first line printed, so the order of events is checked without timing.
"""
import os
import time

from ansible.module_utils.basic import AnsibleModule

RESUME = ["app-misc/broken-1", "app-misc/hello-1"]


def progress(params):
    path = os.path.join(params["workdir"], params["live_log"].lstrip("/"))
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "a", encoding="utf-8") as log:
        log.write(">>> Emerging (1 of 2) app-portage/eix-1::gse-test\n")
        log.flush()
        # Bounded: a gse that never prints the line lets the test fail on order, not hang.
        for _ in range(1200):
            if not params["live_ack"] or os.path.exists(params["live_ack"]):
                break
            time.sleep(0.1)
        log.write(">>> Emerging (2 of 2) app-misc/hello-1::gse-test\n")


def main():
    module = AnsibleModule(argument_spec=dict(workdir=dict(type="path", required=True),
                                              mode=dict(type="str", default=""),
                                              live_log=dict(type="str", default=""),
                                              live_ack=dict(type="path", default="")))
    mode = module.params["mode"]
    if module.params["live_log"]:
        progress(module.params)
    if mode == "live":
        module.exit_json(changed=True, cmd=["emerge", "app-portage/eix"], rc=0)
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
                     # A list of lines, as the emerge module returns it.
                     log_tail=["make: *** [all] Error 1", " * ERROR: compile phase failed"])


if __name__ == "__main__":
    main()
