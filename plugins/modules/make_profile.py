#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Select the Portage profile: what ``eselect profile set`` writes."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: make_profile
short_description: Select the Portage profile (the /etc/portage/make.profile symlink)
description:
  - Makes C(/etc/portage/make.profile) a relative symlink to C(<repository>/profiles/<profile>), which is
    what C(eselect profile set) writes (for the gentoo repository
    C(../../var/db/repos/gentoo/profiles/<profile>)).
  - The repository location comes from C(portageq get_repo_path / <repo>) unless O(repo_path) is given.
  - The profile directory must exist, and be listed in the repository's C(profiles/profiles.desc) unless
    O(allow_unlisted) is set (a custom profile such as the GSE profile may not be listed).
options:
  profile:
    description:
      - The profile path inside the repository's C(profiles) directory, for example
        C(default/linux/amd64/23.0); C(<repo>:<path>) names the repository as eselect does.
    type: str
    required: true
    aliases: [name]
  repo:
    description: The repository holding the profile (when O(profile) does not name one).
    type: str
    default: gentoo
  repo_path:
    description:
      - The repository location as seen on the system (for example C(/var/db/repos/gentoo)), instead of
        asking portageq. Required when O(root) is not C(/).
    type: path
  allow_unlisted:
    description: Accept a profile that C(profiles.desc) does not list.
    type: bool
    default: false
  root:
    description: The root of the system to configure; inside the build chroot it is C(/).
    type: path
    default: /
attributes:
  check_mode:
    support: full
    description: Reports whether the C(make.profile) link would change without touching it.
  diff_mode:
    support: full
    description: Shows the old and new link target.
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- gse.stateless.make_profile:
    profile: default/linux/amd64/23.0

- name: The GSE profile from the overlay
  gse.stateless.make_profile:
    profile: gse:gse/amd64
    allow_unlisted: true
"""

RETURN = r"""
link:
  description: The target written to C(/etc/portage/make.profile).
  returned: always
  type: str
  sample: ../../var/db/repos/gentoo/profiles/default/linux/amd64/23.0
repo_path:
  description: The repository location used.
  returned: always
  type: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gse.stateless.plugins.module_utils import managed_file
from ansible_collections.gse.stateless.plugins.module_utils import portageq

MAKE_PROFILE = "etc/portage/make.profile"


def listed(profiles_dir, profile):
    """Whether profiles.desc lists ``profile`` (lines: arch path status)."""
    try:
        with open(os.path.join(profiles_dir, "profiles.desc"), "r") as f:
            lines = f.read().splitlines()
    except OSError:
        return False
    for line in lines:
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and fields[1].strip("/") == profile:
            return True
    return False


def main():
    module = AnsibleModule(
        argument_spec=dict(
            profile=dict(type="str", required=True, aliases=["name"]),
            repo=dict(type="str", default="gentoo"),
            repo_path=dict(type="path"),
            allow_unlisted=dict(type="bool", default=False),
            root=dict(type="path", default="/"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    repo, profile = p["repo"], p["profile"]
    if ":" in profile:
        repo, profile = profile.split(":", 1)
    profile = profile.strip("/")
    if not profile or any(part in ("", ".", "..") for part in profile.split("/")):
        module.fail_json(msg="invalid profile path %r" % p["profile"])
    root = p["root"]
    location = p["repo_path"]
    if not location:
        if root != "/":
            module.fail_json(msg="repo_path is required when root is not /")
        location = portageq.repo_path(module, repo)

    profiles_dir = os.path.join(root, location.lstrip("/"), "profiles")
    if not os.path.isdir(os.path.join(profiles_dir, profile)):
        module.fail_json(msg="profile %s does not exist in repository %s (%s)"
                         % (profile, repo, os.path.join(location, "profiles", profile)))
    if not p["allow_unlisted"] and not listed(profiles_dir, profile):
        module.fail_json(msg="profile %s is not listed in %s/profiles/profiles.desc (set allow_unlisted)"
                         % (profile, location))

    link = os.path.join(root, MAKE_PROFILE)
    # Relative, as eselect writes it, so the link also resolves from outside the chroot.
    target = os.path.relpath(os.path.join("/", location.lstrip("/"), "profiles", profile),
                             os.path.dirname("/" + MAKE_PROFILE))
    before = managed_file.describe_link(link)
    if not os.path.isdir(os.path.dirname(link)):
        module.fail_json(msg="%s does not exist" % os.path.dirname(link))
    changed = managed_file.symlink(module, link, target)
    result = dict(changed=changed, link=target, repo_path=location)
    if module._diff:
        result["diff"] = dict(before=before, after="%s -> %s\n" % (link, target))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
