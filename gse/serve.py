"""`gse serve`: serve a publication tree with nginx, for a quick start.

It runs nginx in the foreground with a private prefix (no system
configuration touched) and the same server block as the `server` role
(roles/server/templates/gse-site.conf.j2).  For a permanent server use the
role (playbooks/server.yml).
"""
import argparse
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import jinja2

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


def render_site(publish_dir, listen, server_name="_", limit_rate=""):
    """The server block for publish_dir, from the server role's template."""
    with open(SITE_TEMPLATE) as f:
        tmpl = jinja2.Template(f.read(), trim_blocks=True, keep_trailing_newline=True)
    return tmpl.render(gse_publish_dir=os.path.abspath(publish_dir), gse_server_listen=listen,
                       gse_server_name=server_name, gse_server_limit_rate=limit_rate)


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

    def __init__(self, publish_dir, host="127.0.0.1", port=0, limit_rate="", nginx="nginx"):
        self.publish_dir = publish_dir
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
            f.write(render_site(self.publish_dir, f"{self.host}:{self.port}", limit_rate=self.limit_rate))
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


def parse_args(argv):
    p = argparse.ArgumentParser(prog="gse serve", description="Serve a GSE publication tree with nginx.")
    p.add_argument("--dir", default="/var/lib/gse/publish", help="the publication tree")
    p.add_argument("--listen", default="127.0.0.1:8080", help="HOST:PORT (default 127.0.0.1:8080)")
    p.add_argument("--limit-rate", default="", help="nginx limit_rate per connection, e.g. 10m")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not os.path.isdir(args.dir):
        print(f"gse serve: {args.dir}: no such directory", file=sys.stderr)
        return 2
    host, _, port = args.listen.rpartition(":")
    srv = Server(args.dir, host or "127.0.0.1", int(port), args.limit_rate)
    srv.write_conf()
    print(f"gse serve: {os.path.abspath(args.dir)} on {srv.url} (Ctrl-C stops)", file=sys.stderr)

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
