# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Source the scripts requested for one hook point (``--sdir``/``--do``/``-g``).

An action plugin, because the scripts live on the build host while stage B
hooks must run them inside the chroot: each script is transferred through the
task's connection and sourced there by bash, in the order it was requested.
"""

from __future__ import annotations

import os
import shlex

from ansible.errors import AnsibleActionFail
from ansible.module_utils.common.text.converters import to_text
from ansible.plugins.action import ActionBase

from ansible_collections.gse.stateless.plugins.module_utils import hooks as _hooks

# Environment exported to every hook script.
_ENV_FROM_VARS = (
    ("GSE_BASE", "gse_base"),
    ("GSE_BUILD_ID", "gse_build_id"),
    ("CDISTDIR", "gse_cdistdir"),
    ("CLOCALLG", "gse_clocallg"),
    ("GSE_WORKDIR", "gse_workdir"),
)


class ActionModule(ActionBase):
    TRANSFERS_FILES = True
    _VALID_ARGS = frozenset(("hook", "when"))

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        hook = self._task.args.get("hook")
        when = self._task.args.get("when")
        if hook not in _hooks.ALL_HOOKS:
            raise AnsibleActionFail("unknown hook %r" % (hook,))
        if when not in ("before", "after"):
            raise AnsibleActionFail("when must be 'before' or 'after', not %r" % (when,))

        requests = [r for r in (task_vars.get("gse_doscripts") or []) if r.get("hook") == hook and r.get("when") == when]
        result.update(changed=False, scripts=[], hook=hook, when=when)
        if not requests:
            result["skipped"] = True
            result["skip_reason"] = "no scripts requested %s %s" % (when, hook)
            return result

        sdir = self._templar.template(task_vars.get("gse_sdir") or "")
        if not sdir or not os.path.isdir(sdir):
            raise AnsibleActionFail("the script directory %r (--sdir) does not exist" % sdir)
        verbose = bool(task_vars.get("gse_verbose"))
        env = {"GSE_HOOK": hook, "GSE_HOOK_WHEN": when}
        for name, var in _ENV_FROM_VARS:
            if var in task_vars:
                env[name] = to_text(self._templar.template(task_vars[var]))

        tmpdir = self._connection._shell.tmpdir or self._make_tmp_path()
        outputs = []
        try:
            for n, req in enumerate(requests):
                src = os.path.join(sdir, req["script"])
                if not os.path.isfile(src):
                    raise AnsibleActionFail("script %s requested at %s%s does not exist" % (src, "-" if when == "before" else "+", hook))
                remote = self._connection._shell.join_path(tmpdir, "gse-hook-%02d-%s" % (n, os.path.basename(src)))
                self._transfer_file(src, remote)
                self._fixup_perms2((tmpdir, remote))
                exports = " ".join("%s=%s" % (k, shlex.quote(v)) for k, v in sorted(env.items()))
                body = ("set -x; " if verbose else "") + ". " + shlex.quote(remote)
                cmd = "env %s GSE_SCRIPT=%s bash -c %s" % (exports, shlex.quote(req["script"]), shlex.quote(body))
                res = self._low_level_execute_command(cmd)
                outputs.append({"script": req["script"], "rc": res["rc"], "stdout": res["stdout"], "stderr": res["stderr"]})
                result["changed"] = True
                if res["rc"] != 0:
                    result.update(failed=True, rc=res["rc"], stdout=res["stdout"], stderr=res["stderr"], cmd=cmd,
                                  msg="script %s at %s%s failed with exit code %d" % (req["script"], "-" if when == "before" else "+", hook, res["rc"]))
                    break
        finally:
            self._remove_tmp_path(tmpdir)
        result["scripts"] = outputs
        return result
