"""`gse fleet`: what every client runs, from the reports they send after boot.

The reports are checked and stored by plugins/module_utils/fleet.py; this
file lists them and holds the small HTTP receiver that `gse serve` runs
behind nginx (nginx passes POST /report to it, bounded in size).
"""
import http.server
import json
import os
import sys
import threading

from . import layout, listen
from .errors import UsageError
from .subcommand import Parser

PROG = "gse fleet"
# A client's report must arrive within this many seconds of its connection.
RECEIVE_TIMEOUT = 10


def _fleet():
    return layout._module_utils("fleet")


def fleet_dir(publish_dir):
    """Server-side state of the publication tree (.gse/ is never served)."""
    return os.path.join(publish_dir, ".gse", "fleet")



def parser():
    """The options of gse fleet; man 1 gse lists them from here."""
    p = Parser(prog=PROG, description="List the clients and what they run, from their reports.")
    p.add_argument("--dir", metavar="DIR", default=None,
                   help="the publication tree whose reports to read (default: gse_publish_dir of config.d)")
    p.add_argument("--stale-days", metavar="N", type=int, default=7,
                   help="flag hosts not seen for N days or more (1 to 3650; default 7)")
    p.add_argument("--json", action="store_true", help="print the hosts as JSON, with the excerpt of each "
                                                        "controller log")
    p.add_argument("--receive", metavar="HOST:PORT", default=None,
                   help="run the report receiver on HOST:PORT in the foreground instead (behind nginx: the server "
                        "role's gse_server_fleet_upstream; gse serve runs one itself)")
    return p


def table(hosts):
    cols = ("HOST", "GROUP", "VERSION", "SERIAL", "HEALTH", "LAST SEEN (UTC)", "LAST REFUSAL", "FLAGS")
    rows = [cols]
    for h in hosts:
        refusal = h["last_refusal"]
        rows.append(((h["hostname"] or h["mac"] or h["host"]), h["group"] or "-", h["version"] or "-",
                     h["serial"] or "-", h["health"], h["last_seen"],
                     "%s: %s" % (refusal.get("version", "?"), refusal.get("reason", "?")) if refusal else "-",
                     ", ".join(h["flags"]) or "-"))
    widths = [max(len(str(r[i])) for r in rows) for i in range(len(cols))]
    lines = ["  ".join(str(r[i]).ljust(widths[i]) for i in range(len(cols))).rstrip() for r in rows]
    if not hosts:
        lines.append("(no report yet)")
    return "\n".join(lines) + "\n"


def run(argv):
    args = parser().parse_args(argv)
    if not 1 <= args.stale_days <= 3650:
        raise UsageError("--stale-days=%d: 1 to 3650" % args.stale_days)
    publish_dir = args.dir
    if publish_dir is None:
        from . import config
        cfg = config.load(layout.configd_dirs()).merged
        publish_dir = cfg.get("gse_publish_dir") or layout.build_defaults()["gse_publish_dir"]
    if not os.path.isdir(publish_dir):
        raise UsageError("--dir=%s: no such directory" % layout.settings().plain(publish_dir, 60))
    if args.receive is not None:
        return receive(publish_dir, args.receive)
    hosts = _fleet().Fleet(fleet_dir(publish_dir)).hosts(stale_days=args.stale_days)
    if args.json:
        json.dump(hosts, sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(table([dict(h, log=None) for h in hosts]))
    return 0


def receive(publish_dir, address):
    """Run the receiver until SIGINT, SIGTERM or SIGHUP; 0."""
    import signal
    try:
        host, port = listen.parse(address, "--receive")
    except listen.ListenError as exc:
        raise UsageError(str(exc)) from None

    def stop(signum, frame):
        raise KeyboardInterrupt

    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        with Receiver(publish_dir, host, port):
            print("%s: receiving reports for %s on %s:%d" % (PROG, publish_dir, host, port), file=sys.stderr)
            threading.Event().wait()
    except KeyboardInterrupt:
        return 0
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def main(argv=None):
    """Exit 0 when listed, 2 for bad input."""
    try:
        return run(sys.argv[1:] if argv is None else list(argv))
    except UsageError as exc:
        print("%s: %s" % (PROG, " ".join(str(exc).split())), file=sys.stderr)
        return exc.code
    except KeyboardInterrupt:
        return 130


# -- the receiver ------------------------------------------------------------
class _Handler(http.server.BaseHTTPRequestHandler):
    fleet = None  # set by Receiver
    timeout = RECEIVE_TIMEOUT  # every read of the socket is bounded

    def _answer(self, status, text):
        body = (text + "\n").encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/plain; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        mod = _fleet()
        if self.path != "/report":
            return self._answer(404, "not found")
        try:
            length = int(self.headers.get("Content-Length", ""))
        except ValueError:
            return self._answer(411, "a report needs Content-Length")
        if length < 0 or length > mod.MAX_REPORT:
            # Refused before one byte of the body is read.
            return self._answer(413, "a report is at most %d bytes" % mod.MAX_REPORT)
        body = self.rfile.read(length)
        if len(body) != length:
            return self._answer(400, "the report ended early")
        # Behind nginx the client is in X-Real-IP; direct, the peer.
        remote = self.headers.get("X-Real-IP") or self.client_address[0]
        try:
            key = self.fleet.receive(body, self.headers.get("Authorization"), remote=remote)
        except mod.ReportError as exc:
            return self._answer(exc.status, str(exc))
        return self._answer(200, "recorded %s" % key)

    def do_GET(self):
        self._answer(405, "reports are sent with POST /report")

    def log_message(self, *args):
        pass


class Receiver:
    """The report receiver on host:port (port 0: a free one), in a thread; a context manager."""

    def __init__(self, publish_dir, host="127.0.0.1", port=0):
        handler = type("Handler", (_Handler,), {"fleet": _fleet().Fleet(fleet_dir(publish_dir))})
        self.httpd = http.server.ThreadingHTTPServer((host, port), handler)
        self.httpd.daemon_threads = True
        self.port = self.httpd.server_address[1]
        self.thread = None

    def __enter__(self):
        self.thread = threading.Thread(target=self.httpd.serve_forever, name="gse-fleet-receiver", daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
