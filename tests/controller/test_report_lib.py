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
