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
    changes nothing), otherwise a new SHA-512 crypt hash made with passlib.
  - The new hash's salt is random, or, with O(user), derived from the password, O(user) and O(site)
    (HMAC-SHA256 keyed by the password), so that two builds of the same inputs in fresh work directories write
    the same C(/etc/shadow) (a reproducible image). Such a salt still differs between users and between
    sites, so a table made for one user of one site is of no use for another; as with a random salt, anyone
    who has the image can try guesses against that one hash.
positional: existing, user, site
options:
  _input:
    description: The plain password.
    type: str
    required: true
  existing:
    description: The current hash from /etc/shadow, or an empty string.
    type: str
    default: ''
  user:
    description: The user the password is for; with it the salt is derived instead of random.
    type: str
  site:
    description: What sets this site's salts apart from other sites' (part G passes the signing key).
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

import hashlib
import hmac

from ansible.errors import AnsibleFilterError

try:
    from passlib.hash import sha512_crypt
    HAS_PASSLIB = True
except ImportError:  # pragma: no cover - passlib is a runtime dependency
    HAS_PASSLIB = False


# crypt(3)'s salt alphabet.
SALT_CHARS = "./0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"


def derived_salt(password, user, site=""):
    """16 salt characters from HMAC-SHA256(password, "gse-shadow-salt\0<site>\0<user>")."""
    mac = hmac.new(password.encode("utf-8"), b"gse-shadow-salt\0" + str(site).encode("utf-8") + b"\0"
                   + str(user).encode("utf-8"), hashlib.sha256).digest()
    return "".join(SALT_CHARS[b % 64] for b in mac[:16])


def keep_or_hash(password, existing="", user=None, site=""):
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
    if user is None:
        return sha512_crypt.using(rounds=656000).hash(password)
    return sha512_crypt.using(rounds=656000, salt=derived_salt(password, user, site)).hash(password)


class FilterModule(object):
    def filters(self):
        return {"keep_or_hash": keep_or_hash}
