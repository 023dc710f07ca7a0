# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Wake-on-LAN: MAC checks, the magic packet, the groups file, sending with a stagger.

One implementation for `gse wake` and the `wake` module.  Free of Ansible
(gse loads it by path) and of anything but the standard library, except
PyYAML for the groups file, imported only when a groups file is read.

The magic packet is 6 bytes 0xFF followed by the target MAC 16 times, sent as
one UDP datagram to a broadcast address (port 9, "discard", by convention):
the NIC of a sleeping machine matches the pattern anywhere in a frame, so the
IP header is irrelevant to it and only the L2 broadcast must reach the wire.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
import time

DEFAULT_BROADCAST = "255.255.255.255"
DEFAULT_PORT = 9
# Seconds between two machines at most: a stagger spreads the power-on surge
# and the first downloads of a room over minutes, not hours.
MAX_STAGGER = 600
GROUPS_FILE = os.path.join("hosts", "groups.yml")

_MAC = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}$")
_GROUP = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
_HOSTNAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$")
_IFNAME = re.compile(r"^[A-Za-z0-9_.:@-]{1,15}$")


class WakeError(ValueError):
    """Bad input (a MAC, a group, the groups file, an option): nothing was sent."""


def parse_mac(text):
    """The 6 bytes of a unicast MAC written aa:bb:cc:dd:ee:ff, aa-bb-... or aabbccddeeff.

    A NIC never has the group bit (multicast, broadcast) or the all-zero
    address: those are typing mistakes, refused like any other."""
    if not isinstance(text, str) or not _MAC.match(text.strip().lower()):
        raise WakeError("%r is not a MAC address (expected aa:bb:cc:dd:ee:ff)" % (text,))
    raw = bytes.fromhex(re.sub(r"[:-]", "", text.strip().lower()))
    if raw[0] & 1:
        raise WakeError("%s is a multicast or broadcast address, not a machine's" % format_mac(raw))
    if raw == bytes(6):
        raise WakeError("00:00:00:00:00:00 is not a machine's MAC address")
    return raw


def format_mac(raw):
    return ":".join("%02x" % b for b in raw)


def magic_packet(raw):
    """6 x 0xFF, then the MAC 16 times (102 bytes)."""
    if len(raw) != 6:
        raise WakeError("a MAC address has 6 bytes")
    return b"\xff" * 6 + raw * 16


def check_options(broadcast, port, interface, stagger):
    """Refuse bad sending options before anything is sent."""
    try:
        addr = ipaddress.IPv4Address(broadcast)
    except (ValueError, TypeError):
        raise WakeError("%r is not an IPv4 broadcast address" % (broadcast,)) from None
    if addr.is_multicast or addr.is_unspecified:
        raise WakeError("%s is not a broadcast address" % broadcast)
    if isinstance(port, bool) or not isinstance(port, int) or not 1 <= port <= 65535:
        raise WakeError("port %r is not between 1 and 65535" % (port,))
    if interface is not None and not _IFNAME.match(interface):
        raise WakeError("%r is not a network interface name" % (interface,))
    if not isinstance(stagger, (int, float)) or isinstance(stagger, bool) \
            or not 0 <= stagger <= MAX_STAGGER:
        raise WakeError("stagger %r is not between 0 and %d seconds" % (stagger, MAX_STAGGER))


def target(entry, where="target"):
    """{mac, hostname} from a mapping or a bare MAC string, the MAC checked and normalised."""
    if isinstance(entry, str):
        entry = {"mac": entry}
    if not isinstance(entry, dict) or "mac" not in entry:
        raise WakeError("%s: expected a mapping with a mac (and an optional hostname)" % where)
    unknown = sorted(set(entry) - {"mac", "hostname"})
    if unknown:
        raise WakeError("%s: unknown key %s (mac, hostname)" % (where, ", ".join(map(str, unknown))))
    hostname = entry.get("hostname") or ""
    if hostname and not (isinstance(hostname, str) and _HOSTNAME.match(hostname)):
        raise WakeError("%s: %r is not a hostname" % (where, hostname))
    try:
        mac = format_mac(parse_mac(entry["mac"]))
    except WakeError as exc:
        raise WakeError("%s: %s" % (where, exc)) from None
    return {"mac": mac, "hostname": hostname}


def parse_groups(data, path):
    """group -> [{mac, hostname}] from the parsed groups file, every entry checked."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise WakeError("%s: expected a mapping of group names to lists of machines" % path)
    groups = {}
    for name, members in data.items():
        if not isinstance(name, str) or not _GROUP.match(name):
            raise WakeError("%s: %r is not a group name ([A-Za-z0-9_.-], 64 at most)" % (path, name))
        if not isinstance(members, list):
            raise WakeError("%s: group %s: expected a list of machines" % (path, name))
        groups[name] = [target(m, "%s: group %s, entry %d" % (path, name, i + 1))
                        for i, m in enumerate(members)]
    return groups


def load_groups(configd_dirs):
    """The groups of hosts/groups.yml in each config.d directory; a later directory
    replaces a group of an earlier one as a whole (as config.d does per variable)."""
    import yaml  # only here: sending needs no YAML

    groups = {}
    for d in configd_dirs:
        path = os.path.join(d, GROUPS_FILE)
        if not os.path.isfile(path):
            continue
        try:
            with open(path, encoding="utf-8") as f:
                data = yaml.safe_load(f)
        except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
            raise WakeError("%s: %s" % (path, " ".join(str(exc).split()))) from None
        groups.update(parse_groups(data, path))
    return groups


def open_socket(interface=None):
    """A UDP socket allowed to broadcast, bound to interface when one is named
    (SO_BINDTODEVICE: the packets leave there whatever the routes say)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
        if interface:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, interface.encode())
    except OSError:
        sock.close()
        raise
    return sock


def send(targets, broadcast=DEFAULT_BROADCAST, port=DEFAULT_PORT, interface=None, stagger=0,
         sleep=time.sleep, sock=None, report=None):
    """Send one magic packet per target, waiting stagger seconds between two.

    targets are checked {mac, hostname} (see target()); returns one result per
    target: {mac, hostname, sent}.  sleep and sock are replaceable for tests;
    report(result) is called after each packet (progress lines).  A socket
    error stops the run: WakeOSError carries the results so far."""
    check_options(broadcast, port, interface, stagger)
    own = sock is None
    if own:
        sock = open_socket(interface)
    results = []
    try:
        for i, t in enumerate(targets):
            if i and stagger:
                sleep(stagger)
            try:
                sock.sendto(magic_packet(parse_mac(t["mac"])), (broadcast, port))
            except OSError as exc:
                reason = exc.strerror or str(exc)
                raise WakeOSError("%s: sending to %s:%d: %s" % (t["mac"], broadcast, port, reason),
                                  results) from None
            results.append({"mac": t["mac"], "hostname": t.get("hostname", ""), "sent": True})
            if report:
                report(results[-1])
    finally:
        if own:
            sock.close()
    return results


class WakeOSError(OSError):
    """Sending failed; results holds the machines woken before."""

    def __init__(self, msg, results):
        super().__init__(msg)
        self.results = results
