#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Write several small files in one module call (one round trip through the chroot connection)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: write_files
short_description: Write several small text files at once, each only when it differs
version_added: 0.1.0
description:
  - Each file is replaced atomically when its content differs, and given its mode when that differs; the missing
    directories above it are created with mode 0755. A file that already holds its content and mode is left alone.
  - One call instead of a loop of M(ansible.builtin.copy) tasks, whose every item costs several round trips
    through the chroot connection (part C writes the GSE profile repository with it).
options:
  files:
    description: The files to write.
    type: list
    elements: dict
    required: true
    suboptions:
      path:
        description: Absolute path of the file.
        type: path
        required: true
      content:
        description: The text the file holds.
        type: str
        required: true
      mode:
        description: The file's mode, as octal text.
        type: str
        default: "0644"
attributes:
  check_mode:
    support: full
    description: Reports which files would change without touching them.
  diff_mode:
    support: none
    description: The files' contents are not shown.
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Write the GSE profile repository's files
  gse.stateless.write_files:
    files:
      - path: /var/db/repos/gse/profiles/repo_name
        content: "gse\n"
      - path: /var/db/repos/gse/profiles/gse/eapi
        content: "8\n"
"""

RETURN = r"""
changed_files:
  description: The files written (or that would be, in check mode), in the order given.
  type: list
  elements: str
  returned: always
"""

import os
import stat

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gse.stateless.plugins.module_utils import managed_file


def parse_mode(module, text, path):
    try:
        mode = int(text, 8)
    except (TypeError, ValueError):
        mode = -1
    if not 0 <= mode <= 0o7777:
        module.fail_json(msg="%s: mode %r is not an octal file mode" % (path, text))
    return mode


def make_parents(module, path):
    """Create the missing directories above ``path`` (mode 0755).  Returns whether any was missing."""
    parent = os.path.dirname(path)
    missing = []
    while parent and not os.path.isdir(parent):
        missing.append(parent)
        parent = os.path.dirname(parent)
    if not module.check_mode:
        for d in reversed(missing):
            os.mkdir(d, 0o755)
            os.chmod(d, 0o755)  # not narrowed by the umask
    return bool(missing)


def write_one(module, path, content, mode):
    changed = make_parents(module, path)
    if os.path.islink(path) or (os.path.lexists(path) and not os.path.isfile(path)):
        module.fail_json(msg="%s exists and is not a regular file" % path)
    changed = managed_file.write(module, path, content, mode) or changed
    if os.path.exists(path) and stat.S_IMODE(os.stat(path).st_mode) != mode:
        if not module.check_mode:
            os.chmod(path, mode)
        changed = True
    return changed


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type="list", elements="dict", required=True, options=dict(
                path=dict(type="path", required=True),
                content=dict(type="str", required=True),
                mode=dict(type="str", default="0644"),
            )),
        ),
        supports_check_mode=True,
    )
    written = []
    for entry in module.params["files"]:
        path = entry["path"]
        if not os.path.isabs(path):
            module.fail_json(msg="%s is not an absolute path" % path)
        try:
            if write_one(module, path, entry["content"], parse_mode(module, entry["mode"], path)):
                written.append(path)
        except OSError as e:
            module.fail_json(msg="writing %s failed: %s" % (path, e.strerror), changed=bool(written),
                             changed_files=written)
    module.exit_json(changed=bool(written), changed_files=written)


if __name__ == "__main__":
    main()
