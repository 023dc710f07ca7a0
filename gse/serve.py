"""`gse serve`: serve a publication tree with nginx, for a quick start.

It runs nginx in the foreground with a private prefix (no system
configuration touched) and the same server block as the `server` role
(roles/server/templates/gse-site.conf.j2).  For a permanent server use the
role (playbooks/server.yml).
"""
import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import jinja2

from . import listen

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SITE_TEMPLATE = os.path.join(ROOT, "roles", "server", "templates", "gse-site.conf.j2")

MAIN_CONF = """daemon off;
{user}worker_processes 1;
pid {prefix}/nginx.pid;
error_log {prefix}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log {prefix}/access.log;
    client_body_temp_path {prefix}/client_body;
    proxy_temp_path {prefix}/proxy;
    fastcgi_temp_path {prefix}/fastcgi;
    uwsgi_temp_path {prefix}/uwsgi;
    scgi_temp_path {prefix}/scgi;
    server_tokens off;
    include {prefix}/site.conf;
}}
"""


def render_site(publish_dir, listen, server_name="_", limit_rate="", fleet_upstream=""):
    """The server block for publish_dir, from the server role's template."""
    with open(SITE_TEMPLATE) as f:
        tmpl = jinja2.Template(f.read(), trim_blocks=True, keep_trailing_newline=True)
    return tmpl.render(gse_publish_dir=os.path.abspath(publish_dir), gse_server_listen=listen,
                       gse_server_name=server_name, gse_server_limit_rate=limit_rate,
                       gse_server_fleet_upstream=fleet_upstream)


def worker_user(publish_dir):
    """Started as root, nginx's workers would run as nobody, who may not read
    a private tree: they run as the owner of the tree instead."""
    if os.geteuid() != 0:
        return ""
    st = os.stat(publish_dir)
    import grp
    import pwd
    return f"user {pwd.getpwuid(st.st_uid).pw_name} {grp.getgrgid(st.st_gid).gr_name};\n"


def free_port(host="127.0.0.1"):
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Server:
    """nginx serving publish_dir on host:port (port 0: a free one)."""

    def __init__(self, publish_dir, host="127.0.0.1", port=0, limit_rate="", nginx="nginx", fleet_upstream=""):
        self.publish_dir = publish_dir
        self.fleet_upstream = fleet_upstream
        self.host = host
        self.port = port or free_port(host)
        self.limit_rate = limit_rate
        self.nginx = shutil.which(nginx) or "/usr/sbin/nginx"
        self.prefix = None
        self.proc = None

    @property
    def url(self):
        return f"http://{self.host}:{self.port}"

    def write_conf(self):
        self.prefix = tempfile.mkdtemp(prefix="gse-serve-")
        with open(os.path.join(self.prefix, "site.conf"), "w") as f:
            f.write(render_site(self.publish_dir, f"{self.host}:{self.port}", limit_rate=self.limit_rate,
                                fleet_upstream=self.fleet_upstream))
        conf = os.path.join(self.prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(MAIN_CONF.format(prefix=self.prefix, user=worker_user(self.publish_dir)))
        return conf

    def start(self, wait=10.0):
        conf = self.write_conf()
        self.proc = subprocess.Popen([self.nginx, "-p", self.prefix, "-c", conf, "-e", "stderr"])
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"nginx exited with {self.proc.returncode}; see {self.prefix}/error.log")
            try:
                socket.create_connection((self.host, self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("nginx did not start listening")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGQUIT)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        if self.prefix:
            shutil.rmtree(self.prefix, ignore_errors=True)
            self.prefix = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


class ServeUsageError(Exception):
    """A bad argument of gse serve: one line, exit 2, nothing started."""


# The options of gse serve: (flag, metavar, default, help).  They drive the
# parser, --help and the SERVE section of man 1 gse.
OPTIONS = (
    ("--dir", "DIR", "/var/lib/gse/publish", "the publication tree to serve (an existing directory)"),
    ("--listen", "HOST:PORT", "127.0.0.1:8080",
     "address and port to listen on: an IPv4 address, [IPv6] or a host name, and a port from 1 to 65535"),
    ("--limit-rate", "RATE", "",
     "nginx limit_rate per connection: a number of bytes per second, optionally with k, m or g (e.g. 10m); "
     "empty: no limit"),
)

_RATE = re.compile(r"[1-9][0-9]{0,11}[kKmMgG]?")
# Characters that end or change an nginx directive: never in a path written into the configuration.
_UNSAFE_PATH = re.compile(r"[\s;{}'\"\\#$]")


def check_listen(text):
    """(host, port) of a --listen value; raises ServeUsageError."""
    try:
        return listen.parse(text, "--listen")
    except listen.ListenError as exc:
        raise ServeUsageError(str(exc)) from None


def check_rate(text):
    if text and not _RATE.fullmatch(text):
        raise ServeUsageError("--limit-rate=%s: expected bytes per second, optionally with k, m or g (e.g. 10m)"
                              % listen.shown(text))
    return text


def check_dir(text):
    path = os.path.abspath(text)
    if _UNSAFE_PATH.search(path) or not path.isprintable():
        raise ServeUsageError("--dir=%s: a path with blanks, quotes or ; { } # $ \\ cannot be served"
                              % listen.shown(text))
    if not os.path.isdir(path):
        raise ServeUsageError("--dir=%s: no such directory" % listen.shown(text))
    return path


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise ServeUsageError(message)


def parse_args(argv):
    p = _Parser(prog="gse serve", description="Serve a GSE publication tree with nginx.")
    for flag, metavar, default, text in OPTIONS:
        p.add_argument(flag, metavar=metavar, default=default,
                       help="%s (default: %s)" % (text, default or "none"))
    args = p.parse_args(argv)
    args.dir = check_dir(args.dir)
    args.host, args.port = check_listen(args.listen)
    args.limit_rate = check_rate(args.limit_rate)
    return args


def main(argv=None):
    try:
        args = parse_args(sys.argv[1:] if argv is None else argv)
    except ServeUsageError as exc:
        print("gse serve: %s" % " ".join(str(exc).split()), file=sys.stderr)
        return 2
    from .fleet import Receiver
    # The clients' fleet reports (docs/fleet.md) are received beside nginx.
    with Receiver(args.dir) as receiver:
        return _serve(Server(args.dir, args.host, args.port, args.limit_rate,
                             fleet_upstream="127.0.0.1:%d" % receiver.port))


def _serve(srv):
    """Run nginx for srv in the foreground until it exits, Ctrl-C, SIGTERM or SIGHUP."""
    srv.write_conf()
    print(f"gse serve: {os.path.abspath(srv.publish_dir)} on {srv.url} (Ctrl-C stops)", file=sys.stderr)

    def stop(signum, frame):
        raise KeyboardInterrupt

    # SIGTERM and SIGHUP (kill, a service manager, a closed terminal) stop the
    # server like Ctrl-C: without this Python would die at once and leave
    # nginx running on the port, its prefix behind.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGTERM, signal.SIGHUP)}
    proc = None
    try:
        proc = subprocess.Popen([srv.nginx, "-p", srv.prefix, "-c", os.path.join(srv.prefix, "nginx.conf"),
                                 "-e", "stderr"])
        return proc.wait()
    except KeyboardInterrupt:
        return 0
    finally:
        if proc is not None and proc.poll() is None:
            proc.terminate()  # nginx: fast shutdown
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        shutil.rmtree(srv.prefix, ignore_errors=True)

if __name__ == "__main__":
    sys.exit(main())
