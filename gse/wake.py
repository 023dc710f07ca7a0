"""`gse wake`: wake a room (a group of hosts/groups.yml) or one machine with Wake-on-LAN.

The packets and the groups file are the collection's
plugins/module_utils/wol.py, shared with the `wake` module (AWX).
"""
import sys
import time

from . import layout
from .errors import UsageError
from .subcommand import Parser

PROG = "gse wake"



def parser():
    """The options of gse wake; man 1 gse lists them from here."""
    p = Parser(prog=PROG, description="Wake machines with Wake-on-LAN magic packets.")
    who = p.add_mutually_exclusive_group(required=True)
    who.add_argument("--group", metavar="ROOM",
                     help="wake every machine of the group ROOM of hosts/groups.yml in config.d")
    who.add_argument("--mac", metavar="MAC", action="append",
                     help="wake the machine with this MAC (aa:bb:cc:dd:ee:ff); may be repeated")
    p.add_argument("--stagger", metavar="SECONDS", type=float, default=0.0,
                   help="wait SECONDS between two machines (0 to 600; default 0)")
    p.add_argument("--broadcast", metavar="ADDR", default=None,
                   help="IPv4 broadcast address the packets go to (default 255.255.255.255)")
    p.add_argument("--port", metavar="PORT", type=int, default=None,
                   help="UDP port (default 9)")
    p.add_argument("--interface", metavar="IFACE", default=None,
                   help="send through this network interface only (SO_BINDTODEVICE)")
    p.add_argument("--groups-file", metavar="FILE", default=None,
                   help="read the groups from FILE instead of hosts/groups.yml of the config.d directories")
    return p


def _wol():
    return layout._module_utils("wol")


def targets(args, wol):
    """The checked {mac, hostname} list the options name; UsageError for bad input."""
    try:
        if args.mac:
            return [wol.target(m, "--mac") for m in args.mac]
        if args.groups_file:
            import yaml
            try:
                with open(args.groups_file, encoding="utf-8") as f:
                    groups = wol.parse_groups(yaml.safe_load(f), args.groups_file)
            except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
                raise UsageError("%s: %s" % (args.groups_file, getattr(exc, "strerror", None) or exc))
            where = args.groups_file
        else:
            dirs = layout.configd_dirs()
            groups = wol.load_groups(dirs)
            where = " or ".join("%s/%s" % (d, wol.GROUPS_FILE) for d in dirs)
    except wol.WakeError as exc:
        raise UsageError(str(exc))
    if args.group not in groups:
        raise UsageError("no group %s in %s" % (args.group, where))
    if not groups[args.group]:
        raise UsageError("group %s has no machines" % args.group)
    return groups[args.group]


def run(argv, sleep=time.sleep):
    args = parser().parse_args(argv)
    wol = _wol()
    machines = targets(args, wol)
    broadcast = args.broadcast or wol.DEFAULT_BROADCAST
    port = wol.DEFAULT_PORT if args.port is None else args.port
    try:
        wol.check_options(broadcast, port, args.interface, args.stagger)
    except wol.WakeError as exc:
        raise UsageError(str(exc))

    def report(r):
        print("woke %s%s" % (r["mac"], " (%s)" % r["hostname"] if r["hostname"] else ""), flush=True)

    try:
        wol.send(machines, broadcast, port, args.interface, args.stagger, sleep=sleep, report=report)
    except OSError as exc:
        print("%s: %s" % (PROG, " ".join(str(exc).split())), file=sys.stderr)
        return 1
    return 0


def main(argv=None, sleep=time.sleep):
    """Exit 0 when every packet left, 1 when sending failed, 2 for bad input (nothing sent)."""
    try:
        return run(sys.argv[1:] if argv is None else list(argv), sleep=sleep)
    except UsageError as exc:
        print("%s: %s" % (PROG, " ".join(str(exc).split())), file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("%s: interrupted" % PROG, file=sys.stderr)
        return 130
