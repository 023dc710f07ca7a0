"""One simulated client of the boot tests: its disk, the publication tree it
is served, and its boots; small loopback HTTP servers (for answers nginx
does not give: errors, stalls, bodies without a Content-Length) and a GET
helper."""
import contextlib
import functools
import http.server
import os
import socket
import threading
import urllib.error
import urllib.request

import pubtree
import testimage
import vm
from gse.serve import Server


class Client:
    """One client disk, its publication tree and the boots so far."""

    def __init__(self, controller, signing, workdir, casync=False):
        self.controller = controller
        self.gnupghome = signing[0]
        self.work = workdir
        self.tree = os.path.join(workdir, "tree")
        os.makedirs(self.tree)
        self.disk = vm.make_disk(os.path.join(workdir, "disk.img"), "1G")
        self.serial = 0
        self.boots = 0
        # version.txt's fields (what boot.ipxe is written from).
        self.pointer = None
        # Format 2: every image also as a casync index + chunk store.
        self.casync = casync

    def publish(self, version, behaviour="healthy", payload=0, payload_seed=None, extra=None, image=None, pair=None,
                tarball_index=False, **pointer):
        """Build and publish version (the next serial); pointer overrides
        fields of version.txt; image: more arguments of testimage.make_root;
        pair: the image's controller ({"kernel", "initrd"}) published with it;
        tarball_index: the tarball's blob index too (True, or
        pubtree.make_tarball_index's arguments).
        The image root stays in root(version)."""
        tarball = testimage.make_image(self.work, version, behaviour, payload, extra, payload_seed, **(image or {}))
        pubtree.add_image(self.gnupghome, self.tree, version, tarball,
                          root=self.root(version) if self.casync else None, pair=pair, tarball_index=tarball_index)
        self.serial += 1
        self.pointer = pubtree.set_version(self.gnupghome, self.tree, self.serial, version, **pointer)
        return os.path.join(self.tree, "images", version, "image.tar.zst")

    def root(self, version):
        return os.path.join(self.work, f"root-{version}")

    def boot(self, cmdline="", server=True, limit_rate="", port=None, netboot=False, **kw):
        """Boot once against the tree served by nginx; server=False: nothing
        listens on the port; port: a server of the caller's on that port.
        netboot: the firmware (iPXE) boots the controller version.txt names
        through the tree's boot.ipxe, written here as part L writes it (with
        this boot's server URL on the kernel command line)."""
        self.boots += 1
        log = open(os.path.join(self.work, f"boot-{self.boots}.log"), "w")
        try:
            with contextlib.ExitStack() as stack:
                if not port:
                    srv = Server(self.tree, limit_rate=limit_rate)
                    if server:
                        stack.enter_context(srv)
                    # Not started (server=False): a port nothing listens on.
                    port = srv.port
                if netboot:
                    # Part L's own generator of boot.ipxe.
                    from ansible_collections.gse.stateless.plugins.module_utils import pubtree as tree
                    with open(os.path.join(self.tree, tree.BOOT_SCRIPT), "w") as f:
                        f.write(tree.boot_script(self.pointer, f"{vm.BASE_CMDLINE} gse.server=http://10.0.2.2:{port} "
                                                              f"{cmdline}".strip()))
                    return vm.boot(None, None, self.disk, log=log,
                                   bootfile=f"http://10.0.2.2:{port}/{tree.BOOT_SCRIPT}", **kw)
                return vm.boot(self.controller["kernel"], self.controller["initrd"], self.disk,
                               f"gse.server=http://10.0.2.2:{port} {cmdline}", log=log, **kw)
        finally:
            log.close()


def booted(out):
    for line in out.splitlines():
        if line.startswith("GSETEST booted version="):
            return line.split("=", 1)[1].strip()
    return None


@contextlib.contextmanager
def loopback_http(directory=None, error_status=500, error_prefix=None, stall_after=None, stall_prefix="/",
                  served=None, stalled=None, cut=False):
    """A threaded HTTP server on 127.0.0.1 (a free port); yields its port.
    Paths under error_prefix ("/" for all) get error_status; the others are
    the files of directory (404 without one).  With stall_after, a file
    under stall_prefix is answered with its full Content-Length but only
    its first stall_after bytes, then the connection stays open and silent
    until the server stops (a server that stalls in the middle of an
    object); stalled (a threading.Event) is set when the first such answer
    starts to stall.  With cut, the connection is closed there instead (a
    server that breaks off).  served (a list) receives (path, bytes sent)
    of every file answered."""
    stop = threading.Event()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            if error_prefix is not None and self.path.startswith(error_prefix):
                self.send_error(error_status)
            elif directory is None:
                self.send_error(404)
            elif stall_after is not None and self.path.startswith(stall_prefix):
                f = self.send_head()
                if f:
                    with f:
                        self.wfile.write(f.read(stall_after))
                        self.wfile.flush()
                    if cut:
                        self.close_connection = True
                        self.connection.shutdown(socket.SHUT_RDWR)
                        return
                    if stalled is not None:
                        stalled.set()
                    stop.wait(600)
            else:
                super().do_GET()

        def copyfile(self, source, outputfile):
            n = 0
            while True:
                block = source.read(1 << 16)
                if not block:
                    break
                outputfile.write(block)
                n += len(block)
            if served is not None:
                served.append((self.path, n))

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(directory or "/nonexistent")))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv.server_address[1]
    finally:
        stop.set()
        srv.shutdown()
        srv.server_close()


@contextlib.contextmanager
def chunked_http(answer):
    """A threaded HTTP/1.1 server on 127.0.0.1 (a free port) that answers
    every GET and POST with Transfer-Encoding: chunked and no Content-Length
    (curl cannot know the size before the body ends: its --max-filesize
    does not apply).  answer(path, stop) gives the body as an iterable of
    byte blocks (a 200), (STATUS, blocks), or None for a 404 with a
    Content-Length; it may block on stop (a threading.Event
    set when the server stops) to hold a connection silent, or never end
    (a server that sends endlessly).  Yields (port, sent): sent (a list)
    receives (path, bytes sent) when an answer ends, because the body ended
    or the client closed the connection."""
    stop = threading.Event()
    sent = []

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def answer(self):
            body = answer(self.path, stop)
            if body is None:
                self.send_error(404)
                return
            status = 200
            if isinstance(body, tuple):
                status, body = body
            self.send_response(status)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            n = 0
            try:
                for block in body:
                    if block:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
                        n += len(block)
                self.wfile.write(b"0\r\n\r\n")
                self.wfile.flush()
            except OSError:
                self.close_connection = True
            sent.append((self.path, n))

        def do_GET(self):
            self.answer()

        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            self.answer()

        def log_message(self, *args):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield srv.server_address[1], sent
    finally:
        stop.set()
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
