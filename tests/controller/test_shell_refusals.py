"""The controller's shell functions on crafted inputs (dash, on this host):
serials of any length, gpgv's reasons, the back-off of a failed image, the
fit check, stall bounds, the cached config.d verified again."""
import hashlib
import os
import subprocess

import pytest

import pubtree
from client import loopback_http
from test_shell_lib import LIB, sh

BIG = "18446744073709551617"  # 2^64 + 1: wraps in shell arithmetic


@pytest.mark.parametrize("a, b, lt", [
    ("1", "2", 0), ("2", "1", 1), ("7", "7", 1), ("007", "7", 1), ("7", "010", 0),
    ("9223372036854775807", "9223372036854775808", 0), (BIG, "9223372036854775807", 1),
    ("9223372036854775807", BIG, 0), ("0", "00", 1), ("1" + "0" * 40, "9" * 40, 1),
])
def test_serials_compare_as_decimal_strings(tmp_path, a, b, lt):
    r = sh(f"gse_serial_lt {a} {b}; echo $?", tmp_path)
    assert r.stdout.strip() == str(lt), r.stderr


@pytest.mark.parametrize("bad", ["", "-1", "1e3", "12a", " 1"])
def test_serial_that_is_not_decimal_is_an_error(tmp_path, bad):
    r = sh(f"gse_serial_lt '{bad}' 1; echo $?; gse_serial_lt 1 '{bad}'; echo $?", tmp_path)
    assert r.stdout.split() == ["2", "2"]


@pytest.fixture
def state(tmp_path):
    """A mounted tmpfs as the state area (gse_state_ok asks /proc/mounts)."""
    d = tmp_path / "state"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "gse-test-state", str(d)], check=True)
    yield d
    subprocess.run(["umount", str(d)], check=True)


def shs(script, tmp_path, state):
    return sh(f"mkdir -p $GSE_RUN; GSE_STATE_MNT={state}; {script}", tmp_path)


def test_highest_verified_serial_is_kept(tmp_path, state):
    r = shs(f"gse_serial_seen 5; cat $GSE_STATE_MNT/serial; gse_serial_seen 3; echo $?; cat $GSE_STATE_MNT/serial;"
            f"gse_serial_seen {BIG}; cat $GSE_STATE_MNT/serial; gse_serial_seen 9223372036854775807; echo $?;"
            f"cat $GSE_STATE_MNT/serial", tmp_path, state)
    assert r.stdout.split() == ["5", "1", "5", BIG, "1", BIG], r.stderr


def test_failed_image_backs_off_and_is_never_blacklisted(tmp_path, state):
    sha = "a" * 128
    r = shs(f"GSE_RETRY_MAX_BOOTS=4; t() {{ if w=$(gse_backoff_wait {sha}); then echo try; else echo wait:$w; fi; }};"
            f"t; gse_backoff_fail {sha}; t; t; gse_backoff_fail {sha}; t; t; t;"
            f"gse_backoff_fail {sha}; gse_backoff_fail {sha}; gse_backoff_clear {sha}; t", tmp_path, state)
    assert r.stdout.splitlines() == ["try", "1", "wait:1 1", "try", "2", "wait:2 2", "wait:2 1", "try",
                                "4", "4", "try"], r.stderr


def test_fit_is_judged_from_the_signed_size(tmp_path):
    # 1 GiB partition, 95 % usable.
    r = sh("gse_part_bytes() { echo 1073741824; }; for b in 1000 1020054600 1020054800 " + "9" * 25 + " x1; do "
           "gse_fits $b /dev/vdz2; echo $?; done", tmp_path)
    assert r.stdout.split() == ["0", "0", "1", "1", "2"]


# ---- gpgv's reasons ---------------------------------------------------------

def gpg(home, *args, input=None):
    return subprocess.run(["gpg", "--batch", "--quiet", "--homedir", str(home), "--pinentry-mode", "loopback",
                           "--passphrase", "", *args], check=True, capture_output=True, input=input)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    """Three keys: the trusted one (made now), a stranger's, and one made in
    2030 (to a client of today, a clock in the past sees its signatures come
    from the future); plus one made in 2020 for an expired signature."""
    base = tmp_path_factory.mktemp("keys")
    homes = {}
    for name, when in (("good", None), ("stranger", None), ("future", "20300101T000000"),
                       ("old", "20200101T000000")):
        home = base / name
        home.mkdir(mode=0o700)
        fake = ["--faked-system-time", when] if when else []
        gpg(home, *fake, "--quick-gen-key", f"{name} <{name}@localhost>", "ed25519", "sign", "never")
        homes[name] = home
    ring = base / "trusted.gpg"
    ring.write_bytes(b"".join(subprocess.run(["gpg", "--homedir", str(homes[n]), "--export"], check=True,
                                             capture_output=True).stdout for n in ("good", "future", "old")))
    yield homes, ring
    for home in homes.values():
        subprocess.run(["gpgconf", "--homedir", str(home), "--kill", "all"], check=False)


def clearsign(home, body, *args):
    return gpg(home, *args, "--clearsign", input=body.encode()).stdout


@pytest.mark.parametrize("case, reason", [
    ("good", None),
    ("stranger", "unknown key "),
    ("tampered", "bad signature"),
    ("clock", "clock: the key or signature is dated after this client's clock"),
    ("expired", "signature expired"),
    ("unsigned", "no signature (not signed or truncated)"),
    ("truncated", "no signature (not signed or truncated)"),
])
def test_gpgv_reasons_are_told_apart(tmp_path, keys, case, reason):
    homes, ring = keys
    body = "format: 2\nserial: 3\nversion: v3\n"
    if case == "good":
        data = clearsign(homes["good"], body)
    elif case == "stranger":
        data = clearsign(homes["stranger"], body)
    elif case == "tampered":
        data = clearsign(homes["good"], body).replace(b"serial: 3", b"serial: 4")
    elif case == "clock":
        data = clearsign(homes["future"], body, "--faked-system-time", "20300102T000000")
    elif case == "expired":
        data = clearsign(homes["old"], body, "--faked-system-time", "20200102T000000", "--default-sig-expire", "1d")
    elif case == "unsigned":
        data = body.encode()
    else:
        data = clearsign(homes["good"], body)
        data = data[:data.index(b"-----BEGIN PGP SIGNATURE")]
    (tmp_path / "version.txt").write_bytes(data)
    r = sh(f"mkdir -p $GSE_RUN; GSE_KEYRING={ring}; gse_verify_pointer $T/version.txt $T/body; echo rc=$?;"
           "echo \"reason=$GSE_VERIFY_REASON\"; cat $T/body 2>/dev/null", tmp_path)
    lines = r.stdout.splitlines()
    if reason is None:
        assert lines[:2] == ["rc=0", "reason="], r.stdout + r.stderr
        assert "serial: 3" in lines
    else:
        assert lines[0] == "rc=2", r.stdout + r.stderr
        assert lines[1].startswith("reason=" + reason), r.stdout
        # No body is left to read.
        assert not (tmp_path / "body").exists()


def test_signature_from_the_future_is_accepted_and_names_the_clock(tmp_path, keys):
    """A trusted key older than the client's clock signed 'in 2030': good, and
    the client's clock is named."""
    homes, ring = keys
    (tmp_path / "version.txt").write_bytes(
        clearsign(homes["good"], "serial: 1\n", "--faked-system-time", "20300101T000000"))
    r = sh(f"mkdir -p $GSE_RUN; GSE_KEYRING={ring}; gse_verify_pointer $T/version.txt $T/body; echo rc=$?",
           tmp_path)
    assert r.stdout.strip() == "rc=0"
    assert "clock: a signature is dated" in (tmp_path / "run" / "log").read_text()


# ---- the cached config.d ------------------------------------------------------

def test_cached_config_is_verified_again(tmp_path, signing):
    home, ring = signing
    tree = tmp_path / "tree"
    tree.mkdir()
    rel = pubtree.add_config(home, str(tree), 4, {"controller.conf": "GSE_TMPFS_EXTRA=/srv\n"})
    cache = tmp_path / "cache"
    cache.mkdir()
    for src, dst in (("config.txt", "config.txt"), (rel, "config.d.tar.gz"), (rel + ".asc", "config.d.tar.gz.asc")):
        (cache / dst).write_bytes((tree / src).read_bytes())
    script = (f"mkdir -p $GSE_RUN; GSE_KEYRING={ring}; if gse_config_verify {cache}; then gse_config_use {cache};"
              " gse_env_load; echo \"ok $GSE_TMPFS_EXTRA\"; else echo \"refused $GSE_VERIFY_REASON\"; fi")
    assert sh(script, tmp_path).stdout.strip() == "ok /srv"
    # Written from the booted system or by hand: another tarball.
    import io
    import tarfile
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        data = b"GSE_SERVER=http://evil/\n"
        info = tarfile.TarInfo("controller.conf")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    (cache / "config.d.tar.gz").write_bytes(buf.getvalue())
    out = sh(script, tmp_path).stdout.strip()
    assert out.startswith("refused config.d.tar.gz: size") or out.startswith("refused config.d.tar.gz: SHA512"), out
    # A cache of an older controller, without the signed pointer.
    (cache / "config.txt").unlink()
    assert sh(script, tmp_path).stdout.strip() == "refused config.txt: missing"


# ---- bounded waits --------------------------------------------------------------

def test_stalled_server_is_given_up_within_the_bounds(tmp_path):
    """The server sends the headers and 4 KiB of a 1 MiB object, then holds
    the connection open without sending: curl gives up on the stall bound
    (GSE_STALL_TIME), the verdict says stall.  The total bounds are set far
    beyond the test's deadline, so only the stall bound can end it."""
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "image.tar.zst").write_bytes(os.urandom(1 << 20))
    dest = tmp_path / "dest"
    dest.mkdir()
    with loopback_http(tmp_path / "www", stall_after=4096) as port:
        r = sh(f"mkdir -p $GSE_RUN; GSE_SERVER=http://127.0.0.1:{port}; GSE_STALL_TIME=2; GSE_STALL_SPEED=1000;"
               "GSE_FETCH_TIMEOUT=3600; GSE_IMAGE_TIMEOUT=3600;"
               f"gse_fetch image.tar.zst $T/out; echo fetch=$? curl=$GSE_FETCH_RC;"
               f"gse_stream_image image.tar.zst {dest} {'0' * 128} {1 << 20} zstd; echo stream=$?;"
               "cat $GSE_RUN/stream/verdict", tmp_path, timeout=300)
    assert r.stdout.split() == ["fetch=2", "curl=28", "stream=2", "stall"], r.stdout + r.stderr
    log = (tmp_path / "run" / "log").read_text()
    assert "fetch image.tar.zst: stalled or timed out (HTTP 200): curl: (28) Operation too slow" in log, log
    assert "image download stalled or timed out: curl: (28) Operation too slow" in log, log


# ---- the chunked transfer -----------------------------------------------------

def casync_tree(tmp_path, seed=1):
    """A root, its index and chunk store under tmp_path/www (pubtree)."""
    import random
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "big").write_bytes(random.Random(seed).randbytes(3 << 20))
    (root / "small").write_text("small\n")
    os.symlink("small", root / "link")
    www = tmp_path / "www"
    www.mkdir()
    idx = pubtree.make_index(str(www), "v1", str(root))
    return root, www, idx


@pytest.mark.parametrize("damage, verdict, says", [
    (None, None, None),
    ("forged", "digest", "a chunk does not match the signed index"),
    ("altered", "digest", "a chunk does not match the signed index"),
    ("truncated", "digest", "a chunk of the store does not decompress (truncated)"),
    ("missing", "missing", "a chunk is missing from the store"),
    ("error", "missing", "a chunk is missing from the store"),
    ("cut", "network", "image download failed: casync: Failed to acquire http://"),
])
def test_casync_extract_checks_every_chunk(tmp_path, damage, verdict, says):
    """Each way a store can be damaged, or a chunk fail to arrive, is told
    apart from casync's own words (a double of the server: loopback_http;
    the chunks and the extract are the real casync's)."""
    need_casync()
    import vm
    root, www, idx = casync_tree(tmp_path)
    chunks = sorted(str(p) for p in (www / "store").rglob("*.cacnk"))
    if damage == "forged":
        # Another chunk's (valid, compressed) bytes under this chunk's id.
        (tmp_path / "x").write_bytes(open(chunks[1], "rb").read())
        os.replace(tmp_path / "x", chunks[0])
    elif damage == "altered":
        # The chunk's own bytes, one changed, compressed again: it still
        # decompresses, to other bytes than its id says.
        raw = bytearray(subprocess.run(["zstd", "-dc", chunks[0]], check=True, capture_output=True).stdout)
        raw[len(raw) // 2] ^= 0xFF
        data = subprocess.run(["zstd", "-q", "-c"], input=bytes(raw), check=True, capture_output=True).stdout
        open(chunks[0], "wb").write(data)
    elif damage == "truncated":
        data = open(chunks[0], "rb").read()
        open(chunks[0], "wb").write(data[:len(data) // 2])
    elif damage == "missing":
        os.unlink(chunks[0])
    dest = tmp_path / "dest"
    dest.mkdir()
    server = {"error": dict(error_prefix="/store/"), "cut": dict(stall_after=1000, stall_prefix="/store/", cut=True)}
    with loopback_http(www, **server.get(damage, {})) as port:
        r = sh(f"mkdir -p $GSE_RUN; GSE_SERVER=http://127.0.0.1:{port}; gse_casync_extract {idx} {dest}; echo rc=$?;"
               "cat $GSE_RUN/stream/verdict 2>/dev/null", tmp_path)
    if damage is None:
        assert r.stdout.split() == ["rc=0"], r.stdout + r.stderr
        assert vm.tree_digest(str(dest)) == vm.tree_digest(str(root))
    else:
        log = (tmp_path / "run" / "log").read_text()
        assert r.stdout.split() == ["rc=2", verdict], r.stdout + r.stderr + log
        assert says in log, log
        # Nothing of the chunk that did not verify was written.
        big = dest / "d" / "big"
        assert not big.exists() or big.read_bytes() != (root / "d" / "big").read_bytes()


def test_casync_extract_with_a_seed_fetches_only_what_it_lacks(tmp_path):
    need_casync()
    import vm
    root, www, idx = casync_tree(tmp_path)
    seed = tmp_path / "seed"
    shutil_copytree(root, seed)
    (seed / "small").write_text("other\n")
    dest = tmp_path / "dest"
    dest.mkdir()
    served = []
    with loopback_http(www, served=served) as port:
        r = sh(f"mkdir -p $GSE_RUN; GSE_SERVER=http://127.0.0.1:{port}; gse_casync_extract {idx} {dest} {seed};"
               "echo rc=$?", tmp_path)
    assert r.stdout.split() == ["rc=0"], r.stdout + r.stderr
    assert vm.tree_digest(str(dest)) == vm.tree_digest(str(root))
    store = sum(p.stat().st_size for p in (www / "store").rglob("*.cacnk"))
    assert sum(n for p, n in served) < store / 10


def test_casync_stall_is_bounded_from_outside(tmp_path):
    """casync's HTTP helper sets no timeout: gse_watch kills casync and the
    helper when they stop moving (the total bound is set beyond the test's
    deadline, so only the stall bound can end it)."""
    need_casync()
    root, www, idx = casync_tree(tmp_path)
    dest = tmp_path / "dest"
    dest.mkdir()
    with loopback_http(www, stall_after=100, stall_prefix="/store/") as port:
        r = sh(f"mkdir -p $GSE_RUN; GSE_SERVER=http://127.0.0.1:{port}; GSE_STALL_TIME=2; GSE_IMAGE_TIMEOUT=3600;"
               f"gse_casync_extract {idx} {dest}; echo rc=$?; cat $GSE_RUN/stream/verdict", tmp_path, timeout=300)
        # No helper is left behind (checked while the server still stalls).
        left = subprocess.run(["pgrep", "-f", f"casync-http.*127.0.0.1:{port}"], capture_output=True)
    assert r.stdout.split() == ["rc=2", "stall"], r.stdout + r.stderr
    assert "image download stalled or timed out: casync: less than 1024 bytes/s over the last 2 s" in \
        (tmp_path / "run" / "log").read_text()
    assert left.returncode == 1, left.stdout


def need_casync():
    import shutil
    if not shutil.which("casync"):
        pytest.skip("missing: casync")


def shutil_copytree(a, b):
    import shutil
    shutil.copytree(a, b, symlinks=True)


# ---- the refusal record, bounded -------------------------------------------------

@pytest.mark.parametrize("keep, kept", [("3", 3), ("1", 1), ("007", 7), ("50", 9), ("", 9), ("0", 9), ("x", 9),
                                        ("-2", 9), ("1234567890", 9)])
def test_state_append_keeps_the_newest_lines(tmp_path, state, keep, kept):
    """8 old lines and a new one: with a positive KEEP only the newest KEEP
    stay, the new one last; a KEEP that is no positive number (of at most 9
    digits) keeps every line rather than lose the new one."""
    (state / "refused").write_text("".join(f"old {i}\n" for i in range(1, 9)))
    r = shs(f"gse_state_append refused 'new line' '{keep}'; echo rc=$?", tmp_path, state)
    assert r.stdout.strip() == "rc=0", r.stdout + r.stderr
    lines = (state / "refused").read_text().splitlines()
    assert lines == ([f"old {i}" for i in range(1, 9)] + ["new line"])[-kept:]
    assert not (state / "refused.tmp").exists()


def test_state_append_without_a_state_area_is_an_error(tmp_path):
    r = sh("mkdir -p $GSE_RUN; GSE_STATE_MNT=$T/nostate; gse_state_append refused x 3; echo rc=$?", tmp_path)
    assert r.stdout.strip() == "rc=2"
    assert not (tmp_path / "nostate").exists()


VERSION_CHECK = os.path.join(os.path.dirname(__file__), "..", "..", "controller_dracut", "92gse-net",
                             "gse-version-check.sh")


def install_failed():
    """gse_install_failed, the function as the hook defines it (the hook
    itself runs the version check when sourced)."""
    text = open(VERSION_CHECK).read()
    start = text.index("gse_install_failed() {")
    return text[start:text.index("\n}\n", start) + 3]


@pytest.mark.parametrize("setting, kept", [("GSE_REFUSED_LINES=3", 3), ("unset GSE_REFUSED_LINES", 100)])
def test_failed_install_keeps_the_newest_refusals(tmp_path, state, setting, kept):
    """150 refusals recorded before (a client failing for months); one more
    failed attempt: the refused file keeps the newest GSE_REFUSED_LINES
    (default 100), the new one last with its class and reason; the target's
    record is gone and the image backs off."""
    sha = "b" * 128
    (state / "refused").write_text("".join(f"2026-01-01T00:00:00Z v{i} signed={'a' * 128} stall: x\n"
                                           for i in range(150)))
    (state / "installed").mkdir()
    (state / "installed" / "vdz3").write_text("uuid=x\nversion=old\n")
    r = shs(f". {LIB}/91gse-disk/gse-disk-lib.sh; {install_failed()}\n"
            f"{setting}; mkdir -p $GSE_RUN/stream; echo digest > $GSE_RUN/stream/verdict;"
            "GSE_VERIFY_REASON='received 10 bytes with SHA512 cc'; gse_install_failed /dev/vdz3 v9 " + sha +
            "; echo rc=$?", tmp_path, state)
    assert r.stdout.strip() == "rc=2", r.stdout + r.stderr
    lines = (state / "refused").read_text().splitlines()
    assert len(lines) == kept
    assert lines[-1].endswith(f" v9 signed={sha} digest: received 10 bytes with SHA512 cc"), lines[-1]
    assert lines[-2].split()[1] == "v149" and lines[0].split()[1] == f"v{150 - kept + 1}"
    assert not (state / "installed" / "vdz3").exists()
    assert (state / "backoff" / sha).read_text().split() == ["1", "1"]
    assert "version v9 not installed (digest); /dev/vdz3 holds no complete system" in \
        (tmp_path / "run" / "log").read_text()
