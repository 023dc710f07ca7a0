#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Set, extend and remove variables in /etc/portage/make.conf."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: make_conf
short_description: Set, append to and remove variables in make.conf
description:
  - Edits the bash-style C(VAR="value") assignments of C(/etc/portage/make.conf). Comments, other lines and
    assignments that are not named keep their text; a changed assignment is rewritten as C(VAR="value") in
    place (the last one when a variable is assigned several times), a new one is added at the end.
  - Values are written in double quotes with C(\), C(") and backquotes escaped; C($) is kept so that
    C(${COMMON_FLAGS}) still refers to another variable.
  - Nothing is written when every variable already has its value.
options:
  path:
    description: The file. A C(make.conf) directory is not supported; name a file inside it.
    type: path
    default: /etc/portage/make.conf
  variables:
    description:
      - Variables to set. A list value is joined with spaces; a null value removes the variable.
    type: dict
    default: {}
  append:
    description:
      - Words to add to a variable's value, each only when it is not there yet (for example to C(FEATURES));
        a string is split on whitespace. A variable that is not set is set to the words.
    type: dict
    default: {}
  discard:
    description:
      - Words to take out of a variable's value (for example C(distcc) out of C(FEATURES) when it is turned off);
        a string is split on whitespace. Applied after O(append).
    type: dict
    default: {}
  remove:
    description: Variables to remove (every assignment of them).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Reports whether C(make.conf) would change without writing it.
  diff_mode:
    support: full
    description: Shows the old and new C(make.conf).
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- gse.stateless.make_conf:
    variables:
      COMMON_FLAGS: -O2 -pipe
      CFLAGS: "${COMMON_FLAGS}"
      MAKEOPTS: -j4
      USE: [X, alsa, -systemd]
      GENTOO_MIRRORS: null
    append:
      FEATURES: [ccache, parallel-fetch]

- name: Turn distcc off again
  gse.stateless.make_conf:
    discard:
      FEATURES: distcc
"""

RETURN = r"""
variables:
  description: The values of every variable the file assigns, after the change.
  returned: always
  type: dict
changed_variables:
  description: The variables whose value changed (would change, in check mode), or that were removed.
  returned: always
  type: list
  elements: str
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gse.stateless.plugins.module_utils import managed_file
from ansible_collections.gse.stateless.plugins.module_utils import shellvars

_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def as_text(value):
    if isinstance(value, (list, tuple)):
        return " ".join(as_text(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)


def as_words(value):
    if isinstance(value, (list, tuple)):
        return [w for v in value for w in as_words(v)]
    return as_text(value).split()


def main():
    module = AnsibleModule(
        argument_spec=dict(
            path=dict(type="path", default="/etc/portage/make.conf"),
            variables=dict(type="dict", default={}),
            append=dict(type="dict", default={}),
            discard=dict(type="dict", default={}),
            remove=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    path = p["path"]
    for name in list(p["variables"]) + list(p["append"]) + list(p["discard"]) + p["remove"]:
        if not _NAME.match(name):
            module.fail_json(msg="%r is not a variable name" % name)
    if os.path.isdir(path):
        module.fail_json(msg="%s is a directory: name a file inside it" % path)

    before = managed_file.read(path)
    text = before or ""
    try:
        old = shellvars.variables(text)
        for name, value in p["variables"].items():
            text = shellvars.remove(text, name) if value is None else shellvars.set_value(text, name, as_text(value))
        for name, value in p["append"].items():
            text = shellvars.append_tokens(text, name, as_words(value))
        for name, value in p["discard"].items():
            text = shellvars.discard_tokens(text, name, as_words(value))
        for name in p["remove"]:
            text = shellvars.remove(text, name)
        new = shellvars.variables(text)
    except shellvars.ParseError as e:
        module.fail_json(msg="cannot read %s: %s" % (path, e))

    changed_vars = sorted(n for n in set(old) | set(new) if old.get(n) != new.get(n))
    changed = False
    if text != (before or "") or (before is None and text):
        changed = managed_file.write(module, path, text)
    result = dict(changed=changed, variables=new, changed_variables=changed_vars)
    if module._diff:
        result["diff"] = dict(before_header=path, after_header=path, before=before or "", after=text)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
