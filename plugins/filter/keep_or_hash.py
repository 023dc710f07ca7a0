# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Hash a password for /etc/shadow, keeping the existing hash when it already matches."""

from __future__ import annotations

DOCUMENTATION = r"""
name: keep_or_hash
short_description: Hash a password with passlib, keeping a matching existing hash
version_added: 0.1.0
description:
  - Returns O(existing) when it is a crypt hash of the password (so rebuilding the same configuration
    changes nothing), otherwise a new SHA-512 crypt hash with a random salt, made with passlib.
positional: existing
options:
  _input:
    description: The plain password.
    type: str
    required: true
  existing:
    description: The current hash from /etc/shadow, or an empty string.
    type: str
    default: ''
"""

EXAMPLES = r"""
- name: Create a user with a hashed password
  ansible.builtin.user:
    name: student
    password: "{{ 'secret' | gse.stateless.keep_or_hash(current_hash) }}"
  no_log: true
"""

RETURN = r"""
_value:
  description: A C($6$) SHA-512 crypt hash.
  type: str
"""

from ansible.errors import AnsibleFilterError

try:
    from passlib.hash import sha512_crypt
    HAS_PASSLIB = True
except ImportError:  # pragma: no cover - passlib is a runtime dependency
    HAS_PASSLIB = False


def keep_or_hash(password, existing=""):
    if not HAS_PASSLIB:
        raise AnsibleFilterError("keep_or_hash needs passlib on the build host")
    if not isinstance(password, str) or not password:
        raise AnsibleFilterError("keep_or_hash needs a non-empty password")
    if existing and existing.startswith("$6$"):
        try:
            if sha512_crypt.verify(password, existing):
                return existing
        except ValueError:
            pass
    return sha512_crypt.using(rounds=656000).hash(password)


class FilterModule(object):
    def filters(self):
        return {"keep_or_hash": keep_or_hash}
