"""gse.stateless.stage3 through ansible-playbook against a signed fake autobuilds tree.

The tree is real data: a small stage3 tarball, its DIGESTS and sha256 lists
and the pointer, signed with a fresh ed25519 key made in a temporary
GNUPGHOME, served over HTTP on 127.0.0.1 by a handler that honours Range and
records the requests it gets.
"""
import hashlib
import http.server
import io
import json
import os
import subprocess
import sys
import tarfile
import threading

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BUILD = "20261125T170321Z"
VARIANT = "amd64-openrc"
NAME = "stage3-%s-%s.tar.xz" % (VARIANT, BUILD)


def run_module(tmp_path, args, check=False):
    out = tmp_path / "result.json"
    if out.exists():
        out.unlink()
    play = [{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {"gse.stateless.stage3": args, "register": "r", "ignore_errors": True, "check_mode": check},
            {"ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": str(out)},
             "check_mode": False},
        ],
    }]
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps(play))
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
         "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable, str(playbook)],
        cwd=ROOT, capture_output=True, text=True)
    assert out.exists(), proc.stdout + proc.stderr
    return json.loads(out.read_text())


class Signer(object):
    """gpg with a throw-away ed25519 key in its own GNUPGHOME."""

    def __init__(self, home):
        self.home = str(home)
        os.makedirs(self.home, 0o700)
        self.gpg("--quick-generate-key", "--passphrase", "", "GSE test release <release@example.invalid>",
                 "ed25519", "sign", "never")

    def gpg(self, *args):
        return subprocess.run(["gpg", "--homedir", self.home, "--batch", "--yes", "--pinentry-mode", "loopback"]
                              + list(args), check=True, capture_output=True)

    def export(self, path):
        path.write_bytes(self.gpg("--armor", "--export").stdout)

    def clearsign(self, text, path):
        path.write_bytes(subprocess.run(
            ["gpg", "--homedir", self.home, "--batch", "--clearsign", "--digest-algo", "SHA512"],
            input=text.encode(), check=True, capture_output=True).stdout)

    def detach(self, path):
        self.gpg("--armor", "--detach-sign", "--output", str(path) + ".asc", str(path))


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    base = tmp_path_factory.mktemp("keys")
    good = Signer(base / "good")
    good.export(base / "release.asc")
    return good, Signer(base / "other"), base / "release.asc"


def make_tarball(path):
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w:xz") as tar:
        for i in range(40):
            # Incompressible content so the file has some size to resume into.
            blob = hashlib.sha512(b"%d" % i).digest() * 64
            info = tarfile.TarInfo("usr/share/gse-test/file%02d" % i)
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    path.write_bytes(data.getvalue())


def publish(root, signer, tamper=None):
    """Write releases/amd64/autobuilds under ``root`` signed by ``signer``."""
    auto = root / "releases" / "amd64" / "autobuilds"
    build = auto / BUILD
    build.mkdir(parents=True)
    tarball = build / NAME
    make_tarball(tarball)
    data = tarball.read_bytes()
    sha512 = hashlib.sha512(data).hexdigest()
    if tamper == "digests":
        sha512 = hashlib.sha512(b"something else").hexdigest()
    digests = "# BLAKE2B HASH\n%s  %s\n# SHA512 HASH\n%s  %s\n" % (
        hashlib.blake2b(data).hexdigest(), NAME, sha512, NAME)
    if tamper == "unsigned-digests":
        (build / (NAME + ".DIGESTS")).write_text(digests)
    else:
        signer.clearsign(digests, build / (NAME + ".DIGESTS"))
    signer.clearsign("# SHA256 HASH\n%s  %s\n" % (hashlib.sha256(data).hexdigest(), NAME),
                     build / (NAME + ".sha256"))
    signer.detach(tarball)
    pointer = "# Latest as of Tue, 25 Nov 2026 17:03:21 +0000\n# ts=1795633401\n%s/%s %d\n" % (
        BUILD, NAME, len(data))
    if tamper == "unsigned-pointer":
        (auto / ("latest-stage3-%s.txt" % VARIANT)).write_text(pointer)
    else:
        signer.clearsign(pointer, auto / ("latest-stage3-%s.txt" % VARIANT))
    if tamper == "tarball":
        # Same size, different bytes: only the signature and digests can tell.
        broken = bytearray(data)
        broken[len(broken) // 2] ^= 0xFF
        tarball.write_bytes(bytes(broken))
    return tarball


class RangeHandler(http.server.SimpleHTTPRequestHandler):
    """Static files with single-range support; requests are appended to ``self.server.seen``."""

    def log_message(self, *args):
        pass

    def do_GET(self):
        self.server.seen.append((self.path, self.headers.get("Range")))
        path = self.translate_path(self.path)
        if not os.path.isfile(path):
            self.send_error(404)
            return
        with open(path, "rb") as f:
            data = f.read()
        spec = self.headers.get("Range")
        if spec and spec.startswith("bytes=") and spec.endswith("-"):
            start = int(spec[len("bytes="):-1])
            if start >= len(data):
                self.send_error(416)
                return
            self.send_response(206)
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
            body = data[start:]
        else:
            self.send_response(200)
            body = data
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def mirror(tmp_path):
    root = tmp_path / "mirror"
    root.mkdir()
    handler = lambda *a, **kw: RangeHandler(*a, directory=str(root), **kw)  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.seen = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield root, "http://127.0.0.1:%d" % server.server_address[1], server.seen
    finally:
        server.shutdown()
        server.server_close()


def args_for(url, dest, keyring, **extra):
    return dict(base_url=url, variant=VARIANT, dest=str(dest), keyring=str(keyring), **extra)


def leftovers(dest):
    return sorted(p.name for p in dest.iterdir()) if dest.exists() else []


def test_good_run_then_not_changed(tmp_path, mirror, keys):
    root, url, seen = mirror
    good, _, keyring = keys
    tarball = publish(root, good)
    dest = tmp_path / "dest"
    r = run_module(tmp_path, args_for(url, dest, keyring))
    assert not r.get("failed"), r
    assert r["changed"] is True and r["downloaded"] is True
    assert r["path"] == str(dest / NAME)
    assert r["sha512"] == hashlib.sha512(tarball.read_bytes()).hexdigest()
    assert r["date"] == BUILD
    assert r["latest_as_of"] == "Tue, 25 Nov 2026 17:03:21 +0000"
    assert r["verified"]["digests"] == ["BLAKE2B", "SHA512"]
    assert r["verified"]["sha256"] == ["SHA256"]
    assert r["verified"]["pointer"] == r["verified"]["signature"] == r["verified"]["digests_signer"]
    assert leftovers(dest) == sorted([NAME, NAME + ".DIGESTS", NAME + ".asc", NAME + ".sha256"])

    again = run_module(tmp_path, args_for(url, dest, keyring))
    assert not again.get("failed"), again
    assert again["changed"] is False and again["downloaded"] is False
    assert again["sha512"] == r["sha512"]

    forced = run_module(tmp_path, args_for(url, dest, keyring, force=True))
    assert forced["changed"] is True and forced["downloaded"] is True
    assert forced["resumed_from"] == 0


def test_file_url(tmp_path, keys):
    good, _, keyring = keys
    root = tmp_path / "mirror"
    publish(root, good)
    r = run_module(tmp_path, args_for("file://" + str(root), tmp_path / "dest", keyring))
    assert not r.get("failed"), r
    assert r["changed"] is True and os.path.isfile(r["path"])


def test_resume_from_part(tmp_path, mirror, keys):
    root, url, seen = mirror
    good, _, keyring = keys
    tarball = publish(root, good)
    dest = tmp_path / "dest"
    dest.mkdir()
    half = len(tarball.read_bytes()) // 2
    (dest / (NAME + ".part")).write_bytes(tarball.read_bytes()[:half])
    r = run_module(tmp_path, args_for(url, dest, keyring))
    assert not r.get("failed"), r
    assert r["resumed_from"] == half
    assert ("/releases/amd64/autobuilds/%s/%s" % (BUILD, NAME), "bytes=%d-" % half) in seen
    assert (dest / NAME).read_bytes() == tarball.read_bytes()
    assert not (dest / (NAME + ".part")).exists()


def test_check_mode_verifies_pointer_only(tmp_path, mirror, keys):
    root, url, seen = mirror
    good, _, keyring = keys
    publish(root, good)
    dest = tmp_path / "dest"
    r = run_module(tmp_path, args_for(url, dest, keyring), check=True)
    assert not r.get("failed"), r
    assert r["changed"] is True and r["downloaded"] is True
    assert r["verified"]["pointer"]
    assert [p for p, _ in seen] == ["/releases/amd64/autobuilds/latest-stage3-%s.txt" % VARIANT]
    assert leftovers(dest) == []


@pytest.mark.parametrize("tamper, words", [
    ("tarball", "signature did not verify"),
    ("digests", "does not match the signed digest"),
    ("unsigned-pointer", "not a clearsigned document"),
    ("unsigned-digests", ".DIGESTS is not signed"),
])
def test_tampered_release_is_refused(tmp_path, mirror, keys, tamper, words):
    root, url, seen = mirror
    good, _, keyring = keys
    publish(root, good, tamper=tamper)
    dest = tmp_path / "dest"
    r = run_module(tmp_path, args_for(url, dest, keyring))
    assert r.get("failed") is True
    assert words in r["msg"]
    # Nothing that looks like a verified tarball, nor a .part to resume from.
    assert not any(n.startswith("stage3-") for n in leftovers(dest)), leftovers(dest)


def test_other_key_is_refused(tmp_path, mirror, keys):
    root, url, seen = mirror
    _, other, keyring = keys
    publish(root, other)
    r = run_module(tmp_path, args_for(url, tmp_path / "dest", keyring))
    assert r.get("failed") is True
    assert "latest-stage3-%s.txt: OpenPGP signature did not verify" % VARIANT in r["msg"]
    assert r["cmd"][0].endswith("gpgv")


def test_corrupted_local_copy_is_replaced(tmp_path, mirror, keys):
    root, url, seen = mirror
    good, _, keyring = keys
    tarball = publish(root, good)
    dest = tmp_path / "dest"
    assert not run_module(tmp_path, args_for(url, dest, keyring)).get("failed")
    data = bytearray((dest / NAME).read_bytes())
    data[100] ^= 0xFF
    (dest / NAME).write_bytes(bytes(data))
    r = run_module(tmp_path, args_for(url, dest, keyring))
    assert not r.get("failed"), r
    assert r["changed"] is True and "did not verify" in r["local_error"]
    assert (dest / NAME).read_bytes() == tarball.read_bytes()
