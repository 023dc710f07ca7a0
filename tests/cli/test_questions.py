"""The concept document's questions (parts D, H, L; the hook table's rows), asked by gse at a terminal.

gse runs under a pseudo-terminal and the stand-in playbook records the
variables it was handed, so each answer is checked where the roles read it.
The menuconfig of part H is a stand-in Makefile in the chroot: what it cannot
show is the real ncurses menuconfig of a kernel tree; what it shows is that
gse opens the command in the chroot on the terminal, with the run stopped
at part H, and that the build goes on at gker with the saved configuration.
"""
import os
import subprocess
import sys

import pexpect
import pytest

from conftest import GSE, ROOT

QUESTION = r"\[(y/N|Y/n)\] "


def _spawn(gse_env, *args):
    return pexpect.spawn(GSE, list(args), env=gse_env.env, cwd=str(gse_env.tmp), encoding="utf-8",
                         timeout=300, dimensions=(50, 200))


def _finish(child):
    child.expect(pexpect.EOF)
    child.close()
    return child.exitstatus


def test_answers_at_a_terminal_reach_the_playbook_before_the_build_starts(gse_env):
    child = _spawn(gse_env, "--base=precomp", "-q")
    asked = []
    try:
        for answer in ("y", "yes", "n", "", "y"):
            child.expect(r"Part ([A-L]) \((\w+)\): [^\r\n]*" + QUESTION)
            asked.append(child.match.group(2))
            # Asked up front: nothing of the build exists while a question waits.
            assert gse_env.builds() == []
            child.sendline(answer)
        child.expect(r"Build \S+ finished")
        assert _finish(child) == 0
    finally:
        child.close(force=True)
    # gker before gkconfig: the menuconfig question needs "build a kernel?" answered yes.
    assert asked == ["grebuild", "gker", "gkconfig", "ginitrd", "gmark"]
    (record,) = gse_env.records()
    assert record["gse_rebuild_world"] is True
    assert record["gse_kernel_build"] is True
    assert record["gse_kernel_menuconfig"] is False
    assert record["gse_initramfs_build"] is False     # Enter keeps the default
    assert record["gse_mark_default"] is True


def test_a_wrong_answer_is_asked_again_and_enter_keeps_the_configured_value(gse_env):
    gse_env.write_config("publish", {"gse_mark_default": True})
    child = _spawn(gse_env, "--base=catalyst", "-q")
    try:
        # catalyst: part D asks nothing (the stages were built here).
        child.expect(r"Part H \(gker\): build a kernel\? \[y/N\] ")
        child.sendline("")
        child.expect(r"Part I \(ginitrd\)")
        child.sendline("")
        child.expect(r"Part L \(gmark\): mark as default\? \[Y/n\] ")
        child.sendline("perhaps")
        child.expect(r"answer y or n \(Enter keeps yes\)")
        child.expect(QUESTION)
        child.sendline("")
        child.expect(r"Build \S+ finished")
        assert _finish(child) == 0
    finally:
        child.close(force=True)
    (record,) = gse_env.records()
    assert record["gse_mark_default"] is True and record["gse_kernel_build"] is False
    assert record["gse_rebuild_world"] is None


def test_enforce_answers_yes_and_lawful_good_asks_nothing(gse_env):
    child = _spawn(gse_env, "--base=precomp", "-q", "--enforce=gpartd,gmark", "--lawful-good=gparti")
    try:
        child.expect(r"Part D \(grebuild\): [^\r\n]* yes \(--enforce\)")
        child.expect(r"Part H \(gker\)")
        child.sendline("n")
        child.expect(r"Part L \(gmark\): mark as default\? yes \(--enforce\)")
        child.expect(r"Build \S+ finished")
        assert _finish(child) == 0
    finally:
        child.close(force=True)
    assert "ginitrd" not in child.before
    (record,) = gse_env.records()
    # --enforce reaches the roles as gse_enforce (the enforced filter); the question's variable is untouched.
    assert record["gse_enforce"] == ["gpartd", "gmark"]
    assert record["gse_rebuild_world"] is None and record["gse_mark_default"] is None
    assert record["gse_kernel_build"] is False


def test_a_question_whose_answer_changes_nothing_is_not_asked(gse_env):
    kernel = gse_env.tmp / "vmlinuz-6.6"
    kernel.write_text("kernel")
    child = _spawn(gse_env, "--base=precomp", "-q", "--kernel=%s" % kernel)
    asked = []
    try:
        while child.expect([r"Part [A-L] \((\w+)\): [^\r\n]*" + QUESTION, r"Build \S+ finished"]) == 0:
            asked.append(child.match.group(1))
            child.sendline("y")
        assert _finish(child) == 0
    finally:
        child.close(force=True)
    # --kernel installs that image: neither "build a kernel?" nor menuconfig.
    assert asked == ["grebuild", "ginitrd", "gmark"]


def test_without_a_terminal_the_defaults_apply(gse_env):
    gse_env.write_config("portage", {"gse_rebuild_world": True})
    proc = gse_env.gse("--base=precomp", "-q")
    assert proc.returncode == 0, proc.stderr
    assert "[y/N]" not in proc.stdout and "[Y/n]" not in proc.stdout
    (record,) = gse_env.records()
    # Nothing handed over: the roles read config.d (here: yes) and the documented defaults.
    assert record["gse_rebuild_world"] is True
    assert record["gse_kernel_build"] is None and record["gse_mark_default"] is None


def test_non_interactive_on_a_terminal_asks_nothing(gse_env):
    child = _spawn(gse_env, "--base=precomp", "-q", "--non-interactive")
    try:
        index = child.expect([QUESTION, r"Build \S+ finished"])
        assert index == 1, "a question was asked with --non-interactive"
        assert _finish(child) == 0
    finally:
        child.close(force=True)


def test_menuconfig_opens_in_the_chroot_and_the_build_goes_on_at_gker(gse_env):
    gse_env.write_config("kernel", {"gse_kernel_sources": "/root/linux", "gse_kernel_config": ""})
    sources = gse_env.cdist / "workdir-precomp" / "root" / "linux"
    sources.mkdir(parents=True)
    # A stand-in of the kernel's menuconfig target: it reads the terminal and writes .config.
    (sources / "Makefile").write_text(
        "menuconfig:\n\t@test -d /etc && test ! -e %s\n"
        "\t@printf 'kernel option: '; read answer; echo \"CONFIG_GSE_TEST=$$answer\" > .config\n" % gse_env.tmp)
    child = _spawn(gse_env, "--base=precomp", "-q")
    try:
        for answer in ("", "y", "y", "", ""):
            child.expect(QUESTION)
            child.sendline(answer)
        child.expect(r"chroot \S+/workdir-precomp /bin/bash -l -c make -C /root/linux menuconfig")
        child.expect("kernel option: ")
        # The run waits at part H with the chroot's mounts in place.
        assert any(m.endswith("/workdir-precomp/usr") for m in gse_env.mounts())
        child.sendline("tuned")
        child.expect(r"Build \S+ finished")
        assert _finish(child) == 0
    finally:
        child.close(force=True)
    assert (sources / ".config").read_text() == "CONFIG_GSE_TEST=tuned\n"
    first, second = gse_env.records()
    assert first["gse_kernel_menuconfig"] is True and first["gse_kernel_configured"] is None
    assert second["gse_kernel_configured"] is True
    assert "gker" in second["tags"] and "gkconfig" not in second["tags"] and "gpartc" not in second["tags"]
    ran = gse_env.ran()
    assert ran.count("gkconfig") == 1 and ran.count("gker") == 1
    assert ran.index("gkconfig") < ran.index("gker")
    assert not os.path.exists(os.path.join(gse_env.last_build(), "failure-1.txt"))
    assert gse_env.mounts() == []


def test_without_a_person_part_h_stops_instead_of_waiting(gse_env):
    """config.d asks for menuconfig, but no person is there: the run ends at part H with the reason."""
    gse_env.write_config("kernel", {"gse_kernel_menuconfig": True, "gse_kernel_build": True,
                                    "gse_kernel_sources": "/root/linux", "gse_kernel_config": ""})
    proc = gse_env.gse("--base=precomp", "-q", timeout=600)
    assert proc.returncode == 1
    assert "part H waits for make menuconfig" in proc.stderr
    assert gse_env.mounts() == []


WAIT_MODULES = ("pause", "ansible.builtin.pause", "vars_prompt", "ansible.builtin.wait_for_connection")


def test_no_playbook_or_role_asks_a_terminal():
    """AWX and plain ansible-playbook never block: no pause, no vars_prompt anywhere."""
    found = []
    for top in ("playbooks", "roles"):
        for dirpath, _, files in os.walk(os.path.join(ROOT, top)):
            for name in files:
                if name.endswith((".yml", ".yaml")):
                    path = os.path.join(dirpath, name)
                    with open(path, encoding="utf-8") as f:
                        for number, line in enumerate(f, 1):
                            key = line.strip().lstrip("- ").split(":", 1)[0]
                            if key in WAIT_MODULES:
                                found.append("%s:%d" % (path, number))
    assert found == []


def test_ansible_playbook_with_stdin_closed_ends_at_the_menuconfig_stop(tmp_path):
    """The real stop of part H, run by ansible-playbook as AWX would: it fails with the reason, never waits."""
    play = tmp_path / "play.yml"
    play.write_text(
        "- hosts: localhost\n  gather_facts: false\n  vars:\n    gse_kernel_sources: /usr/src/linux\n"
        "    gse_kernel_config: ''\n  tasks:\n"
        "    - ansible.builtin.include_tasks: %s/roles/kernel/tasks/menuconfig.yml\n" % ROOT)
    bindir = os.path.dirname(sys.executable)
    try:
        proc = subprocess.run([os.path.join(bindir, "ansible-playbook"), "-i", "localhost,", "-c", "local",
                               str(play)], stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=300, env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    except subprocess.TimeoutExpired:
        pytest.fail("ansible-playbook waited with stdin closed")
    assert proc.returncode == 2
    assert "menuconfig at the terminal: part H waits for make menuconfig in /usr/src/linux" in proc.stdout
