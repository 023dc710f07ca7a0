# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Filters that let roles ask the hook table whether a hook is enforced."""

from __future__ import annotations

DOCUMENTATION = r"""
name: enforced
short_description: Whether a build hook is enforced
version_added: 0.1.0
description:
  - Returns true when the hook, or the part it belongs to, is in the enforce list and not in the lawful-good list.
  - C(--lawful-good) wins over C(--enforce), as the concept document says.
positional: hook, lawful_good
options:
  _input:
    description: The enforce list (C(gse_enforce)).
    type: list
    elements: str
    required: true
  hook:
    description: The hook to ask about, for example C(gcat).
    type: str
    required: true
  lawful_good:
    description: The lawful-good list (C(gse_lawful_good)).
    type: list
    elements: str
    default: []
"""

EXAMPLES = r"""
- name: Purge catalyst's autoresume points when gcat is enforced
  ansible.builtin.debug:
    msg: purge
  when: gse_enforce | gse.stateless.enforced('gcat', gse_lawful_good)
"""

RETURN = r"""
_value:
  description: True when the hook is enforced.
  type: bool
"""

from ansible.errors import AnsibleFilterError

from ansible_collections.gse.stateless.plugins.module_utils import hooks as _hooks


def enforced(enforce, hook, lawful_good=None):
    if hook not in _hooks.ALL_HOOKS:
        raise AnsibleFilterError("unknown hook %r" % hook)
    try:
        return _hooks.is_enforced(hook, enforce or [], lawful_good or [])
    except ValueError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule(object):
    def filters(self):
        return {"enforced": enforced}
