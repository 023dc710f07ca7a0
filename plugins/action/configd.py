# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check config.d against the settings' schema before the build touches anything.

An action plugin, because config.d is read on the controller (as
include_vars reads it): plain ansible-playbook and AWX runs get the same
checks as the gse command (plugins/module_utils/settings.py).
"""

from __future__ import annotations

from ansible.errors import AnsibleActionFail
from ansible.plugins.action import ActionBase

from ansible_collections.gse.stateless.plugins.module_utils import settings as _settings


class ActionModule(ActionBase):
    TRANSFERS_FILES = False
    _VALID_ARGS = frozenset(("dirs",))

    def run(self, tmp=None, task_vars=None):
        result = super().run(tmp, task_vars)
        dirs = self._task.args.get("dirs")
        if not isinstance(dirs, list) or not all(isinstance(d, str) for d in dirs):
            raise AnsibleActionFail("dirs must be a list of directories, not %s" % _settings.shown(dirs))
        try:
            found = _settings.read_dirs(dirs)
        except _settings.SettingsError as exc:
            result.update(failed=True, msg=str(exc))
            return result
        # Names only: the values may hold secrets (passwords in users.yml).
        result.update(changed=False, files=["%s/%s" % (d, name) for d, name, _data in found])
        return result
