#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Remove entries inside a build root without ever leaving it (part K, gclean/gminimal)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: root_clean
short_description: Remove entries inside a build root, never outside it
version_added: 0.1.0
description:
  - Removes the entries matching the given patterns inside a root directory (the build's chroot workdir);
    part K uses it for the cleanup of C(/var), C(/tmp), C(/usr/share) entries and the C(--build-minimal) list.
  - Refuses, and deletes nothing, when anything is mounted at or under the root
    (read from C(/proc/self/mountinfo)), when the root is C(/), a symlink, or not strictly below one of
    O(allowed_parents).
  - Symlinks inside the root are entries to remove, never directories to enter, so a link such as
    C(var/tmp -> /tmp) cannot make it touch the host. Directories on another filesystem are never entered.
options:
  root:
    description: The root directory (absolute).
    type: path
    required: true
  entries:
    description:
      - Patterns relative to the root (a leading C(/) is ignored). C(*), C(?) and C([...]) match within one
        path component and also match names starting with a dot. C(..) is refused.
    type: list
    elements: str
    required: true
  allowed_parents:
    description: The root must be strictly below one of these directories.
    type: list
    elements: path
    default: [/var/tmp/gse]
attributes:
  check_mode:
    support: full
    description: Lists what would be removed.
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Clean the chroot before packing
  gse.stateless.root_clean:
    root: "{{ gse_workdir }}"
    entries:
      - var/tmp/*
      - tmp/*
      - var/cache/distfiles/*
      - usr/share/doc
    allowed_parents: ["{{ gse_cdistdir }}"]
"""

RETURN = r"""
removed:
  description: Paths removed (or, in check mode, that would be removed), relative to the root with a leading C(/).
  type: list
  elements: str
  returned: always
  sample: [/var/tmp/portage, /usr/share/doc]
bytes:
  description: Bytes of the regular files removed (or that would be removed).
  type: int
  returned: always
  sample: 104857600
root:
  description: The resolved root.
  type: str
  returned: always
"""

import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gse.stateless.plugins.module_utils import safe_paths


def plan(root_fd, entries, root_dev):
    """Matched entries, deduplicated, outermost first; an entry under an already matched one is dropped."""
    matched = {}
    for pattern in entries:
        for rel, _st in safe_paths.find_entries(root_fd, pattern, root_dev):
            matched[rel] = True
    kept = []
    for rel in sorted(matched):
        if not any(rel.startswith(k + "/") for k in kept):
            kept.append(rel)
    return kept


def run(module):
    p = module.params
    try:
        root = safe_paths.check_root(p["root"], p["allowed_parents"])
        for pattern in p["entries"]:
            safe_paths.split_pattern(pattern)
    except (safe_paths.UnsafePath, OSError) as e:
        module.fail_json(msg="refusing to clean: %s" % e, root=p["root"])
    mounts = safe_paths.mounts_at_or_under(root)
    if mounts:
        module.fail_json(msg="refusing to clean %s: mounted at or under it: %s" % (root, ", ".join(mounts)),
                         root=root, mounts=mounts)

    root_fd = safe_paths.open_dir(root)
    try:
        root_dev = os.fstat(root_fd).st_dev
        targets = plan(root_fd, p["entries"], root_dev)
        total = 0
        for rel in targets:
            fd, name = safe_paths.parent_fd_of(root_fd, rel)
            try:
                if module.check_mode:
                    total += safe_paths.tree_size(fd, name, root_dev)
                else:
                    total += safe_paths.remove_entry(fd, name, root_dev)
            except safe_paths.UnsafePath as e:
                module.fail_json(msg="stopped cleaning %s at %s: %s" % (root, rel, e), root=root,
                                 removed=targets[:targets.index(rel)])
            finally:
                os.close(fd)
    finally:
        os.close(root_fd)
    module.exit_json(changed=bool(targets), removed=targets, bytes=total, root=root)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            entries=dict(type="list", elements="str", required=True),
            allowed_parents=dict(type="list", elements="path", default=["/var/tmp/gse"]),
        ),
        supports_check_mode=True,
    )
    run(module)


if __name__ == "__main__":
    main()
