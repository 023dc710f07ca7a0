#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: unpack
short_description: Extract a stage tarball into the build's work directory, atomically
version_added: 0.1.0
description:
  - Extracts a stage3 (or any root file system tarball) the way the Gentoo Handbook does
    (C(tar xpf --xattrs-include='*.*' --numeric-owner)) into O(dest), part A's C(gextr).
  - The tarball is extracted into C(<dest>.partial) and renamed into place only when C(tar) succeeded, so an
    interrupted extraction never looks like a finished one.
  - A marker beside O(dest) records what was extracted. When it matches O(src) (path, size, modification time and
    O(checksum)) nothing is done. Otherwise, or with O(force), the old tree is replaced.
  - The marker also records C(source_date_epoch), the newest modification time in the freshly extracted tree
    (the stage's own date, the same for every extraction of the same tarball). Part K clamps the times of the
    files the build wrote to it, so that the same inputs give the same image (SOURCE_DATE_EPOCH).
  - Replacing refuses while anything is mounted under O(dest) and only ever removes O(dest) itself, which must
    lie inside O(allowed_parent).
options:
  src:
    description: The tarball on the build host (any compression C(tar) recognises).
    type: path
    required: true
  dest:
    description: The directory to create, for example C($CDISTDIR/workdir-precomp).
    type: path
    required: true
  allowed_parent:
    description: O(dest) must be inside this directory; nothing outside it is ever removed.
    type: path
    required: true
  checksum:
    description: A digest of O(src) already verified by the caller; part of what makes an extraction current.
    type: str
    default: ''
  force:
    description: Extract again even when the marker says the tree is current (the part is enforced).
    type: bool
    default: false
notes:
  - Supports check mode.
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Extract the verified stage3
  gse.stateless.unpack:
    src: /var/tmp/gse/downloads/stage3-amd64-openrc-20261124T170000Z.tar.xz
    dest: /var/tmp/gse/workdir-precomp
    allowed_parent: /var/tmp/gse
    checksum: "{{ stage3.sha512 }}"
"""

RETURN = r"""
dest:
  description: The extracted tree.
  type: str
  returned: always
marker:
  description: What the tree was extracted from (C(src), C(size), C(mtime), C(checksum)) and its C(source_date_epoch).
  type: dict
  returned: always
"""

import json
import os
import shutil

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gse.stateless.plugins.module_utils.mountinfo import mounts_under


def identity(src, checksum):
    st = os.stat(src)
    return {"src": os.path.realpath(src), "size": st.st_size, "mtime": int(st.st_mtime), "checksum": checksum}


def newest_mtime(root):
    """The newest modification time (whole seconds) of any entry under ``root``, symlinks not followed."""
    newest = int(os.lstat(root).st_mtime)
    stack = [root]
    while stack:
        with os.scandir(stack.pop()) as it:
            for entry in it:
                newest = max(newest, int(entry.stat(follow_symlinks=False).st_mtime))
                if entry.is_dir(follow_symlinks=False):
                    stack.append(entry.path)
    return newest


def current(have, want):
    """The marker names the same tarball (what else it records does not decide)."""
    return bool(have) and all(have.get(k) == v for k, v in want.items())


def read_marker(path):
    try:
        with open(path, "r", encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, ValueError):
        return None


def remove_tree(module, path):
    """Remove a build tree, refusing while anything is mounted in it."""
    if not os.path.lexists(path):
        return
    busy = mounts_under(path)
    if busy:
        module.fail_json(msg="refusing to remove %s: still mounted: %s" % (path, ", ".join(busy)))
    if os.path.islink(path) or not os.path.isdir(path):
        os.unlink(path)
    else:
        # rmtree never follows symlinks, and no mount lies below (checked above).
        shutil.rmtree(path)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            allowed_parent=dict(type="path", required=True),
            checksum=dict(type="str", default=""),
            force=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    src = p["src"]
    dest = os.path.abspath(p["dest"]).rstrip("/")
    parent = os.path.realpath(p["allowed_parent"]).rstrip("/")
    if not os.path.isfile(src):
        module.fail_json(msg="tarball %s does not exist" % src)
    if os.path.realpath(os.path.dirname(dest)) != parent and not os.path.realpath(dest).startswith(parent + "/"):
        module.fail_json(msg="%s is not inside %s; refusing to extract there" % (dest, parent))
    if os.path.realpath(dest) in ("/", parent):
        module.fail_json(msg="refusing to extract over %s" % dest)

    marker_path = dest + ".extracted.json"
    want = identity(src, p["checksum"])
    have = read_marker(marker_path)
    if current(have, want) and os.path.isdir(dest) and not p["force"]:
        module.exit_json(changed=False, dest=dest, marker=have)
    if module.check_mode:
        module.exit_json(changed=True, dest=dest, marker=want)

    partial = dest + ".partial"
    remove_tree(module, partial)
    os.makedirs(partial, mode=0o755)
    argv = ["tar", "-x", "-p", "-f", src, "--xattrs-include=*.*", "--numeric-owner", "-C", partial]
    rc, out, err = module.run_command(argv)
    if rc != 0:
        remove_tree(module, partial)
        module.fail_json(msg="extracting %s failed" % src, cmd=argv, rc=rc, stdout=out, stderr=err)
    want["source_date_epoch"] = newest_mtime(partial)
    if os.path.exists(marker_path):
        os.unlink(marker_path)
    remove_tree(module, dest)
    os.rename(partial, dest)
    with open(marker_path + ".tmp", "w", encoding="utf-8") as fh:
        json.dump(want, fh, sort_keys=True)
    os.rename(marker_path + ".tmp", marker_path)
    module.exit_json(changed=True, dest=dest, marker=want, cmd=argv)


if __name__ == "__main__":
    main()
