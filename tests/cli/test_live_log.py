"""emerge's output is printed while emerge runs (default mode), not only when its task ends.

The stand-in's fake_emerge appends a line to the live log (inside the
workdir, as the real module does inside the chroot), then waits until this
test has seen that line on gse's stdout before it writes its second line and
ends.  The test then checks the order of gse's output: task banner, the live
line, the task's result.  A gse that printed the log only at the end would
show the line after the result (fake_emerge stops waiting after a bound).
"""
import os
import subprocess
import threading

from conftest import GSE

FIRST = ">>> Emerging (1 of 2) app-portage/eix-1::gse-test"
SECOND = ">>> Emerging (2 of 2) app-misc/hello-1::gse-test"
BANNER = "TASK [portage : geix emerge eix]"


def _run(gse_env, *args):
    """Run gse, creating the acknowledgement file once FIRST was printed; return (rc, lines, err)."""
    ack = gse_env.tmp / "seen-first-line"
    gse_env.switch({"gse_test_live_ack": str(ack)})
    proc = subprocess.Popen([GSE, "--base=precomp", "--non-interactive", *args], env=gse_env.env,
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=str(gse_env.tmp))
    err = []
    reader = threading.Thread(target=lambda: err.append(proc.stderr.read()), daemon=True)
    reader.start()
    lines = []
    try:
        for line in proc.stdout:
            lines.append(line.rstrip("\n"))
            if line.rstrip("\n") == FIRST:
                ack.touch()
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
    reader.join()
    return proc.returncode, lines, "".join(err), ack


def test_emerge_output_is_printed_before_its_task_ends(gse_env):
    rc, lines, err, ack = _run(gse_env)
    assert rc == 0, "\n".join(lines) + err
    assert ack.exists(), "the first live line was never printed"
    assert gse_env.records()[0]["gse_live_log"] == "/var/log/gse-live.log"
    banner = next(i for i, line in enumerate(lines) if line.startswith(BANNER))
    first, second = lines.index(FIRST), lines.index(SECOND)
    result = next(i for i in range(banner + 1, len(lines)) if lines[i].startswith("changed: [buildhost]"))
    assert banner < first < result
    assert first < second
    # Each line once, and the file really is inside the chroot's /var/log.
    assert lines.count(FIRST) == 1 and lines.count(SECOND) == 1
    live = gse_env.cdist / "workdir-precomp/var/log/gse-live.log"
    assert live.read_text() == FIRST + "\n" + SECOND + "\n"


def test_a_second_run_prints_only_its_own_lines(gse_env):
    """The log of an earlier run (the workdir stays between builds) is not printed again."""
    rc, lines, err, ack = _run(gse_env)
    assert rc == 0, err
    live = gse_env.cdist / "workdir-precomp/var/log/gse-live.log"
    ack.unlink()
    rc, lines, err, ack = _run(gse_env)
    assert rc == 0, err
    assert lines.count(FIRST) == 1 and lines.count(SECOND) == 1
    assert live.read_text().count(FIRST) == 2


def test_quiet_mode_neither_asks_for_nor_prints_the_live_log(gse_env):
    gse_env.switch({"gse_test_live_ack": str(gse_env.tmp / "never")})
    # Without a live log fake_emerge does not wait: nothing is written, nothing printed.
    r = gse_env.gse("--base=precomp", "-q", "--non-interactive")
    assert r.returncode == 0, r.stdout + r.stderr
    assert gse_env.records()[0]["gse_live_log"] == ""
    assert FIRST not in r.stdout
    assert not os.path.exists(gse_env.cdist / "workdir-precomp/var/log/gse-live.log")
