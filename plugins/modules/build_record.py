#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Compare a build's inputs and root with what the last completed build recorded, or record them."""

from __future__ import annotations

DOCUMENTATION = r"""
module: build_record
short_description: Whether a rebuild's inputs and root are those of the last completed build
version_added: 0.1.0
description:
  - The record C(<root>.built.json) holds the digest of the inputs of parts A to J (settings, sources, config.d,
    scripts, injected files, images, the Portage repositories the chroot mounts, the extracted stage3; see
    C(plugins/module_utils/build_inputs.py)) and the digest of the root (C(find -printf) over every entry, as
    the pack module takes it), written when a build completed its archive.
  - With O(state=check) (part A, after the stage3 is extracted), the inputs and the root are digested again. When
    both equal the record, RV(unchanged) is true and parts B to J are skipped. Otherwise the record is removed
    before anything changes the root, so a build that fails or is interrupted leaves no record saying "built".
  - With O(state=present), at the end of part K (the tarball, its index and C(SHA512SUMS) are written), the record
    is written atomically (mode 0600) with the O(components) the check returned.
  - The action plugin of the same name digests the settings and the files on the controller and passes those
    digests as O(components); the module adds the repositories' listing and the stage3 marker read on the build
    host.
options:
  root:
    description: The build's work directory.
    type: path
    required: true
  state:
    description: V(check) compares and removes a stale record; V(present) writes the record.
    type: str
    choices: [check, present]
    default: check
  components:
    description:
      - With V(check), the digests of the inputs read on the controller, by name (the action plugin sets them).
      - With V(present), all the digests the check returned (RV(components)).
    type: dict
    required: true
  trees:
    description: Directories the chroot mounts (the Portage repositories), whose listing is an input.
    type: list
    elements: path
    default: []
  run_all:
    description:
      - Why the parts run whatever the record says (an enforced hook of parts A to J, a Portage sync), or empty.
      - When given, the record is removed and RV(unchanged) is false with this RV(reason). The action plugin sets it.
    type: str
    default: ""
  build:
    description: With V(present), the build id the record names.
    type: str
    default: ""
attributes:
  check_mode:
    support: full
    description: Compares without removing, and writes nothing.
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Compare the build's inputs and root with the last completed build
  gse.stateless.build_record:
    root: /var/tmp/gse/workdir-precomp
    trees: [/var/db/repos]
  register: gse_built

- name: Record the completed build
  gse.stateless.build_record:
    root: /var/tmp/gse/workdir-precomp
    state: present
    components: "{{ gse_built.components }}"
    build: 20261130T120000Z
"""

RETURN = r"""
unchanged:
  description: True when the inputs and the root equal the record (V(check) only).
  type: bool
  returned: always
built:
  description: The build id the record names when RV(unchanged), else empty.
  type: str
  returned: always
inputs:
  description: SHA-256 (hex) of all the inputs.
  type: str
  returned: always
components:
  description: The digest of each input by name (a setting, a file, a repository, the stage3).
  type: dict
  returned: always
root_digest:
  description: SHA-256 (hex) of the root's listing.
  type: str
  returned: always
reason:
  description: Why the parts run (no record, the inputs that changed, root changed, or O(run_all)), or empty.
  type: str
  returned: always
record:
  description: The record's path.
  type: str
  returned: always
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gse.stateless.plugins.module_utils import build_inputs, root_manifest
from ansible_collections.gse.stateless.plugins.module_utils.atomic_file import write_atomic


def root_digest(module, root):
    if not os.path.isdir(root):
        return "missing"
    try:
        return root_manifest.digest(root)
    except root_manifest.ManifestError as e:
        module.fail_json(msg=e.msg, cmd=e.cmd, rc=e.rc, stdout="", stderr=e.stderr)


def check(module, p, path):
    components = dict(p["components"])
    for tree in p["trees"]:
        components["tree:" + tree] = build_inputs.tree_digest(tree)
    components["stage3"] = build_inputs.content_digest(p["root"].rstrip("/") + ".extracted.json")
    inputs = build_inputs.combine(components)
    digest = root_digest(module, p["root"])
    record = build_inputs.read_record(path)
    result = dict(inputs=inputs, components=components, root_digest=digest, record=path)
    if p["run_all"]:
        reason = p["run_all"]
    elif record is None:
        reason = "no record of a completed build"
    elif record.get("inputs") != inputs:
        reason = "inputs changed: %s" % build_inputs.differing(record, components)
    elif record.get("root") != digest:
        reason = "root changed"
    else:
        module.exit_json(changed=False, unchanged=True, built=str(record.get("build", "")), reason="", **result)
    # The parts will run and change the root: no record may say "built" until they complete.
    changed = os.path.lexists(path)
    if changed and not module.check_mode:
        os.unlink(path)
    module.exit_json(changed=changed, unchanged=False, built="", reason=reason, **result)


def present(module, p, path):
    digest = root_digest(module, p["root"])
    text = build_inputs.record_text(p["build"], p["components"], digest)
    try:
        with open(path, encoding="utf-8") as fh:
            same = fh.read() == text
    except (OSError, ValueError):
        same = False
    if not same and not module.check_mode:
        write_atomic(path, text, mode=0o600, unique=True)
    module.exit_json(changed=not same, unchanged=False, built=p["build"], inputs=build_inputs.combine(p["components"]),
                     components=p["components"], root_digest=digest, reason="", record=path)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            state=dict(type="str", choices=["check", "present"], default="check"),
            components=dict(type="dict", required=True),
            trees=dict(type="list", elements="path", default=[]),
            run_all=dict(type="str", default=""),
            build=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    p = module.params
    path = build_inputs.record_path(p["root"])
    if p["state"] == "check":
        check(module, p, path)
    present(module, p, path)


if __name__ == "__main__":
    main()
