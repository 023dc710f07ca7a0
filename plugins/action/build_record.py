# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Digest the settings and the files a build reads, then run the build_record module with that digest.

An action plugin, because the settings are the run's variables (config.d,
the gse command's extra vars, the roles' defaults), which only the
controller sees, and the files (the collection, config.d, the --sdir
scripts, the inject-custom files, the images) are read there too.  Which
settings count comes from the settings' schema (the roles' argument specs)
through ``build_inputs.covered_settings``: nothing here lists them.
"""

from __future__ import annotations

import os

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.gse.stateless.plugins.module_utils import build_inputs
from ansible_collections.gse.stateless.plugins.module_utils import hooks as _hooks
from ansible_collections.gse.stateless.plugins.module_utils import settings as _settings

COLLECTION_DIR = os.path.dirname(_settings.ROLES_DIR)


def _by_content(value):
    """``value`` with every absolute path of an existing file replaced by the digest of what it holds:
    a file a setting names counts by its content, not by its place (a --time-warp replay lays the
    inject-custom files out elsewhere)."""
    if isinstance(value, str):
        if os.path.isabs(value) and os.path.isfile(value):
            return "file:" + build_inputs.content_digest(value)
        return value
    if isinstance(value, dict):
        return {k: _by_content(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_by_content(v) for v in value]
    return value


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("root", "state", "components", "trees", "sync_trees", "synced", "recorded", "build"))

    def _value(self, task_vars, name, setting):
        """A setting's value as the run sees it; a role default not visible in this play is the schema's."""
        if name not in task_vars:
            return {"default": setting.default}
        try:
            return _by_content(self._templar.template(task_vars[name]))
        except Exception:  # an expression of a later play: its text is what the run was given
            return {"unresolved": repr(task_vars[name])}

    def _controller_inputs(self, task_vars):
        """{component: digest} of what the controller reads: each setting (the secret ones together, so that no
        record holds the digest of one password), the run's tags, each file input."""
        schema = _settings.load_schema()
        components, secrets = {}, {}
        for name in build_inputs.covered_settings(schema, _settings.ROLES_DIR):
            value = self._value(task_vars, name, schema[name])
            if schema[name].no_log:
                secrets[name] = value
            else:
                components["setting:" + name] = build_inputs.settings_digest(value)
        components["settings with secrets"] = build_inputs.settings_digest(secrets)
        components["run tags"] = build_inputs.settings_digest(sorted(task_vars.get("ansible_run_tags") or []))
        components["skip tags"] = build_inputs.settings_digest(sorted(task_vars.get("ansible_skip_tags") or []))

        def var(name, default=None):
            return self._templar.template(task_vars[name]) if name in task_vars else default

        files = build_inputs.source_paths(COLLECTION_DIR)
        for n, d in enumerate(var("gse_configd_dirs", []) or []):
            files["configd:%d" % n] = d
        files["sdir"] = var("gse_sdir", "") or ""
        for n, entry in enumerate(var("gse_inject_custom", []) or []):
            if isinstance(entry, dict) and isinstance(entry.get("src"), str):
                files["inject:%d" % n] = entry["src"]
        for label, path in files.items():
            components["file:" + label] = build_inputs.content_digest(path)
        return components

    def _run_all(self, task_vars):
        """Why parts B to J run whatever the record says, or ""."""
        enforce = self._templar.template(task_vars.get("gse_enforce") or [])
        lawful_good = self._templar.template(task_vars.get("gse_lawful_good") or [])
        forced = [h for part in build_inputs.INPUT_PARTS for h in (part,) + tuple(s.hook for s in _hooks.part(part).subs)
                  if _hooks.is_enforced(h, enforce or [], lawful_good or [])]
        if forced:
            return "enforced: %s" % ", ".join(forced)
        return ""

    def _sync_method(self, task_vars):
        return self._templar.template(task_vars.get("gse_sync_method",
                                                    _settings.load_schema()["gse_sync_method"].default))

    def run(self, tmp=None, task_vars=None):
        task_vars = task_vars or {}
        result = super().run(tmp, task_vars)
        args = dict(self._task.args)
        state = args.get("state", "check")
        if state not in ("check", "synced", "present"):
            raise AnsibleActionFail("state must be check, synced or present, not %s" % _settings.shown(state))
        if state == "check":
            args["components"] = self._controller_inputs(task_vars)
            args["run_all"] = self._run_all(task_vars)
            # What a sync brings is not known before it ran: the synced trees' listings are decided after it.
            if self._sync_method(task_vars) != "none":
                args["synced"] = args.get("sync_trees") or []
        elif not args.get("components"):
            raise AnsibleActionFail("state=%s needs the components the check returned" % state)
        elif state == "present" and self._sync_method(task_vars) != "none":
            # The listing the next build's sync starts from: the repositories as this build leaves them.
            args["synced"] = args.get("sync_trees") or []
        result.update(self._execute_module(module_name="gse.stateless.build_record", module_args=args,
                                           task_vars=task_vars))
        return result
