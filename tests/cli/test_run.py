"""Runs of the stand-in build playbook: what the command line hands over, quiet mode,
the doscripts file, failures without a terminal, signals, released mounts."""
import os
import re
import signal
import subprocess
import time

from gse import layout

DOC_SCRIPTS = "script1,script2 script3 script4,script5"
DOC_HOOKS = "-gparta,-gseed,+gcat"


def _scripts(gse_env):
    sdir = gse_env.tmp / "myscripts"
    sdir.mkdir()
    for n in range(1, 6):
        (sdir / ("script%d" % n)).write_text("echo script%d\n" % n)
    return sdir


def test_flags_reach_the_playbook_quietly(gse_env):
    sdir = _scripts(gse_env)
    kernel = gse_env.tmp / "vmlinuz"
    kernel.write_bytes(b"kernel")
    gse_env.write_config("system", {"gse_cdistdir": str(gse_env.cdist), "gse_log_root": str(gse_env.logs),
                                    "gse_min_free_mb": 1, "gse_nice": 5})
    gse_env.write_config("distcc", {"gse_distcc_hosts": ["127.0.0.1/2"]})
    gse_env.write_config("ccache", {"gse_ccache_size": "2G"})
    r = gse_env.gse("--base=precomp", "-q", "--sdir=%s" % sdir, "--do=%s" % DOC_SCRIPTS,
                    "-g=%s" % DOC_HOOKS, "--lawful-good=gpartd,gker", "--enforce=gpartd,gparte",
                    "--build-minimal", "--kernel=%s" % kernel, "--distcc=on", "--ccache=on")
    assert r.returncode == 0, r.stdout + r.stderr
    clocallg = gse_env.last_build()

    # doscripts, byte for byte in the concept document's format, with the real directory.
    with open(os.path.join(clocallg, "doscripts"), "rb") as f:
        assert f.read() == (
            "# Requested Scripts\n# SCRIPT'S PATH\nSCP:%s\n# Hook:Script\n-gparta:script1\n"
            "-gparta:script2\n-gseed:script3\n+gcat:script4\n+gcat:script5\n" % sdir).encode()

    [rec] = gse_env.records(clocallg)
    assert rec["gse_base"] == "precomp"
    assert rec["gse_lawful_good"] == ["gpartd", "gker"]
    assert rec["gse_enforce"] == ["gpartd", "gparte"]
    assert sorted(rec["skip_tags"]) == ["gker", "gpartd", "grebuild"]
    assert rec["gse_sdir"] == str(sdir)
    assert rec["gse_doscripts"] == [
        {"hook": "gparta", "when": "before", "script": "script1"},
        {"hook": "gparta", "when": "before", "script": "script2"},
        {"hook": "gseed", "when": "before", "script": "script3"},
        {"hook": "gcat", "when": "after", "script": "script4"},
        {"hook": "gcat", "when": "after", "script": "script5"}]
    assert rec["gse_build_minimal"] is True and rec["gse_verbose"] is False
    assert rec["gse_kernel_path"] == str(kernel)
    assert (rec["gse_distcc"], rec["gse_ccache"]) == ("on", "on")
    assert rec["gse_configd_dirs"] == [str(gse_env.configd)]
    assert rec["gse_build_id"] == os.path.basename(clocallg)
    assert rec["nice"] == 5
    assert rec["mount_owner"].isdigit()

    # Skipped parts and sub-parts did not run; the rest ran in order.
    ran = gse_env.ran(clocallg)
    assert "gpartd" not in ran and "grebuild" not in ran and "gker" not in ran
    assert ran[:4] == ["gparta", "gseed", "gcat", "gextr"] and ran[-1] == "gmark"

    # Quiet: one line per sub-part that ran, as it started, with its part's number, then the end.
    parts = layout.hooks().PARTS
    expected = ["[%2d/%d] %s" % (i + 1, len(parts), sub.phase) for i, p in enumerate(parts)
                if p.hook != "gpartd" for sub in p.subs if sub.hook != "gker"]
    assert "[ 1/12] Extracting tarball" in expected and "[ 3/12] Updating Portage" in expected
    lines = r.stdout.splitlines()
    assert [re.sub(r" \(\d+:\d\d:\d\d\)$", "", line) for line in lines[:-1]] == expected
    assert re.fullmatch(r"Build \S+ finished \(\d+:\d\d:\d\d\)", lines[-1])
    assert gse_env.mounts() == []


def test_failure_without_a_terminal_reports_and_releases(gse_env):
    gse_env.switch({"gse_test_fail_emerge": True})
    env = dict(gse_env.env, SSH_CONNECTION="10.0.0.1 50000 10.0.0.2 22")
    r = gse_env.gse("--base=precomp", "-v", "--non-interactive", env=env)
    assert r.returncode == 1
    assert gse_env.records()[0]["gse_verbose"] is True  # set -x in the hook scripts
    assert "ESTABLISH LOCAL CONNECTION" in r.stdout  # Ansible's -vvv
    assert "started over SSH outside tmux/screen" in r.stderr
    assert "TASK [portage : gapply emerge the changes]" in r.stdout  # the output streams
    for text in ("part C (gpartc) failed in task 'gapply emerge the changes'",
                 "command: emerge app-misc/broken app-misc/hello", "exit code: 1",
                 "ERROR: app-misc/broken-1::gse-test failed (compile phase)",
                 "failed package: app-misc/broken-1",
                 "resume list: app-misc/broken-1 app-misc/hello-1",
                 "build log: /var/log/portage/app-misc:broken-1:20261125.log",
                 "make: *** [all] Error 1"):
        assert text in r.stderr
    assert r.stderr.rstrip().splitlines()[-1].startswith("gse: the build failed; the report is in ")
    assert os.path.exists(os.path.join(gse_env.last_build(), "failure-1.txt"))
    assert gse_env.ran()[-1] == "gprofile"
    assert gse_env.mounts() == []


def test_sigterm_releases_the_mounts_and_exits_130(gse_env):
    gse_env.switch({"gse_test_sleep": 120})
    proc = subprocess.Popen([os.path.join(os.path.dirname(__import__("sys").executable), "gse"),
                             "--base=precomp", "-q"], env=gse_env.env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 300
        # Wait for part C (after the mounts of part B), then signal.
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                break
            records = gse_env.builds() and os.path.exists(os.path.join(gse_env.last_build(), "record"))
            if records and gse_env.mounts():
                time.sleep(1)
                break
            time.sleep(0.2)
        assert gse_env.mounts(), "the run did not reach part B"
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err
    assert gse_env.mounts() == []
