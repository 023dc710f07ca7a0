"""The failure loop on a terminal (pseudo-terminal): resume, skip first, shell, abort."""
import os

import pexpect

from conftest import GSE

PROMPT = r"\[a\] abort: "


def _spawn(gse_env, *args, env=None, questions=4):
    child = pexpect.spawn(GSE, list(args), env=env or gse_env.env, cwd=str(gse_env.tmp),
                          encoding="utf-8", timeout=300, dimensions=(50, 200))
    # The questions of parts D, H, I and L (tests/cli/test_questions.py): their defaults.
    for _ in range(questions):
        child.expect(r"\[y/N\] ")
        child.sendline("")
    return child


def _finish(child):
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def test_emerge_failure_shell_resume_skip_first(gse_env):
    gse_env.switch({"gse_test_fail_emerge": True})
    child = _spawn(gse_env, "--base=precomp", "-q")
    try:
        child.expect("failed package: app-misc/broken-1")
        child.expect(r"resume list: app-misc/broken-1 app-misc/hello-1")
        child.expect(r"\[r\] resume  \[s\] skip first \(drop app-misc/broken-1\)  \[h\] shell  " + PROMPT)
        child.sendline("what")
        child.expect("answer r, s, h or a")
        # A shell in the chroot, with the mounts of part B still in place.
        child.sendline("h")
        child.expect(r"chroot \S+/workdir-precomp /bin/bash -l")
        child.expect(r"\(gse\) ")
        assert any(m.endswith("/workdir-precomp/usr") for m in gse_env.mounts())
        child.sendline("test -d /etc && test ! -e %s && echo IN-THE-CHROOT; exit" % gse_env.tmp)
        child.expect("IN-THE-CHROOT")
        child.expect(PROMPT)
        # Resume: the head still fails (nothing was fixed), the loop comes back and says why.
        child.sendline("r")
        child.expect("failed package: app-misc/broken-1")
        child.expect("no progress: app-misc/broken-1 failed again and the resume list is unchanged")
        child.expect(PROMPT)
        child.sendline("s")
        child.expect(r"Build \S+ finished")
        assert _finish(child) == 0
    finally:
        child.close(force=True)
    first, resumed, skipped = gse_env.records()
    assert first["tags"] == ["all"] and first["gse_emerge_resume"] == ""
    # Re-entry at the emerge that failed (gapply), not at its part: no second sync.
    hooks = ["gapply", "gpartd", "gparte", "gpartf", "gpartg", "gparth", "gparti", "gpartj",
             "gpartk", "gpartl", "gmount"]
    assert sorted(resumed["tags"]) == sorted(hooks) and resumed["gse_emerge_resume"] == "resume"
    assert sorted(skipped["tags"]) == sorted(hooks) and skipped["gse_emerge_resume"] == "skipfirst"
    assert len({r["gse_build_id"] for r in (first, resumed, skipped)}) == 1
    ran = gse_env.ran()
    assert ran.count("gmount") == 3 and ran.count("gupdate") == 1 and ran.count("geix") == 1
    assert ran[-1] == "gmark"
    assert "gpartb" not in ran[ran.index("gpartc"):]  # re-entry does not redo part B's other work
    assert gse_env.mounts() == []


def test_other_failure_fixed_in_the_shell_then_resumed(gse_env):
    gse_env.switch({"gse_test_fail_fstab": True})
    child = _spawn(gse_env, "--base=precomp", "-q")
    try:
        child.expect(r"part E \(gparte\) failed in task 'gfstab write the fstab entries'")
        child.expect(r"\[s\] skip first \(go on with the next part\)  \[h\] shell  " + PROMPT)
        child.sendline("h")
        child.expect(r"\(gse\) ")
        child.sendline("echo 'LABEL=SYSFS / ext4 ro 0 1' > /etc/fstab.gse; exit")
        child.expect(PROMPT)
        child.sendline("r")
        child.expect(r"Build \S+ finished")
        assert _finish(child) == 0
    finally:
        child.close(force=True)
    fstab = gse_env.cdist / "workdir-precomp" / "etc" / "fstab"
    assert fstab.read_text() == "LABEL=SYSFS / ext4 ro 0 1\n"
    assert "gse_emerge_resume" not in gse_env.records()[1] or gse_env.records()[1]["gse_emerge_resume"] == ""
    assert gse_env.mounts() == []


def test_skip_first_after_another_failure_goes_on_with_the_next_part(gse_env):
    gse_env.switch({"gse_test_fail_fstab": True})
    child = _spawn(gse_env, "--base=precomp", "-q")
    try:
        child.expect(PROMPT)
        child.sendline("s")
        child.expect(r"Build \S+ finished")
        assert _finish(child) == 0
    finally:
        child.close(force=True)
    assert sorted(gse_env.records()[1]["tags"]) == sorted(
        ["gpartf", "gpartg", "gparth", "gparti", "gpartj", "gpartk", "gpartl", "gmount"])
    ran = gse_env.ran()
    second = ran[ran.index("gfont") + 1:]  # gfont is the last hook before gfstab failed
    assert second[:3] == ["gmount", "gpartf", "gess"] and "gparte" not in second


def test_abort_ends_with_1_and_no_mounts(gse_env):
    gse_env.switch({"gse_test_fail_emerge": True})
    child = _spawn(gse_env, "--base=precomp", "-q")
    try:
        child.expect(PROMPT)
        assert gse_env.mounts()
        child.sendline("a")
        child.expect("gse: aborted; the report is in")
        assert _finish(child) == 1
    finally:
        child.close(force=True)
    assert gse_env.mounts() == []


def test_verbose_is_refused_on_a_terminal(gse_env):
    child = _spawn(gse_env, "--base=precomp", "-v", questions=0)
    child.expect("--verbose cannot run with an interactive run")
    assert _finish(child) == 2
    assert gse_env.written() == []


def test_over_ssh_outside_tmux_asks(gse_env):
    env = dict(gse_env.env, SSH_CONNECTION="10.0.0.1 50000 10.0.0.2 22")
    child = _spawn(gse_env, "--base=precomp", env=env, questions=0)
    child.expect("started over SSH outside tmux/screen")
    child.expect(r"Continue anyway\? \[y/N\] ")
    child.sendline("n")
    child.expect("declined")
    assert _finish(child) == 130
    assert gse_env.written() == []
