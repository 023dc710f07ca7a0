"""The reader of the commands a shell file runs (shellcmds.py), on crafted
files: every place a command can hide is found, guards are told from calls,
and what it cannot follow fails loudly instead of passing."""
import shutil

import pytest

import shellcmds

pytestmark = pytest.mark.skipif(not shutil.which("shfmt"), reason="missing: shfmt (scripts/bootstrap installs it)")

EVERYWHERE = r"""#!/bin/sh
a() { in_func "$1"; }
X=1 Y=$(in_subst | in_pipe) after_assigns
first; second && third || fourth
if in_if; then in_then; elif in_elif; then :; else in_else; fi
while ! in_while; do in_do; done
for f in $(in_for_list); do in_for; done
case "$x" in y) in_case ;; esac
v=`in_backticks`
{ in_block; } > /dev/null
( in_subshell ) &
exec in_exec arg
command in_command arg
command -v guarded > /dev/null && guarded
timeout -s KILL 5 in_timeout arg
find . -name x -exec in_find {} +
chroot /root not_here arg
n=$((1 + $(in_arith)))
printf '%s\n' "$(in_quoted_subst)"
local z=$(in_local)
"$CMD" arg
$DEC in
"""


def read_text(tmp_path, text, reviewed=None, name="t.sh"):
    path = tmp_path / name
    path.write_text(text)
    return shellcmds.read([str(path)], reviewed or {})


def test_commands_are_found_wherever_the_shell_runs_them(tmp_path):
    text = EVERYWHERE + "CMD=/lib/gse/tool\nDEC='xz -dc'\nDEC=\"zstd -dcq\"\n"
    found = read_text(tmp_path, text)
    names = {c.name for c in found.calls}
    expected = {"in_func", "in_subst", "in_pipe", "after_assigns", "first", "second", "third", "fourth", "in_if",
                "in_then", "in_elif", "in_else", "in_while", "in_do", "in_for_list", "in_for", "in_case",
                "in_backticks", "in_block", "in_subshell", "in_exec", "in_command", "guarded", "in_timeout",
                "in_find", "chroot", "in_arith", "in_quoted_subst", "in_local", "/lib/gse/tool", "xz", "zstd"}
    assert expected <= names, sorted(expected - names)
    # Not commands: the target of chroot, the assignment's name, the duration, -exec's arguments.
    assert not names & {"not_here", "X", "5", "KILL", "{}", "arg", "in", "-dc"}
    assert found.functions == {"a"}
    assert [(p.name, p.line) for p in found.probes] == [("guarded", 14)]
    lines = {c.name: c.line for c in found.calls}
    assert (lines["in_func"], lines["fourth"], lines["in_backticks"], lines["in_find"]) == (2, 4, 9, 16)


def test_a_busybox_applet_is_recorded_as_an_applet(tmp_path):
    found = read_text(tmp_path, "BB=/lib/gse/busybox\n$BB udhcpc -i eth0\n")
    assert [(box, c.name, c.line) for box, c in found.applets] == [("/lib/gse/busybox", "udhcpc", 2)]


@pytest.mark.parametrize("text,what", [
    ("$(pick) arg\n", "the command word is an expansion"),
    ('"$UNSET" arg\n', "does not only assign literal values"),
    ("T=$(pick)\n$T arg\n", "does not only assign literal values"),
    ("ls | xargs rm\n", "xargs runs what its arguments say"),
    ('eval "$1"\n', "eval runs what its arguments say"),
    ('timeout 5 "$tool"\n', "the wrapped command is an expansion"),
    ("if a; then b\n", "shfmt cannot parse it"),
])
def test_what_the_reader_cannot_follow_fails_loudly(tmp_path, text, what):
    with pytest.raises(shellcmds.UnknownConstruct, match=what):
        read_text(tmp_path, text)


def test_a_reviewed_call_is_let_through(tmp_path):
    found = read_text(tmp_path, 'x\neval "$1"\n', reviewed={("t.sh", 'eval "$1"'): "reason"})
    assert [c.name for c in found.calls] == ["x", "eval"]


def test_a_construct_the_reader_does_not_know_fails_loudly(tmp_path, monkeypatch):
    monkeypatch.setattr(shellcmds, "KNOWN_TYPES", shellcmds.KNOWN_TYPES - {"WhileClause"})
    with pytest.raises(shellcmds.UnknownConstruct, match="t.sh:2: shell construct WhileClause"):
        read_text(tmp_path, "a\nwhile b; do c; done\n")
