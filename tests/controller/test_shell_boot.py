"""The boot partition's shell functions (gse-boot-lib.sh) on crafted
directories, with dash on this host: the pair and entry layout, the
rotation that keeps the previous pair as the fallback, blessing, the
preference of a reboot, refusals (no room, partition not found) and the
states a power cut can leave.

A directory stands for the mounted boot partition (a small tmpfs where the
room counts); mount, umount and reboot are not run here (the QEMU scenario
test_boot_partition.py mounts a real one and reboots)."""
import hashlib
import os
import subprocess

import pytest

from test_shell_lib import LIB, sh

BOOT = f". {LIB}/97gse-boot/gse-boot-lib.sh\n"


def bsh(script, tmp_path):
    return sh(f"mkdir -p $GSE_RUN\n{BOOT}{script}", tmp_path)


@pytest.fixture
def part(tmp_path):
    """A mounted 2 MiB tmpfs as the boot partition (df must see its room)."""
    d = tmp_path / "boot"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "gse-test-boot", str(d)], check=True)
    yield d
    subprocess.run(["umount", str(d)], check=True)


def pair(tmp_path, name, size=1000):
    """A kernel and an initramfs (distinct bytes) and their digests."""
    k, i = tmp_path / f"{name}.k", tmp_path / f"{name}.i"
    k.write_bytes(name.encode() * size)
    i.write_bytes(name.encode()[::-1] * size + b"i")
    return (str(k), str(i), hashlib.sha512(k.read_bytes()).hexdigest(), hashlib.sha512(i.read_bytes()).hexdigest())


def install(part, version, serial, p, need=100000):
    k, i, ks, iks = p
    return f'gse_boot_install {part} {version} {serial} {k} {i} {ks} {iks} {need}; echo "rc=$? $GSE_BOOT_REASON"\n'


def entries(part):
    d = part / "loader" / "entries"
    return sorted(os.listdir(d)) if d.is_dir() else []


def versions(part):
    """The versions that have an entry, whatever their boot counters."""
    return sorted(e[len("gse-"):].split("+")[0].removesuffix(".conf") for e in entries(part))


def test_new_pair_is_default_previous_kept_older_removed(tmp_path, part):
    p1, p2, p3 = (pair(tmp_path, n) for n in ("one", "two", "three"))
    r = bsh("GSE_BOOT_TRIES=3; GSE_BOOT_CMDLINE='root=gse panic=-1'\n" + install(part, "v1", 1, p1) +
            "gse_boot_first " + str(part) + "\n" + install(part, "v2", 2, p2) + install(part, "v3", 3, p3) +
            f"gse_boot_first {part}; echo prev=$GSE_BOOT_PREVIOUS", tmp_path)
    assert r.stdout.split("\n")[:5] == ["rc=0 ", "v1", "rc=0 ", "rc=0 ", "v3"], r.stdout + r.stderr
    assert "prev=v2" in r.stdout
    assert entries(part) == ["gse-v2+3.conf", "gse-v3+3.conf"]
    assert sorted(os.listdir(part / "gse")) == ["grub.cfg", "v2", "v3"]
    for v, p in (("v2", p2), ("v3", p3)):
        assert (part / "gse" / v / "vmlinuz").read_bytes() == open(p[0], "rb").read()
        assert (part / "gse" / v / "initramfs").read_bytes() == open(p[1], "rb").read()
        assert (part / "gse" / v / "pair").read_text() == f"{p[2]} {p[3]}\n"
    assert (part / "loader/entries/gse-v3+3.conf").read_text() == (
        "title GSE v3\nversion 3\nsort-key gse\nlinux /gse/v3/vmlinuz\ninitrd /gse/v3/initramfs\n"
        "options root=gse panic=-1 gse.pair=v3\n")
    grub = (part / "gse" / "grub.cfg").read_text()
    assert grub.index("menuentry 'GSE v3'") < grub.index("menuentry 'GSE v2'") and "v1" not in grub
    assert "\tlinux /gse/v3/vmlinuz root=gse panic=-1 gse.pair=v3\n" in grub
    # The record decides "installed" (digests of the pointer, no hashing).
    r = bsh(f"gse_boot_has {part} v3 {p3[2]} {p3[3]}; echo $?; gse_boot_has {part} v3 {p2[2]} {p3[3]}; echo $?;"
            f"gse_boot_has {part} v1 {p1[2]} {p1[3]}; echo $?", tmp_path)
    assert r.stdout.split() == ["0", "1", "1"]


def test_the_newest_serial_is_default_whatever_the_version_string(tmp_path, part):
    # A rollback published as "a-old" with a higher serial than "z-new".
    r = bsh(install(part, "z-new", 9, pair(tmp_path, "n")) + install(part, "a-old", 10, pair(tmp_path, "o")) +
            f"gse_boot_first {part}", tmp_path)
    assert r.stdout.split()[-1] == "a-old"


def test_no_boot_counter_when_tries_is_zero(tmp_path, part):
    bsh("GSE_BOOT_TRIES=0\n" + install(part, "v1", 1, pair(tmp_path, "a")), tmp_path)
    assert entries(part) == ["gse-v1.conf"]


def test_bless_drops_the_counter_once(tmp_path, part):
    r = bsh("GSE_BOOT_TRIES=3\n" + install(part, "v1", 1, pair(tmp_path, "a")) +
            f"mv {part}/loader/entries/gse-v1+3.conf {part}/loader/entries/gse-v1+2-1.conf\n"
            f"gse_boot_bless {part} v1; echo $?; gse_boot_bless {part} v1; echo $?; gse_boot_bless {part} v9; echo $?",
            tmp_path)
    assert r.stdout.split()[-3:] == ["0", "1", "1"]
    assert entries(part) == ["gse-v1.conf"]


def test_prefer_marks_the_entries_before_it_bad(tmp_path, part):
    r = bsh("GSE_BOOT_TRIES=3\n" + install(part, "v1", 1, pair(tmp_path, "a")) + f"gse_boot_bless {part} v1\n" +
            install(part, "v2", 2, pair(tmp_path, "b")) +
            f"gse_boot_first {part}; gse_boot_prefer {part} v1; echo $?; gse_boot_first {part}", tmp_path)
    assert r.stdout.split()[-3:] == ["v2", "0", "v1"], r.stdout + r.stderr
    assert entries(part) == ["gse-v1.conf", "gse-v2+0.conf"]
    # An entry whose tries are used up is not preferred: its pair did not boot.
    r = bsh(f"gse_boot_prefer {part} v2; echo $?; gse_boot_first {part}", tmp_path)
    assert r.stdout.split() == ["1", "v1"]


def test_no_room_is_refused_and_changes_nothing(tmp_path, part):
    p1 = pair(tmp_path, "a", 100000)
    big = pair(tmp_path, "b", 2000000)
    r = bsh(install(part, "v1", 1, p1, need=200000) + install(part, "v2", 2, big, need=3000000), tmp_path)
    assert r.stdout.split("\n")[0] == "rc=0 "
    assert r.stdout.split("\n")[1].startswith("rc=2 no space: the pair needs 3000000 bytes, the boot partition has ")
    assert versions(part) == ["v1"]
    assert sorted(os.listdir(part / "gse")) == ["grub.cfg", "v1"]


def test_room_is_made_from_pairs_no_loader_falls_back_to(tmp_path, part):
    # Three pairs of 600 kB on 2 MiB: the oldest goes before the new one is
    # written (only the previous default and the new one must stay).
    ps = [pair(tmp_path, n, 300000) for n in ("a", "b", "c")]
    script = "".join(install(part, f"v{n}", n, p, need=700000) for n, p in enumerate(ps, 1))
    # v1 is the default again (a fallback made it first) when v3 comes.
    script = script.replace(install(part, "v3", 3, ps[2], need=700000),
                            f"gse_boot_prefer {part} v1\n" + install(part, "v3", 3, ps[2], need=700000))
    r = bsh(script, tmp_path)
    assert r.stdout.split("\n")[:3] == ["rc=0 "] * 3, r.stdout + r.stderr
    assert versions(part) == ["v1", "v3"]


@pytest.mark.parametrize("spec, rc, reason", [
    ("LABEL=gse-test-no-such-label", "1", "partition not found: LABEL=gse-test-no-such-label (waited 0 s)"),
    ("/dev/gse-test-no-such-device", "1", "partition not found: /dev/gse-test-no-such-device (waited 0 s)"),
    ("vdb1", "2", "GSE_BOOT_PART 'vdb1' is no /dev path, LABEL=, PARTLABEL=, UUID= or PARTUUID="),
])
def test_partition_not_found_is_a_refusal_with_its_reason(tmp_path, spec, rc, reason):
    r = bsh(f"GSE_BOOT_WAIT=0; GSE_BOOT_PART='{spec}'; gse_boot_mount ro; echo \"$?|$GSE_BOOT_REASON\"", tmp_path)
    assert r.stdout.strip() == f"{rc}|{reason}"


@pytest.mark.parametrize("value", ["5s", "-1", "99999", ""])
def test_a_wait_of_the_wrong_type_is_the_default_named_in_the_log(tmp_path, value):
    # "5s" once reached $((...)): an arithmetic error ends the controller's shell.
    r = bsh(f"GSE_BOOT_WAIT='{value}'; gse_boot_setting GSE_BOOT_WAIT \"$GSE_BOOT_WAIT\" 5; echo rc=$?; cat $GSE_RUN/log",
            tmp_path)
    assert r.stdout.split("\n")[:2] == ["5", "rc=0"], r.stdout + r.stderr
    assert f"WARNING: boot partition: GSE_BOOT_WAIT='{value}' is not a whole number up to 9999: 5 is used" in r.stdout


# A check run at every durable point of an install (each `sync`): every
# entry names a complete pair, and some entry exists once one did.
INVARIANT = r"""
sync() {
    [ $# -gt 0 ] && return 0
    _n=0
    for _e in "$P"/loader/entries/gse-*.conf; do
        [ -f "$_e" ] || continue
        _n=$((_n + 1))
        _v=$(sed -n 's,^linux /gse/\(.*\)/vmlinuz$,\1,p' "$_e")
        for _x in vmlinuz initramfs pair; do
            [ -f "$P/gse/$_v/$_x" ] || echo "BROKEN: $_e without gse/$_v/$_x"
        done
        cmp -s "$P/gse/$_v/vmlinuz" "$T/$_v.k" || echo "BROKEN: gse/$_v/vmlinuz is not the verified one"
    done
    [ -e "$T/had-entry" ] && [ $_n -eq 0 ] && echo "BROKEN: no entry"
    [ $_n -gt 0 ] && : > "$T/had-entry"
    echo SYNC >> "$T/syncs"
}
"""


def test_every_durable_state_of_an_install_has_a_complete_entry(tmp_path, part):
    script = f"P={part}\n{INVARIANT}"
    for n, v in enumerate(("v1", "v2", "v3", "v4"), 1):
        p = pair(tmp_path, v)
        os.rename(p[0], tmp_path / f"{v}.k")
        script += install(part, v, n, (str(tmp_path / f"{v}.k"),) + p[1:])
    # The same version republished with another pair: the old entry goes
    # only while another one stays.
    p = pair(tmp_path, "v4b")
    os.replace(p[0], tmp_path / "v4.k")
    script += install(part, "v4", 5, (str(tmp_path / "v4.k"),) + p[1:])
    r = bsh(script, tmp_path)
    assert "BROKEN" not in r.stdout, r.stdout
    assert r.stdout.count("rc=0") == 5, r.stdout + r.stderr
    assert len((tmp_path / "syncs").read_text().split()) > 20
    assert versions(part) == ["v3", "v4"]
    assert (part / "gse" / "v4" / "vmlinuz").read_bytes() == b"v4b" * 1000


def test_what_a_cut_install_left_is_ignored_then_cleared(tmp_path, part):
    p1, p2 = pair(tmp_path, "a"), pair(tmp_path, "b")
    r = bsh(install(part, "v1", 1, p1) +
            # Cut while writing v2: its files in gse/.new-v2, an entry
            # not yet renamed (no boot loader reads *.conf.new).
            f"mkdir -p {part}/gse/.new-v2; echo half > {part}/gse/.new-v2/vmlinuz;"
            f"echo x > {part}/loader/entries/gse-v2.conf.new; gse_boot_first {part}\n" +
            install(part, "v2", 2, p2) + f"gse_boot_first {part}", tmp_path)
    assert r.stdout.split() == ["rc=0", "v1", "rc=0", "v2"], r.stdout + r.stderr
    assert not (part / "gse" / ".new-v2").exists()
    assert not any(e.endswith(".new") for e in entries(part))


@pytest.fixture
def state(tmp_path):
    d = tmp_path / "state"
    d.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "gse-test-state", str(d)], check=True)
    yield d
    subprocess.run(["umount", str(d)], check=True)


def reboot_script(part, state, running=""):
    # The boot partition is the directory; reboot only says it was asked.
    return (f"GSE_STATE_MNT={state}; GSE_BOOT_PART=LABEL=x; GSE_BOOT_MNT={part}\n"
            "gse_boot_mount() { return 0; }; gse_boot_umount() { return 0; }; gse_log_save() { return 0; }\n"
            "reboot() { echo REBOOT; }\n"
            f"echo '{running}' > $T/cmdline; GSE_PROC_CMDLINE=$T/cmdline\n")


def test_reboot_into_the_pair_of_the_new_system_once(tmp_path, part, state):
    setup = "GSE_BOOT_TRIES=3\n" + install(part, "v1", 1, pair(tmp_path, "a")) + f"gse_boot_bless {part} v1\n"
    r = bsh(reboot_script(part, state, "root=gse gse.pair=v1") + setup + install(part, "v2", 2, pair(tmp_path, "b")) +
            "gse_boot_reboot v2; echo rc=$?; cat $GSE_STATE_MNT/boot/reboot\n"
            # The boot loader took v1 again: no second reboot, the caller falls back.
            "gse_boot_reboot v2; echo rc=$?; cat $GSE_RUN/log", tmp_path)
    out = r.stdout.split("\n")
    assert out[2:6] == ["REBOOT", "rc=0", "v2 1", "rc=1"], r.stdout + r.stderr
    assert "boot partition: rebooting into the pair of v2 (the kernel its /lib/modules is for)" in r.stdout
    assert ("WARNING: boot partition: rebooted 1 time(s) for the pair of v2 and the boot loader did not take it: "
            "no reboot") in r.stdout


def test_reboot_makes_the_pair_the_loaders_choice(tmp_path, part, state):
    # SYSFS fell back to v1 (v2 deprived) while v2's pair is the default.
    setup = "GSE_BOOT_TRIES=3\n" + install(part, "v1", 1, pair(tmp_path, "a")) + f"gse_boot_bless {part} v1\n" + \
        install(part, "v2", 2, pair(tmp_path, "b")) + f"gse_boot_bless {part} v2\n"
    r = bsh(reboot_script(part, state, "root=gse gse.pair=v2") + setup +
            f"gse_boot_reboot v1; echo rc=$?; gse_boot_first {part}", tmp_path)
    assert r.stdout.split()[-3:] == ["REBOOT", "rc=0", "v1"], r.stdout + r.stderr
    assert entries(part) == ["gse-v1.conf", "gse-v2+0.conf"]


def test_reboots_of_the_wrong_type_keep_the_bound_of_one(tmp_path, part, state):
    # A non-number once made the bound's test fail open: a reboot at every boot.
    setup = "GSE_BOOT_TRIES=3; GSE_BOOT_REBOOTS=many\n" + install(part, "v1", 1, pair(tmp_path, "a")) + \
        f"gse_boot_bless {part} v1\n"
    r = bsh(reboot_script(part, state, "root=gse gse.pair=v1") + setup + install(part, "v2", 2, pair(tmp_path, "b")) +
            "gse_boot_reboot v2; echo rc=$?; gse_boot_reboot v2; echo rc=$?; cat $GSE_RUN/log", tmp_path)
    lines = r.stdout.split("\n")
    assert lines.count("REBOOT") == 1 and "rc=0" in lines and "rc=1" in lines, r.stdout + r.stderr
    assert "GSE_BOOT_REBOOTS='many' is not a whole number up to 9999: 1 is used" in r.stdout


@pytest.mark.parametrize("running, why", [
    ("root=gse gse.pair=v2", "this boot came from the pair of v2 and its system still lacks the running kernel's "
                             "modules: no reboot"),
    ("root=gse gse.pair=v1", None),
])
def test_no_reboot_without_a_pair_to_boot(tmp_path, part, state, running, why):
    r = bsh(reboot_script(part, state, running) + install(part, "v1", 1, pair(tmp_path, "a")) +
            "gse_boot_reboot v2; echo rc=$?; cat $GSE_RUN/log", tmp_path)
    assert "REBOOT" not in r.stdout and "rc=1" in r.stdout, r.stdout + r.stderr
    assert (why or "boot partition: no pair of v2 to reboot into") in r.stdout
