#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Set the timezone the way Gentoo does: a /etc/localtime symlink, and /etc/timezone."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: timezone
short_description: Set the system timezone (/etc/localtime symlink and /etc/timezone)
description:
  - Makes C(/etc/localtime) a relative symlink to C(../usr/share/zoneinfo/<zone>), as the Gentoo handbook
    does today, replacing a copied zone file or another link.
  - Writes the zone name to C(/etc/timezone), which OpenRC and older tools still read.
  - The zone must exist as a file under C(/usr/share/zoneinfo) of the system.
options:
  name:
    description: The zone, for example C(Europe/Athens) or C(UTC).
    type: str
    required: true
    aliases: [zone]
  root:
    description: The root of the system to configure; inside the build chroot it is C(/).
    type: path
    default: /
attributes:
  check_mode:
    support: full
    description: Reports whether the timezone files would change without writing them.
  diff_mode:
    support: full
    description: Shows the old and new C(/etc/localtime) target and C(/etc/timezone).
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- gse.stateless.timezone:
    name: Europe/Athens
"""

RETURN = r"""
localtime:
  description: The target of the C(/etc/localtime) symlink.
  returned: always
  type: str
  sample: ../usr/share/zoneinfo/Europe/Athens
changed_files:
  description: The files that changed (would change, in check mode).
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gse.stateless.plugins.module_utils import managed_file

ZONEINFO = "usr/share/zoneinfo"


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True, aliases=["zone"]),
            root=dict(type="path", default="/"),
        ),
        supports_check_mode=True,
    )
    zone = module.params["name"]
    root = module.params["root"]
    parts = zone.split("/")
    if not zone or zone.startswith("/") or any(p in ("", ".", "..") for p in parts):
        module.fail_json(msg="invalid timezone name %r" % zone)
    zonefile = os.path.join(root, ZONEINFO, zone)
    if not os.path.isfile(zonefile):
        module.fail_json(msg="unknown timezone %s: %s does not exist" % (zone, zonefile))

    localtime = os.path.join(root, "etc/localtime")
    timezone = os.path.join(root, "etc/timezone")
    target = "../" + ZONEINFO + "/" + zone
    before = managed_file.describe_link(localtime) + (managed_file.read(timezone) or "")
    changed_files = []
    if managed_file.symlink(module, localtime, target):
        changed_files.append(localtime)
    if managed_file.write(module, timezone, zone + "\n"):
        changed_files.append(timezone)
    result = dict(changed=bool(changed_files), changed_files=changed_files, localtime=target)
    if module._diff:
        result["diff"] = dict(before=before, after="%s -> %s\n%s\n" % (localtime, target, zone))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
