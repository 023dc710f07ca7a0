"""gse wake: magic packets captured on a veth pair in a network namespace the
test creates (tests/wolnet.py), the groups file of config.d, the stagger (its
sleep replaced: no test waits), and bad input refused with one line, exit 2,
nothing sent."""
import os
import subprocess
import sys

import pytest

from gse import cli, wake
from tests.wolnet import BROADCAST, magic, nothing_more, received, segment  # noqa: F401 (fixture)

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

GROUPS = """\
room101:
  - {mac: "52:54:00:aa:00:01", hostname: pc01}
  - {mac: "52-54-00-AA-00-02", hostname: pc02}
  - {mac: "525400aa0003"}
room102:
  - {mac: "52:54:00:bb:00:01", hostname: pc11}
"""


@pytest.fixture
def configd(tmp_path, monkeypatch):
    """Two config.d directories: the admin's room101 replaces the installed one."""
    base, admin = tmp_path / "base", tmp_path / "admin"
    (base / "hosts").mkdir(parents=True)
    (admin / "hosts").mkdir(parents=True)
    (base / "hosts/groups.yml").write_text("room101:\n  - {mac: '52:54:00:ff:ff:01'}\n"
                                           "lab:\n  - {mac: '52:54:00:cc:00:01'}\n")
    (admin / "hosts/groups.yml").write_text(GROUPS)
    monkeypatch.setenv("GSE_CONFIGD", "%s:%s" % (base, admin))
    return admin


def wake_in(seg, argv, sleep=None):
    sleeps = []
    with seg.inside():
        rc = cli.main(["wake"] + argv) if sleep is None else wake.main(argv, sleep=sleep or sleeps.append)
    return rc, sleeps


def test_group_wakes_every_member_with_the_stagger_between(segment, configd, capsys):
    rx = segment.listener()
    sleeps = []
    with segment.inside():
        rc = wake.main(["--group", "room101", "--stagger", "2.5", "--interface", "w0"], sleep=sleeps.append)
    assert rc == 0, capsys.readouterr().err
    got = received(rx, 3)
    assert [data for data, _ in got] == [magic("52:54:00:aa:00:01"), magic("52:54:00:aa:00:02"),
                                         magic("52:54:00:aa:00:03")]
    assert all(len(data) == 102 for data, _ in got)
    assert all(src[0] == "10.201.7.1" for _, src in got)  # from w0's address, over the pair
    assert nothing_more(rx)
    assert sleeps == [2.5, 2.5]  # between machines, not before the first or after the last
    assert capsys.readouterr().out.splitlines() == [
        "woke 52:54:00:aa:00:01 (pc01)", "woke 52:54:00:aa:00:02 (pc02)", "woke 52:54:00:aa:00:03"]


def test_one_mac_to_the_subnet_broadcast_and_port(segment):
    rx = segment.listener(port=7)
    with segment.inside():
        rc = cli.main(["wake", "--mac", "02:00:00:00:00:2a", "--broadcast", BROADCAST, "--port", "7"])
    assert rc == 0
    assert [d for d, _ in received(rx, 1)] == [magic("02:00:00:00:00:2a")]


def test_the_gse_command_wakes(segment, configd):
    """The installed entry point, as an admin types it, run inside the namespace."""
    rx = segment.listener()
    gse = os.path.join(os.path.dirname(sys.executable), "gse")
    r = subprocess.run(["ip", "netns", "exec", segment.name, gse, "wake", "--group", "room102"],
                       capture_output=True, text=True, timeout=60, env=dict(os.environ))
    assert (r.returncode, r.stdout, r.stderr) == (0, "woke 52:54:00:bb:00:01 (pc11)\n", "")
    assert [d for d, _ in received(rx, 1)] == [magic("52:54:00:bb:00:01")]


@pytest.mark.parametrize("argv,message", [
    (["--mac", "52:54:00:aa:00"], "is not a MAC address"),
    (["--mac", "52:54:00:aa:00:0g"], "is not a MAC address"),
    (["--mac", "ff:ff:ff:ff:ff:ff"], "multicast or broadcast"),
    (["--mac", "01:00:5e:00:00:01"], "multicast or broadcast"),
    (["--mac", "00:00:00:00:00:00"], "not a machine's MAC"),
    (["--mac", "52:54:00:aa:00:01", "--stagger", "601"], "stagger"),
    (["--mac", "52:54:00:aa:00:01", "--stagger", "-1"], "stagger"),
    (["--mac", "52:54:00:aa:00:01", "--stagger", "soon"], "--stagger"),
    (["--mac", "52:54:00:aa:00:01", "--port", "0"], "port 0"),
    (["--mac", "52:54:00:aa:00:01", "--broadcast", "10.0.0"], "not an IPv4 broadcast"),
    (["--mac", "52:54:00:aa:00:01", "--interface", "eth0; reboot"], "not a network interface"),
    (["--group", "room999"], "no group room999"),
    (["--group", "room101", "--mac", "52:54:00:aa:00:01"], "not allowed with"),
    ([], "required"),
])
def test_bad_input_one_line_exit_2_nothing_sent(segment, configd, capsys, argv, message):
    rx = segment.listener()
    rc, sleeps = wake_in(segment, argv, sleep=False)
    out, err = capsys.readouterr()
    assert rc == 2 and out == "" and sleeps == []
    assert err.count("\n") == 1 and err.startswith("gse wake: ") and message in err, err
    assert nothing_more(rx)


def test_a_bad_entry_in_the_groups_file_refuses_the_whole_group(segment, configd, capsys):
    (configd / "hosts/groups.yml").write_text(GROUPS + "room103:\n  - {mac: '52:54:00:dd:00:01'}\n"
                                              "  - {mac: 'not-a-mac', hostname: pc22}\n")
    rx = segment.listener()
    rc, _ = wake_in(segment, ["--group", "room103"], sleep=False)
    err = capsys.readouterr().err
    assert rc == 2 and "group room103, entry 2" in err and err.count("\n") == 1, err
    assert nothing_more(rx)


def test_groups_file_option(segment, tmp_path, capsys):
    f = tmp_path / "groups.yml"
    f.write_text("annex:\n  - {mac: '52:54:00:ee:00:01', hostname: a1, room: 3}\n")
    rc, _ = wake_in(segment, ["--group", "annex", "--groups-file", str(f)], sleep=False)
    assert rc == 2 and "unknown key room" in capsys.readouterr().err
    f.write_text("annex:\n  - {mac: '52:54:00:ee:00:01', hostname: a1}\n")
    rx = segment.listener()
    rc, _ = wake_in(segment, ["--group", "annex", "--groups-file", str(f)], sleep=False)
    assert rc == 0 and [d for d, _ in received(rx, 1)] == [magic("52:54:00:ee:00:01")]


def test_missing_interface_fails_with_exit_1(segment, capsys):
    rc, _ = wake_in(segment, ["--mac", "52:54:00:aa:00:01", "--interface", "nosuch0"], sleep=False)
    err = capsys.readouterr().err
    assert rc == 1 and err.startswith("gse wake: ") and err.count("\n") == 1, err


def test_man_1_and_help_show_gse_wake():
    from gse import helptext, manpage
    page = manpage.page1()
    assert "gse wake" in helptext.render()
    for action in wake.parser()._actions:
        for name in action.option_strings:
            if name not in ("-h", "--help"):
                assert "\\fB%s\\fR" % manpage.esc(name) in page, name


@pytest.mark.parametrize("content,message", [
    (b"room: [unclosed\n", "groups.yml"),
    (b"\xff\xfe not text\n", "groups.yml"),
    (b"- just\n- a list\n", "expected a mapping"),
    (b"room:\n  mac: 52:54:00:aa:00:01\n", "expected a list"),
])
def test_unreadable_groups_file_one_line_exit_2(segment, tmp_path, capsys, content, message):
    f = tmp_path / "groups.yml"
    f.write_bytes(content)
    assert wake_in(segment, ["--group", "room", "--groups-file", str(f)], sleep=False)[0] == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and message in err, err
