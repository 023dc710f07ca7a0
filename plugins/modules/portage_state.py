#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A digest of what decides Portage's work: installed packages, @selected, configuration, repositories."""

from __future__ import annotations

DOCUMENTATION = r"""
module: portage_state
short_description: Digest of the installed packages, @selected, /etc/portage and the repositories
version_added: 0.1.0
description:
  - Reads, never writes. The digest covers every installed package with its merge counter (C(/var/db/pkg)), the
    selected atoms and sets (C(/var/lib/portage/world), C(world_sets)), the content of every file and the target of
    every symlink under C(/etc/portage) (C(make.conf), C(make.profile), C(package.*), C(repos.conf)) and each
    repository's sync mark (C(metadata/timestamp.chk) and friends, or the git HEAD; for a tree without either,
    the path, size and modification time of every file in it).
  - The build records it after part J has deselected the build-only tools and run depclean. When the digest
    of a later build equals the record, nothing that decides what emerge would do has changed since that
    depclean left the system, so the build-tool round trip (eix installed in part C, deselected and depcleaned
    in part J) would end where it started and is skipped.
options:
  root:
    description: The system whose state is read (C(/) inside the chroot).
    type: path
    default: /
attributes:
  check_mode:
    support: full
    description: Reads only; the same in check mode.
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Read Portage's state
  gse.stateless.portage_state:
  register: gse_portage_state
"""

RETURN = r"""
digest:
  description: SHA-256 (hex) over the state described above.
  type: str
  returned: always
packages:
  description: Number of installed packages.
  type: int
  returned: always
repositories:
  description: The repositories taken into account, by name.
  type: list
  elements: str
  returned: always
"""

import hashlib
import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gse.stateless.plugins.module_utils import portage_repos, portage_vdb


def tree(top, content):
    """{relative path: content digest or symlink target or (size, mtime)} of everything under ``top``."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(top):
        dirnames.sort()
        for name in dirnames + sorted(filenames):
            path = os.path.join(dirpath, name)
            rel = os.path.relpath(path, top)
            if os.path.islink(path):
                out[rel] = "-> " + os.readlink(path)
            elif os.path.isfile(path):
                if content:
                    with open(path, "rb") as f:
                        out[rel] = hashlib.sha256(f.read()).hexdigest()
                else:
                    st = os.stat(path)
                    out[rel] = [st.st_size, st.st_mtime_ns]
    return out


def state(module, root):
    def join(path):
        return os.path.join(root, path.lstrip("/"))

    repos = {}
    for name, location in sorted(portage_repos.repo_locations(module, root).items()):
        mark = portage_repos.fingerprint(location)
        repos[name] = list(mark) if mark is not None else tree(location, content=False)
    etc = join("/etc/portage")
    data = dict(
        installed=portage_vdb.installed(join(portage_vdb.VDB)),
        selected=portage_vdb.read_selected(join(portage_vdb.WORLD), join(portage_vdb.WORLD_SETS)),
        etc_portage=tree(etc, content=True),
        make_profile=os.readlink(os.path.join(etc, "make.profile")) if os.path.islink(
            os.path.join(etc, "make.profile")) else None,
        repositories=repos,
    )
    digest = hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()
    return dict(digest=digest, packages=len(data["installed"]), repositories=sorted(repos))


def main():
    module = AnsibleModule(argument_spec=dict(root=dict(type="path", default="/")), supports_check_mode=True)
    module.exit_json(changed=False, **state(module, module.params["root"]))


if __name__ == "__main__":
    main()
