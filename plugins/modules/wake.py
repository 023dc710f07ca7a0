#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wake machines with Wake-on-LAN magic packets (the implementation of gse wake)."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: wake
short_description: Wake machines with Wake-on-LAN magic packets
description:
  - Sends one Wake-on-LAN magic packet (6 bytes C(0xFF), then the MAC 16 times) per machine as a UDP
    datagram to a broadcast address, from the host the task runs on; that host must be in the machines'
    broadcast domain (or name the interface that is, with O(interface)).
  - The machines are O(targets), or the group O(group) of the groups file (C(hosts/groups.yml) of the
    config.d directories O(configd_dirs), a later directory replacing a group of an earlier one).
  - Every MAC and option is checked before the first packet leaves; bad input fails with nothing sent.
  - O(stagger) waits between two machines, so a room does not power on, and start downloading, at once.
  - The same code as C(gse wake) (C(plugins/module_utils/wol.py)).
options:
  targets:
    description:
      - The machines, each a mapping with C(mac) and an optional C(hostname), or a bare MAC.
      - MACs are written C(aa:bb:cc:dd:ee:ff), C(aa-bb-cc-dd-ee-ff) or C(aabbccddeeff); multicast,
        broadcast and all-zero addresses are refused.
    type: list
    elements: raw
  group:
    description: A group of the groups file to wake.
    type: str
  configd_dirs:
    description: The config.d directories whose C(hosts/groups.yml) define the groups, later ones win.
    type: list
    elements: path
    default: [/usr/lib64/gse/config.d, /etc/gse/config.d]
  broadcast:
    description: IPv4 broadcast address the packets go to (the subnet's, for example C(10.1.2.255)).
    type: str
    default: 255.255.255.255
  port:
    description: UDP port (9 by convention; some NICs listen on 7 as well, any port works).
    type: int
    default: 9
  interface:
    description: Send through this network interface only (C(SO_BINDTODEVICE)), whatever the routes say.
    type: str
  stagger:
    description: Seconds to wait between two machines (0 to 600).
    type: float
    default: 0
attributes:
  check_mode:
    support: full
    description: Checks everything and returns the machines it would wake; sends nothing and does not wait.
  diff_mode:
    support: none
    description: Nothing on disk changes.
notes:
  - Exactly one of O(targets) and O(group).
  - Reading the groups file needs PyYAML on the host the task runs on.
  - Sending a packet does not tell whether the machine woke up; RV(woken) lists the packets that left.
    C(changed) is V(true) when packets were sent (or would be, in check mode).
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Wake room 101, one machine every 5 seconds
  gse.stateless.wake:
    group: room101
    stagger: 5
    broadcast: 10.1.1.255

- name: Wake two machines through the lab interface
  gse.stateless.wake:
    targets:
      - {mac: "52:54:00:12:34:56", hostname: pc01}
      - "52:54:00:12:34:57"
    interface: eth1
"""

RETURN = r"""
woken:
  description: One entry per machine, in order (in check mode the ones that would be woken).
  returned: always
  type: list
  elements: dict
  contains:
    mac:
      description: The MAC, normalised to lower case with colons.
      type: str
      sample: "52:54:00:12:34:56"
    hostname:
      description: The hostname of the entry, or empty.
      type: str
    sent:
      description: Whether the packet left (V(false) in check mode).
      type: bool
broadcast:
  description: The destination address.
  returned: always
  type: str
port:
  description: The destination port.
  returned: always
  type: int
"""

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gse.stateless.plugins.module_utils import wol


def main():
    module = AnsibleModule(
        argument_spec=dict(
            targets=dict(type="list", elements="raw"),
            group=dict(type="str"),
            configd_dirs=dict(type="list", elements="path",
                              default=["/usr/lib64/gse/config.d", "/etc/gse/config.d"]),
            broadcast=dict(type="str", default=wol.DEFAULT_BROADCAST),
            port=dict(type="int", default=wol.DEFAULT_PORT),
            interface=dict(type="str"),
            stagger=dict(type="float", default=0),
        ),
        required_one_of=[("targets", "group")],
        mutually_exclusive=[("targets", "group")],
        supports_check_mode=True,
    )
    p = module.params
    out = dict(changed=False, woken=[], broadcast=p["broadcast"], port=p["port"])
    try:
        wol.check_options(p["broadcast"], p["port"], p["interface"], p["stagger"])
        if p["group"] is not None:
            try:
                groups = wol.load_groups(p["configd_dirs"])
            except ImportError:
                module.fail_json(msg="reading the groups file needs PyYAML on this host", **out)
            if p["group"] not in groups:
                module.fail_json(msg="no group %s in hosts/groups.yml of %s"
                                 % (p["group"], ", ".join(p["configd_dirs"])), **out)
            machines = groups[p["group"]]
        else:
            machines = [wol.target(t, "targets[%d]" % i) for i, t in enumerate(p["targets"])]
    except wol.WakeError as exc:
        module.fail_json(msg=str(exc), **out)
    if not machines:
        module.fail_json(msg="no machines to wake", **out)

    if module.check_mode:
        out.update(woken=[dict(m, sent=False) for m in machines], changed=True)
        module.exit_json(**out)
    try:
        out["woken"] = wol.send(machines, p["broadcast"], p["port"], p["interface"], p["stagger"])
    except OSError as exc:
        out["woken"] = getattr(exc, "results", [])
        out["changed"] = bool(out["woken"])
        module.fail_json(msg=str(exc), **out)
    out["changed"] = True
    module.exit_json(**out)


if __name__ == "__main__":
    main()
