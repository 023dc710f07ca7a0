"""gse fleet and the report endpoint: real nginx (the server role's site, as gse serve renders it) in front
of the receiver; reports posted over HTTP, then listed by the gse command."""
import json
import os
import subprocess
import sys
import urllib.error
import urllib.request

import pytest

from gse.fleet import Receiver
from gse.serve import Server

GSE = os.path.join(os.path.dirname(sys.executable), "gse")
TOKEN = "k" * 43
MID = "fedcba9876543210fedcba9876543210"


def post(url, body, token=TOKEN, method="POST"):
    req = urllib.request.Request(url + "/report", data=body, method=method,
                                 headers={"Authorization": "Bearer " + token} if token else {})
    try:
        with urllib.request.urlopen(req, timeout=30) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode(errors="replace")


def report(**kw):
    return json.dumps(dict(dict(reporter="controller", machine_id=MID, mac="52:54:00:aa:bb:cc", hostname="pc-7",
                                group="room2", version="v3", serial="3", health="healthy"), **kw)).encode()


@pytest.fixture
def served(tmp_path):
    tree = tmp_path / "publish"
    (tree / ".gse").mkdir(parents=True)
    with Receiver(str(tree)) as receiver, Server(str(tree), fleet_upstream="127.0.0.1:%d" % receiver.port) as srv:
        yield srv.url, tree


def stored(tree):
    top = tree / ".gse" / "fleet"
    return sorted(os.path.relpath(os.path.join(d, f), top) for d, _, fs in os.walk(top) for f in fs)


def test_reports_through_nginx_and_gse_fleet(served):
    url, tree = served
    assert post(url, report()) == (200, "recorded %s-525400aabbcc\n" % MID)
    # Forged (another token), too big (nginx refuses before the receiver reads it), not a POST, not JSON.
    assert post(url, report(version="evil"), token="x" * 40)[0] == 403
    assert post(url, b"{" + b" " * (70 * 1024) + b"}")[0] == 413
    assert post(url, None, method="GET")[0] == 403
    assert post(url, b"not json")[0] == 400
    assert post(url, report(), token=None)[0] == 401
    # Server-side state is never served.
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(url + "/.gse/fleet/tokens/%s-525400aabbcc" % MID, timeout=30)
    assert e.value.code == 404
    assert stored(tree) == ["conflicts/%s-525400aabbcc" % MID, "hosts/%s-525400aabbcc.controller.json" % MID,
                            "tokens/%s-525400aabbcc" % MID]

    listed = subprocess.run([GSE, "fleet", "--dir", str(tree), "--json"], capture_output=True, text=True,
                            timeout=120)
    assert listed.returncode == 0, listed.stderr
    (host,) = json.loads(listed.stdout)
    assert (host["hostname"], host["group"], host["version"], host["serial"], host["health"]) == \
        ("pc-7", "room2", "v3", "3", "healthy")
    assert host["flags"] == ["duplicate id"]  # the forged report was counted as a conflict
    text = subprocess.run([GSE, "fleet", "--dir", str(tree)], capture_output=True, text=True, timeout=120)
    lines = text.stdout.splitlines()
    assert lines[0].split()[:3] == ["HOST", "GROUP", "VERSION"] and lines[1].split()[:4] == ["pc-7", "room2", "v3", "3"]


@pytest.mark.parametrize("args, words", [
    (["--stale-days=0"], "1 to 3650"),
    (["--dir=/nonexistent/gse"], "no such directory"),
    (["--receive=nohost:99999"], "the port must be a number"),
])
def test_bad_input(tmp_path, args, words):
    r = subprocess.run([GSE, "fleet", *args] + ([] if any(a.startswith("--dir") for a in args)
                                                 else ["--dir", str(tmp_path)]),
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and words in r.stderr and r.stderr.startswith("gse fleet: "), r.stderr
    assert os.listdir(tmp_path) == []
