"""Room cache bench: bytes leaving the GSE server when N clients of a room
fetch a published image (and the chunk store, when the tree has one) directly,
against through a room cache (roles/room_cache's nginx configuration), side by
side in one run.  Loopback only: the origin is `gse serve`'s nginx on
127.0.0.2, the cache nginx on 127.0.0.3; the clients are N threads of this
process (HTTP/1.1, bodies read and discarded).

    bench/room-cache [--clients 20] [--image-mb 64] [--store-mb 64] [--tree DIR]

Phases, one after the other, each bounded (--timeout seconds, every request 60 s):
  direct   N clients -> origin
  cold     N clients -> cache (empty) -> origin
  warm     N more clients -> cache (a second room wave, or the next boot)
Bytes are the response bodies the origin's access log records
($body_bytes_sent); response headers add about 300 bytes a request.
"""
import argparse
import concurrent.futures
import hashlib
import json
import os
import re
import shutil
import sys
import tempfile
import time
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

import jinja2  # noqa: E402
import yaml  # noqa: E402

from gse.serve import MAIN_CONF, Server, free_port, worker_user  # noqa: E402

TEMPLATE = os.path.join(ROOT, "roles", "room_cache", "templates", "gse-room-cache.conf.j2")
DEFAULTS = os.path.join(ROOT, "roles", "room_cache", "defaults", "main.yml")
LOG_LINE = re.compile(r'"[A-Z]+ (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) (?P<bytes>\d+)')
MAX_CLIENTS = 64
CHUNK = 256 << 10


class Cache(Server):
    """nginx with the room_cache role's site (its defaults, origin and cache dir set)."""

    def __init__(self, workdir, origin, host, port):
        super().__init__(workdir, host, port)
        self.origin = origin

    def write_conf(self):
        self.prefix = tempfile.mkdtemp(prefix="gse-room-cache-", dir=self.publish_dir)
        with open(DEFAULTS) as f:
            values = yaml.safe_load(f)
        values.update(gse_room_cache_origin=self.origin, gse_room_cache_listen=f"{self.host}:{self.port}",
                      gse_room_cache_dir=os.path.join(self.prefix, "cache"))
        with open(TEMPLATE) as f:
            site = jinja2.Template(f.read(), trim_blocks=True, keep_trailing_newline=True).render(**values)
        with open(os.path.join(self.prefix, "site.conf"), "w") as f:
            f.write(site)
        conf = os.path.join(self.prefix, "nginx.conf")
        with open(conf, "w") as f:
            f.write(MAIN_CONF.format(prefix=self.prefix, user=worker_user(self.publish_dir)))
        return conf


def make_tree(tree, image_mb, store_mb):
    """A publication tree with one image of incompressible data and, when
    store_mb, a chunk store of hash-named 256 KiB chunks (casync's layout:
    store/<first 4 hex>/<sha256>.cacnk)."""
    img = os.path.join(tree, "images", "bench")
    os.makedirs(img)
    with open(os.path.join(img, "image.tar.zst"), "wb") as f:
        for _ in range(image_mb):
            f.write(os.urandom(1 << 20))
    for name in ("image.tar.zst.asc", "SHA512SUMS", "SHA512SUMS.asc", "build-report.json"):
        with open(os.path.join(img, name), "w") as f:
            f.write("bench %s\n" % name)
    with open(os.path.join(tree, "version.txt"), "w") as f:
        f.write("serial: 1\nversion: bench\npath: images/bench/image.tar.zst\n")
    for _ in range(store_mb * (1 << 20) // CHUNK):
        data = os.urandom(CHUNK)
        digest = hashlib.sha256(data).hexdigest()
        os.makedirs(os.path.join(tree, "store", digest[:4]), exist_ok=True)
        with open(os.path.join(tree, "store", digest[:4], digest + ".cacnk"), "wb") as f:
            f.write(data)


def downloads(tree):
    """What one client fetches: the pointer, the image directory it names, every chunk."""
    with open(os.path.join(tree, "version.txt")) as f:
        path = re.search(r"^path: (\S+)$", f.read(), re.M).group(1)
    image_dir = os.path.dirname(path)
    paths = ["/version.txt"] + ["/%s/%s" % (image_dir, n)
                                for n in sorted(os.listdir(os.path.join(tree, image_dir)))]
    store = os.path.join(tree, "store")
    for d, _dirs, files in sorted(os.walk(store)):
        paths += sorted("/" + os.path.relpath(os.path.join(d, n), tree) for n in files)
    return paths


def fetch(url, deadline):
    if time.monotonic() > deadline:
        raise TimeoutError("phase deadline passed")
    n = 0
    with urllib.request.urlopen(url, timeout=60) as r:
        while True:
            block = r.read(1 << 20)
            if not block:
                return n
            n += len(block)


def client(base, paths, deadline):
    return sum(fetch(base + p, deadline) for p in paths)


def origin_log(origin):
    with open(os.path.join(origin.prefix, "access.log")) as f:
        return [m.groupdict() for m in map(LOG_LINE.search, f) if m]


def settle(origin, seen):
    """Wait (bounded) until the origin has logged every request made so far."""
    marker = "/bench-settle-%d" % time.monotonic_ns()
    try:
        urllib.request.urlopen(origin.url + marker, timeout=10)
    except urllib.error.HTTPError:
        pass
    deadline = time.monotonic() + 10
    while not any(r["path"] == marker for r in origin_log(origin)[seen:]):
        if time.monotonic() > deadline:
            raise TimeoutError("the origin's access log stays behind")
        time.sleep(0.05)


def phase(name, base, origin, paths, clients, timeout):
    seen = len(origin_log(origin))
    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        got = list(pool.map(lambda _: client(base, paths, start + timeout), range(clients)))
    wall = time.monotonic() - start
    settle(origin, seen)
    reqs = [r for r in origin_log(origin)[seen:] if not r["path"].startswith("/bench-settle-")]
    by_kind = {}
    for r in reqs:
        kind = r["path"].split("/")[1] if r["path"].count("/") > 1 else r["path"][1:]
        by_kind[kind] = by_kind.get(kind, 0) + int(r["bytes"])
    return {"phase": name, "clients": clients, "wall_s": round(wall, 2),
            "bytes_to_clients": sum(got), "origin_requests": len(reqs),
            "origin_bytes": sum(int(r["bytes"]) for r in reqs), "origin_bytes_by_kind": by_kind}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--clients", type=int, default=20, help="clients per phase (1-%d)" % MAX_CLIENTS)
    p.add_argument("--image-mb", type=int, default=64, help="size of the generated image")
    p.add_argument("--store-mb", type=int, default=64, help="size of the generated chunk store (0: none)")
    p.add_argument("--tree", help="an existing publication tree instead of a generated one")
    p.add_argument("--timeout", type=float, default=300, help="seconds per phase at most")
    args = p.parse_args(argv)
    if not 1 <= args.clients <= MAX_CLIENTS:
        p.error("--clients: 1 to %d" % MAX_CLIENTS)
    work = tempfile.mkdtemp(prefix="gse-room-cache-bench-")
    os.chmod(work, 0o755)
    try:
        tree = args.tree
        if not tree:
            tree = os.path.join(work, "publish")
            make_tree(tree, args.image_mb, args.store_mb)
        paths = downloads(tree)
        with Server(tree, "127.0.0.2", free_port("127.0.0.2")) as origin, \
                Cache(work, origin.url, "127.0.0.3", free_port("127.0.0.3")) as cache:
            results = [phase("direct", origin.url, origin, paths, args.clients, args.timeout),
                       phase("cold", cache.url, origin, paths, args.clients, args.timeout),
                       phase("warm", cache.url, origin, paths, args.clients, args.timeout)]
    finally:
        shutil.rmtree(work)
    one = results[0]["bytes_to_clients"] // args.clients
    print("%d clients, %d files per client, %.1f MiB per client" % (args.clients, len(paths), one / 2**20))
    print("%-7s %10s %16s %18s %16s" % ("phase", "wall", "origin requests", "origin MiB", "clients got MiB"))
    for r in results:
        print("%-7s %9.2fs %16d %18.1f %16.1f" % (r["phase"], r["wall_s"], r["origin_requests"],
                                                  r["origin_bytes"] / 2**20, r["bytes_to_clients"] / 2**20))
    direct, cold = results[0]["origin_bytes"], results[1]["origin_bytes"]
    print("origin bytes, direct / through the cache (cold): %.1fx" % (direct / max(cold, 1)))
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
