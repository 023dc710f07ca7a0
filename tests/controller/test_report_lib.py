"""The controller's report library with dash on crafted inputs; what it builds must pass the server's checks.

The state area is a directory here (gse_state_ok is answered yes).  The MAC
is the host's (the interface with a global IPv4 address) or the fallback
00:00:00:00:00:00: the server's check accepts either; the QEMU test
(test_boot_report.py) shows the real one.
"""
import json
import os
import subprocess

import pytest

from ansible_collections.gse.stateless.plugins.module_utils import fleet

LIB = os.path.join(os.path.dirname(__file__), "..", "..", "controller_dracut")


def sh(script, tmp_path):
    env = dict(os.environ, T=str(tmp_path))
    full = f"""
. {LIB}/90gse-base/gse-lib.sh
GSE_RUN=$T/run; GSE_ENV=$GSE_RUN/env; GSE_LOG=$GSE_RUN/log; GSE_STATE_MNT=$T/state
mkdir -p "$GSE_RUN" "$GSE_STATE_MNT"
gse_log() {{ echo "gse: $*" >> "$GSE_LOG"; }}
gse_state_ok() {{ return 0; }}
. {LIB}/95gse-report/gse-report-lib.sh
{script}
"""
    return subprocess.run(["dash", "-c", full], capture_output=True, text=True, env=env, timeout=60)


@pytest.mark.parametrize("text", [
    'plain', 'a "quoted" \\back\\slash', "tab\there", "two\nlines\n", "bell\x07 esc\x1b[2J del\x7f",
    "ünïcode ✓", "",
])
def test_json_text_escapes_what_json_needs_and_drops_control_characters(tmp_path, text):
    (tmp_path / "in").write_bytes(text.encode())
    r = sh('gse_json_text < "$T/in"', tmp_path)
    assert r.returncode == 0, r.stderr
    want = "".join(c for c in text if c in "\t\n" or not (ord(c) < 32 or ord(c) == 127))
    # A final newline ends the last line; it is not a line of its own.
    assert json.loads(r.stdout) == (want[:-1] if want.endswith("\n") else want)


def test_identity_is_made_once_and_kept(tmp_path):
    r = sh('gse_identity && echo "$_gse_mid $_gse_token"; gse_identity && echo "$_gse_mid $_gse_token"', tmp_path)
    assert r.returncode == 0, r.stderr
    first, second = r.stdout.split("\n")[:2]
    mid, token = first.split()
    assert first == second and fleet.MACHINE_ID.fullmatch(mid) and fleet.TOKEN.fullmatch(token)
    assert (tmp_path / "state" / "identity").read_text() == "machine_id=%s\ntoken=%s\n" % (mid, token)
    assert oct(os.stat(tmp_path / "state" / "identity").st_mode & 0o777) == "0o600"  # the token is a secret
    (tmp_path / "state" / "identity").write_text("machine_id=../../x\ntoken=short\n")  # damaged: made anew
    r = sh('gse_identity && echo "$_gse_mid"', tmp_path)
    assert fleet.MACHINE_ID.fullmatch(r.stdout.strip()) and r.stdout.strip() != mid


def test_the_report_passes_the_servers_checks(tmp_path):
    state = tmp_path / "state"
    state.mkdir()
    refused = "".join("2026-11-%02dT08:00:00Z v%d signed=%s digest mismatch: \"odd\" \\reason\x01\n"
                      % (d, d, "ab" * 64) for d in range(1, 15))
    (state / "refused").write_text(refused)
    (tmp_path / "log").write_bytes(b"x" * 20000 + b"\ngse: installed v9 (serial 12) on /dev/vda2\n\x1b[1m")
    r = sh('cp "$T/log" "$GSE_LOG"; GSE_HOSTNAME=\'pc "7"\' GSE_GROUP=room2; gse_identity; '
           'gse_report_body v9 12 healthy', tmp_path)
    assert r.returncode == 0, r.stderr
    report = fleet.parse(r.stdout.encode())
    assert (report["hostname"], report["group"], report["version"], report["serial"]) == ('pc "7"', "room2", "v9", "12")
    assert len(report["refusals"]) == 10 and report["refusals"][-1]["version"] == "v14"
    assert report["refusals"][-1]["reason"] == 'digest mismatch: "odd" \\reason'
    assert "gse: installed v9 (serial 12) on /dev/vda2\n[1m" in report["log"] and "\x1b" not in report["log"]
    assert len(report["log"].encode()) <= fleet.MAX_LOG


def commands_sh(script, tmp_path):
    return sh(f". {LIB}/96gse-commands/gse-commands-lib.sh\n{script}", tmp_path)


def test_queued_commands_come_from_the_vocabulary_and_run_once(tmp_path):
    (tmp_path / "base").write_text("a1 reinstall\n# comment\n\nbad;id clear-deprived\nx1 sh -c id\n"
                                   "a2 clear-deprived extra\n.hidden reboot-after-update\n")
    (tmp_path / "group").write_text("a1 clear-deprived\nw1 wipe-and-start-new\n")
    (tmp_path / "state" / "commands.done").parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "state" / "commands.done").write_text("w1 3\n")
    r = commands_sh('gse_commands_pending "$T/base" "$T/group" "$T/missing"', tmp_path)
    assert r.returncode == 0, r.stderr
    # a1 once (the first line naming it wins), w1 done already, every bad line refused.
    assert r.stdout == "a1 reinstall\n"
    log = (tmp_path / "run" / "log").read_text()
    assert log.count("commands: refused line") == 4
    r = commands_sh('gse_command_record a1 7 && gse_commands_pending "$T/base"', tmp_path)
    assert r.stdout == "" and (tmp_path / "state" / "commands.done").read_text() == "w1 3\na1 7\n"


HEALTH = os.path.join(LIB, "..", "roles", "client_health", "files", "gse-health")


@pytest.mark.parametrize("client", ["curl", "busybox wget"])
def test_health_service_reports_a_healthy_startup_to_the_receiver(tmp_path, client):
    """The booted system's half: with curl, or with busybox's wget and timeout (as in the test image)."""
    import glob
    import shutil
    from gse.fleet import Receiver
    path = "/usr/bin:/bin:/usr/sbin:/sbin"
    if client == "busybox wget":
        bindir = tmp_path / "bin"
        bindir.mkdir()
        for applet in ("sh", "awk", "cat", "grep", "date", "mv", "sync", "mkdir", "wget", "timeout"):
            os.symlink(shutil.which("busybox"), bindir / applet)
        path = str(bindir)
    routes = open("/proc/net/route").read().split("\n")[1:]
    if not any(r.split()[1:2] == ["00000000"] for r in routes if r.split()):
        pytest.skip("this host has no default route: the report names the MAC of its interface")
    state, tree = tmp_path / "state", tmp_path / "tree"
    state.mkdir()
    tree.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "gse-test", str(state)], check=True)
    try:
        (state / "report").mkdir()
        (state / "health").mkdir()
        (state / "identity").write_text("machine_id=%s\ntoken=%s\n" % ("ab" * 16, "cd" * 32))
        (state / "health" / "cycle").write_text("version=v7\n")
        with Receiver(str(tree)) as rec:
            (state / "report" / "server").write_text("http://127.0.0.1:%d\n" % rec.port)
            env = dict(os.environ, GSE_STATE_DIR=str(state), PATH=path)
            r = subprocess.run([os.path.join(path.split(":")[0], "sh") if client != "curl" else "sh", HEALTH,
                                "startup"], env=env, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "no health report sent" not in r.stderr, r.stderr
        (path,) = glob.glob(str(tree / ".gse" / "fleet" / "hosts" / "*.health.json"))
        report = json.load(open(path))
        assert (report["reporter"], report["health"], report["version"], report["machine_id"]) == \
            ("health", "healthy", "v7", "ab" * 16)
        assert fleet.MAC.fullmatch(report["mac"])
    finally:
        subprocess.run(["umount", str(state)], check=True)
