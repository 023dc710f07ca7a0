"""The server block of the server role, served by `gse serve`'s nginx on
loopback: static files, range requests, caching headers, hidden state; and
the fleet check (20 concurrent clients get identical, verified data)."""
import os
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

import pubtree
from client import http_get as get
import testimage
from gse.serve import Server, free_port, render_site, main as serve_main

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "..", "bench", "controller"))
import fleet  # noqa: E402


@pytest.fixture(scope="module")
def tree(signing, tmp_path_factory):
    work = str(tmp_path_factory.mktemp("serve"))
    home, keyring = signing
    t = os.path.join(work, "tree")
    os.makedirs(os.path.join(t, ".gse"))
    open(os.path.join(t, ".gse", "serial"), "w").write("1\n")
    pubtree.add_image(home, t, "v1", testimage.make_image(work, "v1", payload_bytes=2 << 20))
    pubtree.set_version(home, t, 1, "v1")
    pubtree.add_config(home, t, 1, {"controller.conf": "GSE_TMPFS_EXTRA=/var/tmp\n"})
    return t


def test_site_template_renders_the_tree():
    site = render_site("/srv/pub", "127.0.0.1:8080", limit_rate="5m")
    assert "root /srv/pub;" in site
    assert "listen 127.0.0.1:8080;" in site
    assert "limit_rate 5m;" in site
    assert "limit_rate" not in render_site("/srv/pub", "80")


def test_nginx_serves_the_publication_tree(tree):
    with Server(tree) as srv:
        status, headers, body = get(f"{srv.url}/version.txt")
        assert status == 200 and body.startswith(b"-----BEGIN PGP SIGNED MESSAGE-----")
        assert headers["Cache-Control"] == "no-cache"
        img = "/images/v1/image.tar.zst"
        status, headers, body = get(srv.url + img, {"Range": "bytes=10-19"})
        assert status == 206 and len(body) == 10
        assert body == open(tree + img, "rb").read()[10:20]
        assert "immutable" in headers["Cache-Control"]
        assert get(f"{srv.url}/.gse/serial")[0] == 404


def test_nginx_serves_the_network_boot_script_uncached(tree):
    # boot.ipxe moves with version.txt: revalidated like the pointers.
    with open(os.path.join(tree, "boot.ipxe"), "w") as f:
        f.write("#!ipxe\nkernel images/v1/vmlinuz\n")
    try:
        with Server(tree) as srv:
            status, headers, body = get(f"{srv.url}/boot.ipxe")
            assert status == 200 and body.startswith(b"#!ipxe\n")
            assert headers["Cache-Control"] == "no-cache"
    finally:
        os.unlink(os.path.join(tree, "boot.ipxe"))


def test_nginx_serves_a_pinned_groups_pointer_uncached(tree):
    # groups/<GROUP>/version.txt moves with every pin and unpin: revalidated like version.txt.
    os.makedirs(os.path.join(tree, "groups", "room2"))
    shutil.copy(os.path.join(tree, "version.txt"), os.path.join(tree, "groups", "room2", "version.txt"))
    try:
        with Server(tree) as srv:
            status, headers, body = get(f"{srv.url}/groups/room2/version.txt")
            assert status == 200 and body.startswith(b"-----BEGIN PGP SIGNED MESSAGE-----")
            assert headers["Cache-Control"] == "no-cache"
    finally:
        shutil.rmtree(os.path.join(tree, "groups"))


def test_unfinished_publications_are_not_served(tree):
    # A publication in progress (images/.staging-*, config/.staging-*) is
    # never visible, though images/ and config/ are prefix locations.
    had_store = os.path.isdir(os.path.join(tree, "store"))
    for d in ("images/.staging-v2", "config/.staging-2", "store/.staging-x"):
        os.makedirs(os.path.join(tree, d), exist_ok=True)
        with open(os.path.join(tree, d, "file"), "w") as f:
            f.write("unfinished\n")
    try:
        with Server(tree) as srv:
            for d in ("images/.staging-v2", "config/.staging-2", "store/.staging-x"):
                assert get(f"{srv.url}/{d}/file")[0] == 404, d
            assert get(f"{srv.url}/images/v1/SHA512SUMS")[0] == 200
    finally:
        # The module's tree again as the other tests know it (plain files: no mounts below).
        for d in ("images/.staging-v2", "config/.staging-2", "store/.staging-x" if had_store else "store"):
            shutil.rmtree(os.path.join(tree, d))


def test_gse_serve_refuses_a_missing_tree(tmp_path):
    assert serve_main(["--dir", str(tmp_path / "nope")]) == 2


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_gse_serve_stops_nginx_when_it_is_stopped(tree, sig, tmp_path):
    """kill, a service manager or a closed terminal stop nginx with it: the
    port is free again and the private prefix is gone."""
    port = free_port()
    top = os.path.join(os.path.dirname(__file__), "..", "..")
    proc = subprocess.Popen([sys.executable, "-m", "gse.serve", "--dir", tree, "--listen", f"127.0.0.1:{port}"],
                            cwd=top, env=dict(os.environ, TMPDIR=str(tmp_path)),
                            stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
                time.sleep(0.05)
        assert [p.name[:10] for p in tmp_path.iterdir()] == ["gse-serve-"]
        proc.send_signal(sig)
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        for pidfile in tmp_path.glob("gse-serve-*/nginx.pid"):  # an nginx left behind
            try:
                os.kill(int(pidfile.read_text()), signal.SIGTERM)
            except (ValueError, OSError):
                pass
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    assert list(tmp_path.iterdir()) == []


def test_fleet_of_20_clients_gets_identical_verified_data(tree, signing):
    with Server(tree) as srv:
        res = fleet.run(srv.url, signing[1], clients=20)
    assert res["identical"] is True
    assert res["result"]["version.txt"][1] == "images/v1/image.tar.zst"
    assert res["result"]["version.txt"][2] == pubtree.sha512(tree + "/images/v1/image.tar.zst")


def test_fleet_check_detects_a_tampered_image(tree, signing, tmp_path):
    import shutil
    bad = str(tmp_path / "bad")
    shutil.copytree(tree, bad)
    with open(bad + "/images/v1/image.tar.zst", "ab") as f:
        f.write(b"x")
    with Server(bad) as srv:
        with pytest.raises(ValueError, match="digest or size"):
            fleet.run(srv.url, signing[1], clients=2)
