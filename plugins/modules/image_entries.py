#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check that an image tarball holds given paths, followed through the image's own symlinks (verify)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: image_entries
short_description: Check that an image tarball holds given paths, through the image's own symlinks
version_added: 0.2.0
description:
  - Lists the tarball once (C(tar --list --verbose --numeric-owner --quoting-style=c --file TARBALL); tar
    recognises the compression) and resolves every path of O(entries) as the booted system would, each
    component looked up among the tarball's members, a symbolic link followed within the image (an absolute
    target from the image's root, a relative one from the link's directory, C(..) never above the root), at
    most 40 links per path.
  - So C(/sbin/init) is found in an image whose C(/sbin) is a link to C(usr/bin) (merged /usr), where the
    tarball has no member C(./sbin/init), and C(/etc/os-release) is found only when the file its link names is
    in the image too. Nothing outside the tarball is looked at.
  - Fails, naming every path that is missing and where its resolution ended, when one is missing; fails with
    tar's command line, exit code and output when tar cannot list the tarball. Reads only; never changes
    anything.
options:
  tarball:
    description: The image tarball (C(image.tar.zst) or C(image.tar.xz)).
    type: path
    required: true
  entries:
    description: Paths the image must hold, relative to its root (a leading C(/) or C(./) is ignored).
    type: list
    elements: str
    required: true
  tar:
    description: The tar program.
    type: path
    default: tar
attributes:
  check_mode:
    support: full
    description: Runs as without check mode; it only reads.
author:
  - GSE contributors (!UNKNOWN)
"""
EXAMPLES = r"""
- name: Check that the image holds its init and os-release
  gse.stateless.image_entries:
    tarball: "{{ gse_image_dir }}/image.tar.zst"
    entries: [/sbin/init, /etc/os-release]
"""
RETURN = r"""
entries:
  description: Every path asked for and the tarball member it resolved to (C(null) when missing).
  type: dict
  returned: always
  sample: {"/sbin/init": "usr/bin/init", "/etc/os-release": "usr/lib/os-release"}
missing:
  description: The paths that are not in the image, each with where its resolution ended.
  type: list
  elements: str
  returned: always
members:
  description: Number of members the tarball lists.
  type: int
  returned: always
"""

import codecs
import re

from ansible.module_utils.basic import AnsibleModule

# Linux's bound on links followed in one path lookup.
MAX_LINKS = 40
# A line of `tar --list --verbose --quoting-style=c`: mode, owner/group,
# size (or major,minor), date, time, the quoted name, then " -> target"
# (symlink) or " link to target" (hard link).
_LINE = re.compile(r'^(\S)\S*\s+\S+\s+\S+(?:,\s*\S+)?\s+\S+\s+\S+\s+"((?:[^"\\]|\\.)*)"(?:\s+(->|link to)\s+"((?:[^"\\]|\\.)*)")?$')


def unquote(text):
    """tar's C quoting (backslash escapes, octal bytes) back to the name."""
    return codecs.escape_decode(text.encode("utf-8", "surrogateescape"))[0].decode("utf-8", "surrogateescape")


def norm(name):
    """A member or entry name as components below the root: no '', '.', leading './' or '/'."""
    return [c for c in name.split("/") if c not in ("", ".")]


def read_members(lines):
    """{'a/b': (type, symlink target or None)} of tar's verbose listing; directories implied by
    deeper members are added as 'd'."""
    members = {}
    for line in lines:
        m = _LINE.match(line)
        if not m:
            raise ValueError("unreadable line of the listing: %r" % line[:200])
        kind, name, how, target = m.groups()
        key = "/".join(norm(unquote(name)))
        if not key:
            continue
        members[key] = (kind, unquote(target) if how == "->" else None)
        parts = key.split("/")
        for i in range(1, len(parts)):
            members.setdefault("/".join(parts[:i]), ("d", None))
    return members


def resolve(members, entry):
    """(member, None) when entry is in the image, else (None, where the lookup ended)."""
    todo = norm(entry)
    cur = []
    links = 0
    while todo:
        comp = todo.pop(0)
        if comp == "..":
            cur = cur[:-1]
            continue
        path = "/".join(cur + [comp])
        if path not in members:
            return None, "/%s is not in the image" % path
        kind, target = members[path]
        if kind == "l":
            links += 1
            if links > MAX_LINKS:
                return None, "more than %d symbolic links (a loop?) at /%s" % (MAX_LINKS, path)
            todo = norm(target) + todo
            cur = [] if target.startswith("/") else cur
            continue
        if todo and kind != "d":
            return None, "/%s is not a directory" % path
        cur.append(comp)
    return "/".join(cur) or ".", None


def main():
    module = AnsibleModule(
        argument_spec=dict(
            tarball=dict(type="path", required=True),
            entries=dict(type="list", elements="str", required=True),
            tar=dict(type="path", default="tar"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    cmd = [p["tar"], "--list", "--verbose", "--numeric-owner", "--quoting-style=c", "--file", p["tarball"]]
    rc, out, err = module.run_command(cmd, environ_update={"LC_ALL": "C"})
    if rc != 0:
        module.fail_json(msg="tar cannot list %s" % p["tarball"], cmd=cmd, rc=rc, stdout=out[-4000:], stderr=err)
    try:
        members = read_members(out.splitlines())
    except ValueError as e:
        module.fail_json(msg=str(e), cmd=cmd, rc=rc, stderr=err)
    entries, missing = {}, []
    for entry in p["entries"]:
        found, why = resolve(members, entry)
        entries[entry] = found
        if found is None:
            missing.append("%s: %s" % (entry, why))
    result = dict(changed=False, entries=entries, missing=missing, members=len(members))
    if missing:
        module.fail_json(msg="the image lacks %s" % "; ".join(missing), **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
