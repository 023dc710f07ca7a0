#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# The work is done by the action plugin of the same name; this file carries its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: hook_scripts
short_description: Source the scripts requested before or after a build hook
version_added: 0.1.0
description:
  - Runs the scripts that C(--sdir), C(--do) and C(-g) requested for one hook point, in the order given.
  - Reads C(gse_sdir) (the script directory on the build host) and C(gse_doscripts), a list of
    C({hook, when, script}) entries in execution order.
  - Each script is transferred through the task's connection and sourced by C(bash) there, so stage B hooks
    run their scripts inside the chroot. The environment carries C(GSE_HOOK), C(GSE_HOOK_WHEN),
    C(GSE_SCRIPT), C(GSE_BASE), C(GSE_BUILD_ID), C(CDISTDIR), C(CLOCALLG) and C(GSE_WORKDIR).
  - With C(gse_verbose) the scripts run under C(set -x).
  - A script that exits non-zero fails the task with its output.
options:
  hook:
    description: The hook name, as listed in C(man 5 gse).
    type: str
    required: true
  when:
    description: Run the scripts requested before (C(-hook)) or after (C(+hook)) the hook.
    type: str
    required: true
    choices: [before, after]
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Scripts requested before gcat
  gse.stateless.hook_scripts:
    hook: gcat
    when: before
  tags: [always]
"""

RETURN = r"""
scripts:
  description: One entry per script run, with its C(script), C(rc), C(stdout) and C(stderr).
  type: list
  elements: dict
  returned: always
"""
