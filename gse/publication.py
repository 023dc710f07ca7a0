"""`gse publish`: list, roll back or prune the published images, pin groups to them.

The work is the collection's gse.stateless.publication module, run through
playbooks/publication.yml (the same playbook AWX runs), so the checks, the
tree lock and the history are one code path.
"""
import json
import re
import sys
import tempfile

from . import config, layout, runner
from .errors import BuildFailed, UsageError
from .subcommand import Parser

PROG = "gse publish"
ACTION = "gse.stateless.publication"
# The group names of config.d's members (docs/groups.md); the module checks them again.
GROUP = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")


def parser():
    """The options of gse publish; man 1 gse lists them from here."""
    p = Parser(prog=PROG, description="List, roll back or prune the published images; pin a group to one.")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--list", action="store_true",
                      help="list the published images, newest first, with the default and its fallback")
    what.add_argument("--rollback", metavar="VERSION",
                      help="make the published image VERSION the default again, verified, under a new and "
                           "higher serial")
    what.add_argument("--prune", action="store_true",
                      help="remove the images beyond the most recent gse_publish_keep (never the default or "
                           "its fallback) and the chunks no remaining image needs")
    what.add_argument("--pin", metavar="GROUP=VERSION",
                      help="pin the clients of GROUP (config.d members) to the published image VERSION: they "
                           "install what groups/GROUP/version.txt names, never the default")
    what.add_argument("--unpin", metavar="GROUP",
                      help="let the clients of GROUP follow the default again (version.txt is signed again "
                           "with a higher serial)")
    p.add_argument("--keep", metavar="N", type=int, default=None,
                   help="with --prune, keep the N most recent images instead of gse_publish_keep (1 to 1000)")
    p.add_argument("--json", action="store_true",
                   help="with --list, print the listing as JSON")
    p.add_argument("--dry-run", action="store_true",
                   help="verify and say what would change, change nothing")
    return p


def human(n):
    for unit in ("B", "KiB", "MiB", "GiB"):
        if n < 1024 or unit == "GiB":
            return ("%d %s" % (n, unit)) if unit == "B" else ("%.1f %s" % (n, unit))
        n /= 1024.0
    return "%d B" % n  # not reached


def table(result):
    """The listing as aligned text lines, then the pinned groups."""
    rows = [("VERSION", "SERIALS", "LAST USED (UTC)", "SIZE", "")]
    for v in result["versions"]:
        role = ["default"] if v["current"] else (["fallback"] if v["fallback"] else [])
        role += ["pinned: %s" % ",".join(v["pinned"])] if v.get("pinned") else []
        role = ", ".join(role)
        rows.append((v["version"], ",".join(str(s) for s in v["serials"]) or "-", v["last_used"],
                     human(v["bytes"]), role))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    lines = ["  ".join(r[i].ljust(widths[i]) for i in range(4)).rstrip() + ("  " + r[4] if r[4] else "")
             for r in rows]
    if not result["versions"]:
        lines.append("(no published image)")
    for group, pin in sorted((result.get("pins") or {}).items()):
        lines.append("group %s pinned to %s" % (group, "%s (serial %d)" % (pin["version"], pin["serial"])
                                                if pin.get("version") else "a pointer that does not verify"))
    return "\n".join(lines) + "\n"


def check(args):
    """Refuse bad combinations before anything runs."""
    if args.keep is not None and not args.prune:
        raise UsageError("--keep goes with --prune")
    if args.keep is not None and not 1 <= args.keep <= 1000:
        raise UsageError("--keep=%d: keep 1 to 1000 images" % args.keep)
    if args.json and not args.list:
        raise UsageError("--json goes with --list")
    if args.rollback is not None:
        shown = layout.settings().plain(args.rollback, 60)
        if not args.rollback or args.rollback.startswith((".", "-")) or "/" in args.rollback:
            raise UsageError("--rollback=%s: name a published version (gse publish --list)" % shown)
    if args.pin is not None:
        group, _eq, version = args.pin.partition("=")
        shown = layout.settings().plain(args.pin, 80)
        if not GROUP.match(group) or not version or version.startswith((".", "-")) or "/" in version:
            raise UsageError("--pin=%s: give GROUP=VERSION, a group name of config.d's members and a published "
                             "version (gse publish --list)" % shown)
    if args.unpin is not None and not GROUP.match(args.unpin):
        raise UsageError("--unpin=%s: name a pinned group (gse publish --list)"
                         % layout.settings().plain(args.unpin, 60))


def module_result(r):
    """(ok, result): the publication module's result, or the first failure of the run.

    A failure before the module (config.d, an assertion) is reported with
    its task's name so that the one line says where it stopped.
    """
    for event in r.events:
        data = event.get("event_data", {})
        if event.get("event") == "runner_on_failed" and not data.get("ignore_errors"):
            res = dict(data.get("res", {}))
            if data.get("task_action") != ACTION:
                res["msg"] = "%s: %s" % (data.get("task", "a task"), res.get("msg", "failed"))
            return False, res
        if event.get("event") == "runner_on_ok" and data.get("task_action") == ACTION:
            return True, data.get("res", {})
    return False, {}


def run(argv):
    args = parser().parse_args(argv)
    check(args)
    dirs = layout.configd_dirs()
    config.load(dirs)  # config.d is checked before anything runs
    action = next(a for a in ("list", "rollback", "prune", "pin", "unpin") if getattr(args, a) not in (None, False))
    extravars = {"gse_publication_action": action, "gse_configd_dirs": list(dirs)}
    if args.rollback is not None:
        extravars["gse_publication_version"] = args.rollback
    if args.pin is not None:
        extravars["gse_publication_group"], _eq, extravars["gse_publication_version"] = args.pin.partition("=")
    if args.unpin is not None:
        extravars["gse_publication_group"] = args.unpin
    if args.keep is not None:
        extravars["gse_publish_keep"] = args.keep
    with tempfile.TemporaryDirectory(prefix="gse-publish-") as private:
        r = runner.run("publication.yml", private, extravars, quiet=True,
                       cmdline="--check" if args.dry_run else None)
        ok, result = module_result(r)
    if not ok:
        why = result.get("msg") or "playbooks/publication.yml failed (status %s)" % r.status
        raise BuildFailed("%s: %s" % (action, " ".join(str(why).split())))
    if args.json:
        json.dump({k: result.get(k) for k in ("current", "fallback", "versions", "pins")}, sys.stdout, indent=2,
                  sort_keys=True)
        sys.stdout.write("\n")
    elif action == "list":
        sys.stdout.write(table(result))
    else:
        print(result.get("msg", action))
    return 0


def main(argv=None):
    """Exit 0 when done, 1 when the work was refused or failed, 2 for bad input (nothing changed)."""
    try:
        return run(sys.argv[1:] if argv is None else list(argv))
    except (UsageError, BuildFailed) as exc:
        print("%s: %s" % (PROG, " ".join(str(exc).split())), file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        print("%s: interrupted" % PROG, file=sys.stderr)
        return 130
