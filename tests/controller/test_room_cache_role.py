"""The room_cache role applied for real to this machine (playbooks/room_cache.yml
on localhost, nginx started by the role's own service task) in front of an
origin served by `gse serve`'s nginx (the server role's site, its own prefix
and access log): objects reach the origin once however often and however
simultaneously clients fetch them, the pointers are revalidated and move,
.gse/ is refused without asking the origin.

The host's nginx setup stays as it is: the same private mount namespace as
test_server_role.py (its helpers are reused), the cache directory under the
test's own directory."""
import json
import os
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

import pubtree
import testimage
from client import http_get as get
from gse.serve import Server, free_port
from test_server_role import PID, WRAPPER, prepare_state, recap, role_base, skip_unless_role_can_run, snapshot, stop

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
LOG_LINE = re.compile(r'"(?P<method>[A-Z]+) (?P<path>\S+) HTTP/[\d.]+" (?P<status>\d{3}) (?P<bytes>\d+)')


class Origin(Server):
    """gse serve's nginx; what reached it, read from its access log."""

    def requests(self, path=None):
        with open(os.path.join(self.prefix, "access.log")) as f:
            found = [m.groupdict() for m in map(LOG_LINE.search, f) if m]
        return [r for r in found if path is None or r["path"] == path]

    def settle(self):
        """Wait until every request made so far is in the log: a marker request
        sent afterwards appears (nginx logs a request when it is finished)."""
        marker = "/settle-%d" % time.monotonic_ns()
        assert get(self.url + marker)[0] == 404
        deadline = time.monotonic() + 10
        while not self.requests(marker):
            assert time.monotonic() < deadline, "the origin's access log stays behind"
            time.sleep(0.05)


@pytest.fixture(scope="module")
def cache(signing):
    skip_unless_role_can_run()
    base, tree, state = role_base("gse-room-cache-")
    home = signing[0]
    for version, size in (("v1", 1 << 20), ("v2", 4 << 20)):
        pubtree.add_image(home, tree, version, testimage.make_image(base, version, payload_bytes=size))
    pubtree.set_version(home, tree, 1, "v1")
    pubtree.add_config(home, tree, 1, {"controller.conf": "GSE_TMPFS_EXTRA=/var/tmp\n"})
    os.makedirs(os.path.join(tree, "store"))
    open(os.path.join(tree, "store", "0a1b.cacnk"), "wb").write(os.urandom(4096))
    os.makedirs(os.path.join(tree, "images", ".staging-v3"))
    open(os.path.join(tree, "images", ".staging-v3", "image.tar.zst"), "wb").write(b"unfinished")
    prepare_state(state)

    origin = Origin(tree)
    port = free_port()
    inventory = os.path.join(base, "hosts")
    open(inventory, "w").write("[gse_room_caches]\nlocalhost ansible_connection=local ansible_become_method=su"
                               f" ansible_python_interpreter={sys.executable}\n")
    extra = {"gse_room_cache_origin": origin.url, "gse_room_cache_listen": f"127.0.0.1:{port}",
             "gse_room_cache_dir": os.path.join(base, "cache", "room"), "gse_room_cache_max_size": "64m",
             "gse_room_cache_pointer_valid": "1s", "gse_room_cache_install": False}

    def run(**more):
        return subprocess.run(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", WRAPPER, "sh", state,
             os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", inventory,
             "-e", json.dumps(dict(extra, **more)), os.path.join(ROOT, "playbooks", "room_cache.yml")],
            capture_output=True, text=True, cwd=ROOT, timeout=600)

    before = snapshot()
    try:
        with origin:
            yield {"url": f"http://127.0.0.1:{port}", "tree": tree, "home": home, "origin": origin,
                   "run": run, "first": run(), "before": before, "state": state}
    finally:
        stop(base, state + PID)
        shutil.rmtree(base)


def test_role_applies(cache):
    assert recap(cache["first"]) > 0
    # The site file is in the namespace's private /etc/nginx only.
    site = open(cache["state"] + "/etc/nginx/conf.d/gse-room-cache.conf").read()
    assert "proxy_cache_lock on;" in site and cache["origin"].url in site
    assert not os.path.exists("/etc/nginx/conf.d/gse-room-cache.conf")


def test_object_fetched_twice_reaches_the_origin_once(cache):
    url, origin, tree = cache["url"], cache["origin"], cache["tree"]
    img = "/images/v1/image.tar.zst"
    data = open(tree + img, "rb").read()
    status, headers, body = get(url + img)
    assert (status, headers["X-GSE-Cache"], body == data) == (200, "MISS", True)
    # The origin's headers reach the client through the cache.
    assert "immutable" in headers["Cache-Control"]
    status, headers, body = get(url + img)
    assert (status, headers["X-GSE-Cache"], body == data) == (200, "HIT", True)
    status, headers, body = get(url + img, {"Range": "bytes=10-19"})
    assert (status, headers["X-GSE-Cache"], body) == (206, "HIT", data[10:20])
    for path in ("/store/0a1b.cacnk", "/config/1/config.d.tar.gz"):
        assert [get(url + path)[1]["X-GSE-Cache"] for _ in range(2)] == ["MISS", "HIT"]
    origin.settle()
    for path in (img, "/store/0a1b.cacnk", "/config/1/config.d.tar.gz"):
        assert [r["status"] for r in origin.requests(path)] == ["200"], path


def test_simultaneous_misses_make_one_origin_request(cache):
    url, origin, tree = cache["url"], cache["origin"], cache["tree"]
    img = "/images/v2/image.tar.zst"
    data = open(tree + img, "rb").read()
    with ThreadPoolExecutor(20) as pool:
        results = list(pool.map(lambda _: get(url + img), range(20)))
    assert all(status == 200 and body == data for status, _h, body in results)
    origin.settle()
    assert len(origin.requests(img)) == 1


def test_pointer_revalidates_and_moves(cache):
    url, origin, tree = cache["url"], cache["origin"], cache["tree"]
    first = open(tree + "/version.txt", "rb").read()
    status, headers, body = get(url + "/version.txt")
    assert status == 200 and body == first and headers["Cache-Control"] == "no-cache"
    # Past gse_room_cache_pointer_valid (1s) the cache asks again, conditionally: 304, no body.
    deadline = time.monotonic() + 30
    while True:
        status, headers, body = get(url + "/version.txt")
        assert status == 200 and body == first
        if headers["X-GSE-Cache"] == "REVALIDATED":
            break
        assert time.monotonic() < deadline, "version.txt was never revalidated"
        time.sleep(0.2)
    origin.settle()
    assert "304" in [r["status"] for r in origin.requests("/version.txt")]
    # A new publication reaches the room within the validity.
    pubtree.set_version(cache["home"], tree, 2, "v2")
    second = open(tree + "/version.txt", "rb").read()
    assert second != first
    deadline = time.monotonic() + 30
    while get(url + "/version.txt")[2] != second:
        assert time.monotonic() < deadline, "the cache kept the old version.txt"
        time.sleep(0.2)


def test_server_state_and_staging_refused_without_asking_the_origin(cache):
    url, origin = cache["url"], cache["origin"]
    for path in ("/.gse/serial", "/.gse/", "/images/.staging-v3/image.tar.zst", "/store/.staging-1/x"):
        assert get(url + path)[0] == 404, path
    origin.settle()
    assert not [r for r in origin.requests() if ".gse" in r["path"] or ".staging-" in r["path"]]


def test_bad_origin_is_refused_before_anything_changes(cache):
    res = cache["run"](gse_room_cache_origin="http://10.0.0.1/gse/")
    assert res.returncode != 0 and "without a path" in res.stdout, res.stdout[-2000:]
    assert recap_changed(res) == 0


def recap_changed(res):
    m = re.search(r"localhost\s+: ok=\d+\s+changed=(\d+)", res.stdout)
    return int(m.group(1)) if m else -1


def test_second_run_changes_nothing(cache):
    assert recap(cache["run"]()) == 0


def test_host_nginx_setup_untouched(cache):
    assert snapshot() == cache["before"]
