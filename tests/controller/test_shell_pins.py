"""The version check of a client whose group is pinned (gse-pin-lib.sh), on this host with dash: which
pointer it reads, and that a pointer of another group, or of none, is refused before its serial counts.

The version check runs for real (gse-version-check.sh's own function, its library lines replaced by
the sources here) against a loopback HTTP server and pointers signed with the test key; the disk is
stubbed (SYSFS is named, nothing is installed: updates are disabled, so the check ends by naming the
version it would install).  What the disk, the download and the boot make of it is test_boot_pins.py's.
"""
import os
import re

import pytest

import pubtree
from client import loopback_http
from test_shell_lib import LIB, sh
from test_shell_refusals import state  # noqa: F401 (a fixture)

SCRIPT = os.path.join(LIB, "92gse-net", "gse-version-check.sh")


def check_function():
    """gse-version-check.sh without its library lines and its call: the function alone."""
    with open(SCRIPT) as f:
        text = f.read()
    text = re.sub(r"^\. /lib/gse/.*$|^gse_env_load$", "", text, flags=re.MULTILINE)
    return text[:text.index('if [ "$(gse_result network)" = 0 ]')]


def pointer(home, path, serial, version, group=None):
    fields = {"format": 1, "serial": serial, "version": version, "path": f"images/{version}/image.tar.zst",
              "sha512": "a" * 128, "size": 10, "compression": "zstd", "published": "2026-11-30T00:00:00Z"}
    if group:
        fields["group"] = group
    os.makedirs(os.path.dirname(path), exist_ok=True)
    pubtree.clearsign_pointer(home, str(path), fields)


def version_check(tmp_path, state, ring, port, hostname, pinned=("room2",), seen=None):  # noqa: F811
    """Run the version check as client HOSTNAME; (rc, log, highest serial seen)."""
    members = "room2 hostname=pc-room2\nlab hostname=pc-lab\n"
    script = f"""
. {LIB}/94gse-system/gse-overlay-lib.sh
. {LIB}/92gse-net/gse-pin-lib.sh
{check_function()}
gse_find_label() {{ echo /dev/vdz2; }}
gse_installed_get() {{ return 1; }}
gse_identity() {{ _gse_mid=''; return 0; }}
mkdir -p $GSE_RUN/config.d
GSE_STATE_MNT={state}; GSE_KEYRING={ring}; GSE_SERVER=http://127.0.0.1:{port}
GSE_HOSTNAME={hostname}; GSE_NOUPDATE=yes; GSE_CONNECT_TIMEOUT=3
printf '%s' '{members}' > $GSE_RUN/config.d/members
{"printf '%s' '" + "".join(g + chr(10) for g in pinned) + "' > $GSE_RUN/config.d/pinned" if pinned else ":"}
{f"gse_state_write serial {seen}" if seen else ":"}
gse_fetch_pointer version.txt
( gse_version_check ); echo "rc=$?"
cat $GSE_STATE_MNT/serial 2>/dev/null || echo none
"""
    r = sh(script, tmp_path, timeout=120)
    out = r.stdout.split()
    log = (tmp_path / "run" / "log").read_text() if (tmp_path / "run" / "log").exists() else ""
    assert out and out[0].startswith("rc="), r.stdout + r.stderr
    return int(out[0][3:]), log, out[1]


@pytest.fixture
def served(tmp_path, signing):
    """The tree: version.txt (v3, serial 3), room2 pinned to v1 (serial 5), lab's pointer (v2, serial 4)."""
    home, ring = signing
    tree = tmp_path / "tree"
    pointer(home, tree / "version.txt", 3, "v3")
    pointer(home, tree / "groups/room2/version.txt", 5, "v1", group="room2")
    pointer(home, tree / "groups/lab/version.txt", 4, "v2", group="lab")
    with loopback_http(tree) as port:
        yield tree, ring, port


def test_a_client_of_a_pinned_group_reads_its_groups_pointer(tmp_path, state, served):  # noqa: F811
    tree, ring, port = served
    rc, log, serial = version_check(tmp_path, state, ring, port, "pc-room2")
    assert rc == 1 and "version: group room2 is pinned: groups/room2/version.txt" in log, log
    assert "version: v1 available, updates disabled" in log and serial == "5"


@pytest.mark.parametrize("hostname, pinned", [("pc-lab", ("room2",)), ("pc-other", ("room2",)),
                                              ("pc-room2", ())])
def test_a_client_of_no_pinned_group_reads_the_default(tmp_path, state, served, hostname, pinned):  # noqa: F811
    tree, ring, port = served
    rc, log, serial = version_check(tmp_path, state, ring, port, hostname, pinned=pinned)
    assert rc == 1 and "version: v3 available, updates disabled" in log and serial == "3", log
    assert "pinned" not in log


def test_a_missing_group_pointer_is_refused_never_the_default(tmp_path, state, served):  # noqa: F811
    tree, ring, port = served
    os.unlink(tree / "groups/room2/version.txt")
    rc, log, serial = version_check(tmp_path, state, ring, port, "pc-room2", seen=2)
    assert rc == 2 and ("version refused: groups/room2/version.txt is not published, yet the config.d pins "
                        "group room2: the default is not taken instead") in log, log
    assert "v3" not in log and serial == "2"


@pytest.mark.parametrize("hostname, swap, reason", [
    # lab's pointer served at room2's path: signed, newer, yet for another group.
    ("pc-room2", ("groups/lab/version.txt", "groups/room2/version.txt"),
     "groups/room2/version.txt: the pointer of group 'lab'; this client is in the pinned group room2"),
    # room2's pointer served as the default to a client of no pinned group.
    ("pc-lab", ("groups/room2/version.txt", "version.txt"),
     "version.txt: the pointer of group 'room2'; this client is in no pinned group"),
    # The default served at the pinned group's path.
    ("pc-room2", ("version.txt", "groups/room2/version.txt"),
     "groups/room2/version.txt: a pointer of no group; this client's group room2 is pinned"),
])
def test_a_pointer_for_someone_else_is_refused_before_its_serial_counts(tmp_path, state, served, hostname, swap,
                                                                        reason):  # noqa: F811
    tree, ring, port = served
    src, dst = swap
    (tree / dst).write_bytes((tree / src).read_bytes())
    rc, log, serial = version_check(tmp_path, state, ring, port, hostname, seen=2)
    assert rc == 2 and "version refused: " + reason in log, log
    assert serial == "2"  # its serial was not taken as seen


def test_a_replayed_pin_is_refused_like_any_pointer(tmp_path, state, served):  # noqa: F811
    tree, ring, port = served
    rc, log, serial = version_check(tmp_path, state, ring, port, "pc-room2", seen=7)
    assert rc == 2 and "version refused: serial 5 (v1) is older than the accepted 7 (replayed pointer)" in log, log
    assert serial == "7"


def test_pinned_list_and_pointer_group_functions(tmp_path):
    (tmp_path / "c").mkdir()
    (tmp_path / "c" / "pinned").write_text("lab\nroom2")  # no final newline: still read
    (tmp_path / "b").write_text("serial: 4\ngroup: room2\n")
    r = sh(f". {LIB}/92gse-net/gse-pin-lib.sh; for g in room2 lab room '' room2x; do "
           f"gse_pinned_group $T/c \"$g\"; echo $?; done; gse_pinned_group $T/none room2; echo $?;"
           f"gse_version_pointer room2; gse_version_pointer '';"
           f"gse_pointer_group $T/b room2; echo $?; gse_pointer_group $T/b ''; echo $?", tmp_path)
    assert r.stdout.split() == ["0", "0", "1", "1", "1", "1", "groups/room2/version.txt", "version.txt", "0", "2"], \
        r.stdout + r.stderr
