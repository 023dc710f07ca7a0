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
  - With O(state=check) and O(synced) given (a sync is configured), the listings of those trees are left
    undecided, since what the sync brings is not known before it ran. When everything else and the root equal
    the record, RV(after_sync) is true, RV(recorded) holds what the record says of those listings, and the
    record is removed as for any run.
  - With O(state=synced) (part C, right after the sync), the listings of the O(synced) trees are taken again and
    compared with O(recorded). When they are equal, RV(unchanged) is true and the rest of parts C to J is
    skipped; RV(components) are then the inputs the record of this build holds.
  - With O(state=present), at the end of part K (the tarball, its index and C(SHA512SUMS) are written), the record
    is written atomically (mode 0600) with the O(components) the check returned, the listings of the O(synced)
    trees taken again (what the next build's sync starts from).
  - The action plugin of the same name digests the settings and the files on the controller and passes those
    digests as O(components); the module adds the repositories' listing and the stage3 marker read on the build
    host.
options:
  root:
    description: The build's work directory.
    type: path
    required: true
  state:
    description: V(check) compares and removes a stale record; V(synced) compares the listings of the synced
      trees after the sync with the recorded ones; V(present) writes the record.
    type: str
    choices: [check, synced, present]
    default: check
  components:
    description:
      - With V(check), the digests of the inputs read on the controller, by name (the action plugin sets them).
      - With V(synced), all the digests the check returned (RV(components)).
      - With V(present), all the digests the check returned (RV(components)).
    type: dict
    required: true
  trees:
    description: Directories the chroot mounts (the Portage repositories), whose listing is an input.
    type: list
    elements: path
    default: []
  synced:
    description:
      - The trees among O(trees) a sync changes (the Portage repositories when C(gse_sync_method) is not
        V(none)). The action plugin sets them from O(sync_trees) when a sync is configured (V(check), V(present)).
    type: list
    elements: path
    default: []
  sync_trees:
    description:
      - The trees a sync changes, given to the action plugin, which passes them on as O(synced) only when
        C(gse_sync_method) is not V(none).
    type: list
    elements: path
    default: []
  recorded:
    description: With V(synced), RV(recorded) of the check.
    type: dict
    default: {}
  run_all:
    description:
      - Why the parts run whatever the record says (an enforced hook of parts A to J), or empty.
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

- name: Compare the repositories after the sync with the last completed build's
  gse.stateless.build_record:
    root: /var/tmp/gse/workdir-precomp
    state: synced
    synced: [/var/db/repos]
    components: "{{ gse_built_check.components }}"
    recorded: "{{ gse_built_check.recorded }}"
  when: gse_built_check.after_sync
"""

RETURN = r"""
unchanged:
  description: True when the inputs and the root equal the record (V(check)), or the synced trees' listings
    equal the recorded ones (V(synced)).
  type: bool
  returned: always
after_sync:
  description: True when everything but the synced trees' listings equals the record (V(check) only).
  type: bool
  returned: always
recorded:
  description: When RV(after_sync), the build the record names (C(build)) and its digests of the synced trees'
    listings (C(listings)); else empty.
  type: dict
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
  returned: with V(check) and V(present)
reason:
  description: Why the parts run (no record, the inputs that changed, root changed, O(run_all), the listings the
    sync changed), or why the decision waits for the sync, or empty.
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
        components[build_inputs.tree_component(tree)] = build_inputs.tree_digest(tree)
    components["stage3"] = build_inputs.content_digest(p["root"].rstrip("/") + ".extracted.json")
    inputs = build_inputs.combine(components)
    digest = root_digest(module, p["root"])
    record = build_inputs.read_record(path)
    result = dict(inputs=inputs, components=components, root_digest=digest, record=path)
    verdict, reason = build_inputs.decide(record, components, digest, p["run_all"], p["synced"])
    if verdict == build_inputs.UNCHANGED:
        module.exit_json(changed=False, unchanged=True, after_sync=False, recorded={},
                         built=str(record.get("build", "")), reason="", **result)
    recorded = {}
    if verdict == build_inputs.AFTER_SYNC:
        recorded = dict(build=str(record.get("build", "")),
                        listings=build_inputs.recorded_listings(record, p["synced"]))
    # The parts will run and change the root: no record may say "built" until they complete (a skip after
    # the sync writes it again at part K).
    changed = os.path.lexists(path)
    if changed and not module.check_mode:
        os.unlink(path)
    module.exit_json(changed=changed, unchanged=False, after_sync=bool(recorded), recorded=recorded, built="",
                     reason=reason, **result)


def synced(module, p, path):
    components = dict(p["components"])
    for tree in p["synced"]:
        components[build_inputs.tree_component(tree)] = build_inputs.tree_digest(tree)
    recorded = p["recorded"] or {}
    listings = recorded.get("listings") if isinstance(recorded.get("listings"), dict) else {}
    verdict, reason = build_inputs.decide_synced(listings, components)
    unchanged = verdict == build_inputs.UNCHANGED
    module.exit_json(changed=False, unchanged=unchanged, after_sync=False, recorded=recorded,
                     built=str(recorded.get("build", "")) if unchanged else "", reason=reason,
                     inputs=build_inputs.combine(components), components=components, record=path)


def present(module, p, path):
    digest = root_digest(module, p["root"])
    components = dict(p["components"])
    for tree in p["synced"]:
        components[build_inputs.tree_component(tree)] = build_inputs.tree_digest(tree)
    text = build_inputs.record_text(p["build"], components, digest)
    try:
        with open(path, encoding="utf-8") as fh:
            same = fh.read() == text
    except (OSError, ValueError):
        same = False
    if not same and not module.check_mode:
        write_atomic(path, text, mode=0o600, unique=True)
    module.exit_json(changed=not same, unchanged=False, after_sync=False, recorded={}, built=p["build"],
                     inputs=build_inputs.combine(components), components=components, root_digest=digest, reason="",
                     record=path)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            state=dict(type="str", choices=["check", "synced", "present"], default="check"),
            components=dict(type="dict", required=True),
            trees=dict(type="list", elements="path", default=[]),
            synced=dict(type="list", elements="path", default=[]),
            sync_trees=dict(type="list", elements="path", default=[]),
            recorded=dict(type="dict", default={}),
            run_all=dict(type="str", default=""),
            build=dict(type="str", default=""),
        ),
        supports_check_mode=True,
    )
    p = module.params
    path = build_inputs.record_path(p["root"])
    if p["state"] == "check":
        check(module, p, path)
    if p["state"] == "synced":
        synced(module, p, path)
    present(module, p, path)


if __name__ == "__main__":
    main()
