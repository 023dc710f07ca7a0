# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filter that lets roles ask the hook table whether lawful-good skips a hook.

--skip-tags cannot be set by everything that starts a build (an AWX survey
answer is an extra variable only), so the roles read the lawful-good list
too: a hook it names is not run whether or not the tags skip it.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: lawful_good
short_description: Whether lawful-good skips a build hook
version_added: 0.1.0
description:
  - Returns true when the hook, or the part it belongs to, is in the lawful-good list.
  - The roles' generated C(tasks/main.yml) include a sub-part's work only when this is false, so that a
    lawful-good list given as a variable skips the same work as C(--skip-tags).
positional: hook
options:
  _input:
    description: The lawful-good list (C(gse_lawful_good)).
    type: list
    elements: str
    required: true
  hook:
    description: The hook to ask about, for example C(gker).
    type: str
    required: true
"""

EXAMPLES = r"""
- name: Build the kernel unless lawful-good skips it
  ansible.builtin.debug:
    msg: kernel
  when: not (gse_lawful_good | gse.stateless.lawful_good('gker'))
"""

RETURN = r"""
_value:
  description: True when lawful-good skips the hook.
  type: bool
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.gse.stateless.plugins.module_utils import hooks as _hooks


def lawful_good(skipped, hook):
    if hook not in _hooks.ALL_HOOKS:
        raise AnsibleFilterError("unknown hook %r" % hook)
    try:
        return _hooks.is_skipped(hook, skipped or [])
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"lawful_good": lawful_good}
