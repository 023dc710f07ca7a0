# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a module's main() in-process with its commands recorded instead of run.

``run_command`` is replaced by a recorder that answers from a ``respond``
callable (argv -> (rc, stdout, stderr)) and may change files the way the real
command would; the tests then assert the exact argv lists.  Commands whose
output is copied to a live log (module_utils.live_command.run_logged) go
through the same recorder; their call records ``live_log`` as well.
"""

from __future__ import annotations

from unittest import mock

from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gse.stateless.plugins.module_utils import live_command


class ModuleExit(Exception):
    def __init__(self, result, failed):
        super().__init__(result)
        self.result = result
        self.failed = failed


class Run(object):
    def __init__(self, result, failed, calls):
        self.result = result
        self.failed = failed
        self.calls = calls          # [(argv, kwargs)]

    @property
    def argvs(self):
        return [argv for argv, _kw in self.calls]


def run_module(main, args, respond=None, check_mode=False, diff=False, missing=()):
    """Run ``main`` with ``args``; tools named in ``missing`` are not installed."""
    calls = []

    def run_command(self, argv, *a, **kw):
        calls.append((list(argv), kw))
        return respond(list(argv)) if respond else (0, "", "")

    def run_logged(module, argv, log_path, environ_update=None):
        return run_command(module, argv, environ_update=environ_update, live_log=log_path)

    def get_bin_path(self, name, required=False, opt_dirs=None):
        if name in missing:
            if required:
                self.fail_json(msg="Failed to find required executable %s" % name)
            return None
        return "/usr/bin/" + name

    def exit_json(self, **kw):
        raise ModuleExit(kw, False)

    def fail_json(self, msg, **kw):
        kw["msg"] = msg
        raise ModuleExit(kw, True)

    full = dict(args)
    full["_ansible_check_mode"] = check_mode
    full["_ansible_diff"] = diff
    with patch_module_args(full), \
            mock.patch.object(basic.AnsibleModule, "run_command", run_command), \
            mock.patch.object(live_command, "run_logged", run_logged), \
            mock.patch.object(basic.AnsibleModule, "get_bin_path", get_bin_path), \
            mock.patch.object(basic.AnsibleModule, "exit_json", exit_json), \
            mock.patch.object(basic.AnsibleModule, "fail_json", fail_json):
        try:
            main()
        except ModuleExit as e:
            return Run(e.result, e.failed, calls)
    raise AssertionError("the module returned without exit_json or fail_json")
