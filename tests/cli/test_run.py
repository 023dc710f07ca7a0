"""Runs of the stand-in build playbook: what the command line hands over, quiet mode,
the doscripts file, failures without a terminal, signals, released mounts."""
import os
import re
import signal
import subprocess
import time

import pytest

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
                 "last lines of /var/log/portage/app-misc:broken-1:20261125.log:\n"
                 "    make: *** [all] Error 1\n     * ERROR: compile phase failed\n"):
        assert text in r.stderr
    assert r.stderr.rstrip().splitlines()[-1].startswith("gse: the build failed; the report is in ")
    assert os.path.exists(os.path.join(gse_env.last_build(), "failure-1.txt"))
    assert gse_env.ran()[-1] == "gprofile"
    assert gse_env.mounts() == []


def _unit_members(workdir):
    from gse import layout
    return layout.mountguard().buildunit.members(str(workdir))


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT, signal.SIGKILL], ids=["TERM", "INT", "KILL"])
def test_a_signal_ends_the_whole_build_and_releases_the_mounts(gse_env, sig):
    """gse is the owner of the build's unit: SIGTERM and SIGINT end every process of the build
    (ansible-playbook, its workers, the long task) before the release and exit 130; after a
    SIGKILL of gse the guard it started does the same.  Then a rerun goes through."""
    gse_env.switch({"gse_test_sleep": 120})
    gse = os.path.join(os.path.dirname(__import__("sys").executable), "gse")
    proc = subprocess.Popen([gse, "--base=precomp", "-q"], env=gse_env.env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    workdir = gse_env.cdist / "workdir-precomp"
    try:
        deadline = time.monotonic() + 300
        # Wait for the long task of part C (after the mounts of part B), then signal.
        while time.monotonic() < deadline and proc.poll() is None:
            sleeping = [p for p in _unit_members(workdir) if _argv(p)[:2] == ["sleep", "120"]]
            if sleeping and gse_env.mounts():
                break
            time.sleep(0.2)
        assert sleeping and gse_env.mounts(), "the run did not reach part C"
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    if sig != signal.SIGKILL:
        assert proc.returncode == 130, err
        assert "interrupted" in err
    deadline = time.monotonic() + 120
    while (_unit_members(workdir) or gse_env.mounts()) and time.monotonic() < deadline:
        time.sleep(0.2)
    alive = layout.mountguard().buildunit.alive
    assert not _unit_members(workdir) and not any(alive(p) for p in sleeping)
    assert gse_env.mounts() == []
    gse_env.switch({})
    r = gse_env.gse("--base=precomp", "-q", "--non-interactive")
    assert r.returncode == 0, r.stderr
    assert gse_env.mounts() == []


def _argv(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as f:
            return [a.decode() for a in f.read().split(b"\0") if a]
    except OSError:
        return []


def test_a_second_build_on_a_busy_work_directory_is_refused(gse_env):
    """A build still runs on the work directory with no guard (a process rooted in the
    chroot): gse refuses, touches nothing, and names the command that releases it."""
    workdir = gse_env.cdist / "workdir-precomp"
    workdir.mkdir(parents=True, exist_ok=True)
    # A process whose root is the chroot, as emerge's would be (the host's /usr bound in).
    (workdir / "usr").mkdir(exist_ok=True)
    subprocess.run(["mount", "--bind", "/usr", str(workdir / "usr")], check=True)
    for d in ("bin", "lib", "lib64", "sbin"):
        if os.path.islink("/" + d) and not os.path.lexists(workdir / d):
            os.symlink(os.readlink("/" + d), workdir / d)
    busy = subprocess.Popen(["chroot", str(workdir), "sleep", "300"])
    try:
        deadline = time.monotonic() + 60
        while busy.pid not in _unit_members(workdir) and time.monotonic() < deadline:
            time.sleep(0.1)
        before = gse_env.builds()
        r = gse_env.gse("--base=precomp", "-q", "--non-interactive")
        assert r.returncode == 2, r.stderr
        assert "a build is still running on %s" % workdir in r.stderr
        assert "ansible-playbook playbooks/release.yml -e gse_base=precomp -e gse_cdistdir=%s" % gse_env.cdist \
            in r.stderr
        assert gse_env.builds() == before and busy.poll() is None
    finally:
        busy.kill()
        busy.wait()
        subprocess.run(["umount", "-l", str(workdir / "usr")], check=False)
