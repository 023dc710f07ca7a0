"""One simulated client of the boot tests: its disk, the publication tree it
is served, and its boots; and a server that answers every request with an
error."""
import contextlib
import http.server
import os
import threading
import urllib.error
import urllib.request

import pubtree
import testimage
import vm
from gse.serve import Server


class Client:
    """One client disk, its publication tree and the boots so far."""

    def __init__(self, controller, signing, workdir):
        self.controller = controller
        self.gnupghome = signing[0]
        self.work = workdir
        self.tree = os.path.join(workdir, "tree")
        os.makedirs(self.tree)
        self.disk = vm.make_disk(os.path.join(workdir, "disk.img"), "1G")
        self.serial = 0
        self.boots = 0

    def publish(self, version, behaviour="healthy", payload=0):
        tarball = testimage.make_image(self.work, version, behaviour, payload)
        pubtree.add_image(self.gnupghome, self.tree, version, tarball)
        self.serial += 1
        pubtree.set_version(self.gnupghome, self.tree, self.serial, version)
        return os.path.join(self.tree, "images", version, "image.tar.zst")

    def boot(self, cmdline="", server=True, limit_rate="", port=None, **kw):
        """Boot once against the tree served by nginx; server=False: nothing
        listens on the port; port: a server of the caller's on that port."""
        self.boots += 1
        log = open(os.path.join(self.work, f"boot-{self.boots}.log"), "w")
        try:
            if port:
                return vm.boot(self.controller["kernel"], self.controller["initrd"], self.disk,
                               f"gse.server=http://10.0.2.2:{port} {cmdline}", log=log, **kw)
            if server:
                with Server(self.tree, limit_rate=limit_rate) as srv:
                    return vm.boot(self.controller["kernel"], self.controller["initrd"], self.disk,
                                   f"gse.server=http://10.0.2.2:{srv.port} {cmdline}", log=log, **kw)
            # A port nothing listens on: the server is down.
            return vm.boot(self.controller["kernel"], self.controller["initrd"], self.disk,
                           f"gse.server=http://10.0.2.2:{Server(self.tree).port} {cmdline}", log=log, **kw)
        finally:
            log.close()


def booted(out):
    for line in out.splitlines():
        if line.startswith("GSETEST booted version="):
            return line.split("=", 1)[1].strip()
    return None


@contextlib.contextmanager
def ErrorServer(status=503):
    """An HTTP server on loopback that answers every request with status;
    yields its port."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    try:
        yield srv.server_address[1]
    finally:
        srv.shutdown()
        srv.server_close()


def http_get(url, headers=None):
    """(status, headers, body) of a GET; an HTTP error status is a result."""
    req = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), b""
