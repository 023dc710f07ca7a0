"""The controller's shell libraries run on this host with dash (POSIX sh),
as far as they need no disk: config.d parsing and pointer reading."""
import os
import subprocess

from client import loopback_http

LIB = os.path.join(os.path.dirname(__file__), "..", "..", "controller_dracut")


def sh(script, tmp_path, timeout=None):
    env = dict(os.environ, T=str(tmp_path))
    full = f"""
. {LIB}/90gse-base/gse-lib.sh
GSE_RUN=$T/run; GSE_ENV=$GSE_RUN/env; GSE_LOG=$GSE_RUN/log
gse_log() {{ echo "gse: $*" >> "$GSE_LOG"; }}
. {LIB}/90gse-base/gse-verify-lib.sh
. {LIB}/92gse-net/gse-net-lib.sh
. {LIB}/92gse-net/gse-chunks-lib.sh
. {LIB}/92gse-net/gse-ranges-lib.sh
{script}
"""
    return subprocess.run(["dash", "-c", full], capture_output=True, text=True, env=env, timeout=timeout)


def test_config_is_parsed_never_executed(tmp_path):
    conf = tmp_path / "controller.conf"
    conf.write_text(
        "# comment\n"
        "GSE_SERVER=http://srv/gse\n"
        "GSE_TMPFS_EXTRA=\"/var/tmp /srv\"\n"
        "GSE_X='it'\"'\"'s'\n"
        f"GSE_EVIL=$(touch {tmp_path}/pwned)\n"
        f"touch {tmp_path}/pwned2\n"
        "gse_lower=1\n"
        "GSE_bad=1\n"
    )
    r = sh(f'gse_conf_parse {conf}; gse_env_load; echo "$GSE_SERVER|$GSE_TMPFS_EXTRA|$GSE_EVIL|$GSE_bad"',
           tmp_path)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == f"http://srv/gse|/var/tmp /srv|$(touch {tmp_path}/pwned)|"
    assert not (tmp_path / "pwned").exists() and not (tmp_path / "pwned2").exists()


def test_later_settings_win(tmp_path):
    r = sh("gse_env_set GSE_A one; gse_env_set GSE_A two; unset GSE_A; gse_env_load; echo $GSE_A", tmp_path)
    assert r.stdout.strip() == "two"


def test_pointer_fields_and_file_check(tmp_path):
    body = tmp_path / "body"
    body.write_text("format: 1\nserial: 7\nversion: 20261125T190000Z\n")
    data = tmp_path / "data"
    data.write_bytes(b"abc")
    import hashlib
    sha = hashlib.sha512(b"abc").hexdigest()
    r = sh(f"gse_pointer_get {body} serial; gse_pointer_get {body} version;"
           f"gse_check_file {data} {sha} 3; echo ok=$?; gse_check_file {data} {sha} 4; echo size=$?;"
           f"gse_check_file {data} {'0' * 128} 3; echo sha=$?", tmp_path)
    assert r.stdout.split() == ["7", "20261125T190000Z", "ok=0", "size=2", "sha=2"]
    r = sh(f"gse_check_file {data} {'0' * 128} 3; echo \"$GSE_VERIFY_REASON\"", tmp_path)
    assert r.stdout.strip() == f"SHA512 mismatch: received {sha}"


def test_every_controller_script_is_posix_sh():
    import glob
    scripts = glob.glob(f"{LIB}/*/gse-*.sh") + [f"{LIB}/../roles/client_health/files/gse-health"]
    assert len(scripts) >= 17
    for f in scripts:
        r = subprocess.run(["dash", "-n", f], capture_output=True, text=True)
        assert r.returncode == 0, f"{f}: {r.stderr}"


HEALTH = os.path.join(LIB, "..", "roles", "client_health", "files", "gse-health")


def test_health_markers_go_to_the_mounted_state_area(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    env = dict(os.environ, GSE_STATE_DIR=str(state), PATH="/usr/bin:/bin:/usr/sbin:/sbin")
    # Not mounted: not a GSE client, nothing is recorded.
    r = subprocess.run(["sh", HEALTH, "startup"], env=env, capture_output=True, text=True)
    assert r.returncode == 1 and not (state / "health").exists()
    subprocess.run(["mount", "-t", "tmpfs", "gse-test", str(state)], check=True)
    try:
        for half in ("startup", "shutdown"):
            r = subprocess.run(["sh", HEALTH, half], env=env, capture_output=True, text=True)
            assert r.returncode == 0, r.stderr
            assert (state / "health" / half).read_text().startswith("20")
        assert subprocess.run(["sh", HEALTH, "bogus"], env=env).returncode == 2
    finally:
        subprocess.run(["umount", str(state)], check=True)


def test_fetch_tells_published_absent_failing_and_unreachable(tmp_path):
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "version.txt").write_text("x\n")
    with loopback_http(tmp_path / "www", 500, "/broken/") as port:
        r = sh(f"mkdir -p $GSE_RUN; GSE_SERVER=http://127.0.0.1:{port}; "
               "for p in version.txt none.txt broken/x; do gse_fetch $p $T/out; echo \"$p $? $GSE_FETCH_CODE\"; done; "
               "GSE_SERVER=http://127.0.0.1:1; gse_fetch version.txt $T/out; echo \"down $? $GSE_FETCH_CODE\"",
               tmp_path)
    assert r.stdout.splitlines() == ["version.txt 0 200", "none.txt 1 404", "broken/x 2 500", "down 2 000"]
    log = (tmp_path / "run" / "log").read_text()
    assert "fetch broken/x: HTTP 500 from the server" in log and "fetch version.txt: no answer: curl: (7)" in log


def test_corrupt_image_is_hashed_in_full_and_judged(tmp_path):
    """zstd gives up at the damaged byte; the download still runs to the end,
    so the digest verdict is on the published bytes (recorded: not fetched
    again at the next boot)."""
    import hashlib
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    # Compressible (hex text): zstd's blocks are compressed, so a damaged
    # byte stops the decoder long before the end of the download.
    (root / "d" / "payload").write_text(os.urandom(2 << 20).hex())
    www = tmp_path / "www"
    www.mkdir()
    img = www / "image.tar.zst"
    subprocess.run(f"tar -C {root} -cf - . | zstd -q -3 -o {img}", shell=True, check=True)
    good = hashlib.sha512(img.read_bytes()).hexdigest()
    size = img.stat().st_size
    data = bytearray(img.read_bytes())
    data[size // 4:size // 4 + 64] = bytes(64)
    img.write_bytes(bytes(data))
    dest = tmp_path / "dest"
    dest.mkdir()
    with loopback_http(www) as port:
        r = sh(f"mkdir -p $GSE_RUN; GSE_SERVER=http://127.0.0.1:{port}; gse_stream_image image.tar.zst {dest} {good} {size} zstd; "
               "echo rc=$?; sed -n 's/^gse-size=//p' $GSE_RUN/stream/curl.err; cat $GSE_RUN/stream/verdict",
               tmp_path)
    assert r.stdout.split() == ["rc=2", str(size), "digest"], r.stdout + r.stderr
    # The refusal names the digest of the bytes received, not the signed one.
    received = hashlib.sha512(bytes(data)).hexdigest()
    log = (tmp_path / "run" / "log").read_text()
    assert f"image refused: SHA512 mismatch: received {size} bytes with SHA512 {received}" in log
