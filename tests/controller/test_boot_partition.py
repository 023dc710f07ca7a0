"""The boot partition (GSE_BOOT_PART, module gse-boot) in QEMU: one client
whose second disk is its boot partition (ext2, labelled GSEBOOT, named by
LABEL= in the client config.d from the server).  Version 1 is published
with pair A (the image's own kernel and an initramfs built against it),
version 2 with pair B; the controller puts each pair on the boot partition
after checking it against the signed pointer, with Boot Loader
Specification entries: the new one the default, counted (+3), the previous
one kept as the fallback.  The next boot comes from the entry a BLS boot
loader takes, whose pair then blesses its entry.  A forged kernel leaves
the boot partition as it was, and the system still boots.

What is simulated: no firmware and no boot loader run.  The harness plays
systemd-boot: it takes the entry systemd-boot would take (sort-key, then
the highest version among the entries whose tries are not used up),
renames it as systemd-boot's boot counting does (+3 -> +2-1) and boots
QEMU with that entry's linux, initrd and options, adding what this test
rig needs on the command line (serial console, the server's URL).  Pair A
and pair B carry the same kernel release (the one Debian kernel of the
fixture): pair B's initramfs is pair A's with one more cpio archive
appended, so the two pairs differ in bytes and the boot shows which pair
ran through its entry's `gse.pair=` and the bytes QEMU was given.  A
kernel of another release (the reboot into the new pair instead of the
backup) is covered by test_shell_boot.py on the library.
"""
import os
import re
import shutil
import subprocess
import sys
import tempfile

import pytest

import builds
import pubtree
import testimage
import vm
from client import Client, booted
from gse.serve import Server

sys.path.insert(0, builds.ROOT)
from tests.fixture import kernel as kernel_fixture  # noqa: E402
from tests.fixture.digest import sha512  # noqa: E402

MODULE = "dummy"
# The same module set as test_boot_image_kernel.py: the same kernel tree
# (and its cache) serves both.
DRIVERS = ("virtio_blk virtio_pci virtio_net virtio_scsi sd_mod ahci nvme e1000 e1000e virtio_rng ext4 btrfs "
           "af_packet").split()
LABEL = "GSEBOOT"
RIG = "console=ttyS0 rd.shell=0"


@pytest.fixture(scope="module")
def kernel_tree():
    if not shutil.which("apt-get") or not shutil.which("depmod"):
        pytest.skip("needs apt-get and depmod (scripts/bootstrap installs them)")
    return kernel_fixture.tree(DRIVERS + [MODULE])


def pair_b(pair_a, work):
    """Pair A's kernel, its initramfs with one more cpio archive appended
    (the kernel unpacks concatenated archives)."""
    stage = os.path.join(work, "pair-b-extra")
    os.makedirs(os.path.join(stage, "etc"), exist_ok=True)
    with open(os.path.join(stage, "etc", "gse-test-pair"), "w") as f:
        f.write("B\n")
    extra = subprocess.run("find etc | cpio -o -H newc --quiet", shell=True, cwd=stage, check=True,
                           capture_output=True).stdout
    initrd = os.path.join(work, "initramfs-b")
    with open(pair_a["initrd"], "rb") as a, open(initrd, "wb") as b:
        data = a.read()
        b.write(data + b"\0" * (-len(data) % 4) + extra)
    return {"kernel": pair_a["kernel"], "initrd": initrd}


@pytest.fixture(scope="module")
def client(signing, kernel_tree, tmp_path_factory):
    from conftest import need
    need("dracut", "qemu-system-x86_64", "busybox", "sfdisk", "mkfs.ext2", "cpio")
    work = str(tmp_path_factory.mktemp("boot-partition"))
    root = os.path.join(work, "controller-root")
    testimage.make_root(root, "v1", kernel_tree=kernel_tree["root"], kvers=(), modprobe=MODULE)
    controller = builds.image_controller(signing[1], root, os.path.basename(kernel_tree["root"]))
    shutil.rmtree(root)
    c = Client(controller, signing, work)
    c.bootdisk = os.path.join(work, "boot.img")
    # Two pairs of about 30 MB each (the initramfs carries the drivers) and room for a third.
    vm.make_disk(c.bootdisk, "160M")
    subprocess.run(["mkfs.ext2", "-q", "-F", "-L", LABEL, c.bootdisk], check=True)
    c.pair_b = pair_b(controller, work)
    # The boot partition, and the entries' command line, from the server.
    pubtree.add_config(c.gnupghome, c.tree, 1, {
        "controller.conf": f"GSE_BOOT_PART=LABEL={LABEL}\n"
                           "GSE_BOOT_CMDLINE=\"root=gse panic=-1 rd.emergency=reboot\"\n"})
    return c


class BootPart:
    """The boot partition image mounted (loop) on the host."""

    def __init__(self, image, writable=False):
        self.image, self.writable = image, writable

    def __enter__(self):
        self.dir = tempfile.mkdtemp(prefix="gse-bootpart-")
        subprocess.run(["mount", "-o", ("rw" if self.writable else "ro") + ",loop", self.image, self.dir],
                       check=True)
        return self.dir

    def __exit__(self, *exc):
        subprocess.run(["umount", self.dir], check=True)
        os.rmdir(self.dir)


def entries(d):
    e = os.path.join(d, "loader", "entries")
    return sorted(os.listdir(e)) if os.path.isdir(e) else []


def parse_entry(path):
    out = {}
    with open(path) as f:
        for line in f:
            k, _, v = line.rstrip("\n").partition(" ")
            out[k] = v.strip()
    return out


def snapshot(d):
    """{relative path: SHA-512} of every file on the boot partition."""
    out = {}
    for top, dirs, files in os.walk(d):
        dirs[:] = [x for x in dirs if x != "lost+found"]
        for n in files:
            p = os.path.join(top, n)
            out[os.path.relpath(p, d)] = sha512(p)
    return out


def _vercmp_key(s):
    """strverscmp's order, for the versions this test writes: digit runs as numbers."""
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.findall(r"\d+|[A-Za-z]+", s)]


def loader_choice(d):
    """The entry systemd-boot takes by default: the entries sorted by
    sort-key, then version, newest first; those with no tries left after
    the others.  The counter is then counted down as systemd-boot does
    before it boots the entry (+LEFT[-DONE] -> +LEFT-1-DONE+1).  Returns
    (file name after the rename, the entry's keys)."""
    names = [n for n in entries(d) if n.endswith(".conf")]
    assert names, "no boot entry"
    parsed = {n: parse_entry(os.path.join(d, "loader", "entries", n)) for n in names}

    def bad(n):
        return re.search(r"\+0(-\d+)?\.conf$", n) is not None
    # Newest version first, then (stable) good before bad, by sort-key.
    names.sort(key=lambda n: _vercmp_key(parsed[n].get("version", "")), reverse=True)
    names.sort(key=lambda n: (bad(n), parsed[n].get("sort-key", "\uffff")))
    name = names[0]
    entry = parsed[name]
    m = re.search(r"^(.*)\+(\d+)(?:-(\d+))?\.conf$", name)
    if m:
        new = f"{m.group(1)}+{int(m.group(2)) - 1}-{int(m.group(3) or 0) + 1}.conf"
        os.rename(os.path.join(d, "loader", "entries", name), os.path.join(d, "loader", "entries", new))
        name = new
    return name, entry


def boot_from_entry(client, **kw):
    """One boot the way a BLS boot loader would do it: returns (console,
    the entry's keys, the initrd's SHA-512)."""
    work = os.path.join(client.work, f"entry-{client.boots + 1}")
    os.makedirs(work, exist_ok=True)
    with BootPart(client.bootdisk, writable=True) as d:
        name, entry = loader_choice(d)
        kernel, initrd = os.path.join(work, "vmlinuz"), os.path.join(work, "initramfs")
        shutil.copy(os.path.join(d, entry["linux"].lstrip("/")), kernel)
        shutil.copy(os.path.join(d, entry["initrd"].lstrip("/")), initrd)
    client.boots += 1
    with Server(client.tree) as srv, open(os.path.join(client.work, f"boot-{client.boots}.log"), "w") as log:
        out, secs, rc = vm.boot(kernel, initrd, client.disk,
                                f"{entry['options']} {RIG} gse.server=http://10.0.2.2:{srv.port}", base="",
                                log=log, qemu_args=boot_drive(client), **kw)
    return out, entry, sha512(initrd)


def boot_drive(client):
    return ["-drive", f"file={client.bootdisk},format=raw,if=virtio,cache=unsafe"]


def test_pair_of_the_first_install_gets_an_entry(client, kernel_tree):
    client.publish("v1", image={"kernel_tree": kernel_tree["root"], "kvers": (), "modprobe": MODULE},
                   pair=client.controller)
    # The firmware boots pair A directly (as network boot would).
    out, secs, rc = client.boot(timeout=600, qemu_args=boot_drive(client))
    assert "gse: installed v1 (serial 1) on /dev/vda2" in out, out[-3000:]
    assert "gse: boot partition: installed the pair of v1 (default entry), fallback none" in out, out[-3000:]
    assert booted(out) == "v1"
    with BootPart(client.bootdisk) as d:
        assert entries(d) == ["gse-v1+3.conf"]
        assert sha512(os.path.join(d, "gse/v1/vmlinuz")) == client.pointer["kernel_sha512"]
        assert sha512(os.path.join(d, "gse/v1/initramfs")) == client.pointer["initramfs_sha512"]


def test_new_pair_is_default_previous_kept_as_fallback(client, kernel_tree):
    client.publish("v2", image={"kernel_tree": kernel_tree["root"], "kvers": (), "modprobe": MODULE},
                   pair=client.pair_b)
    assert client.pointer["initramfs_sha512"] == sha512(client.pair_b["initrd"]) != sha512(client.controller["initrd"])
    out, entry, initrd_sha = boot_from_entry(client, timeout=600)
    # The loader took v1's entry (pair A), which installs v2 and its pair B.
    assert entry["options"].endswith("gse.pair=v1") and initrd_sha == sha512(client.controller["initrd"])
    assert "gse: installed v2 (serial 2) on /dev/vda3" in out, out[-3000:]
    assert "gse: boot partition: installed the pair of v2 (default entry), fallback v1" in out, out[-3000:]
    # Same kernel release in both pairs: v2 has the running kernel's modules.
    assert booted(out) == "v2"
    with BootPart(client.bootdisk) as d:
        assert entries(d) == ["gse-v1+2-1.conf", "gse-v2+3.conf"]
        assert sorted(os.listdir(os.path.join(d, "gse"))) == ["grub.cfg", "v1", "v2"]
        for key, name in (("kernel", "vmlinuz"), ("initramfs", "initramfs")):
            assert sha512(os.path.join(d, "gse", "v2", name)) == client.pointer[key + "_sha512"]
        new = parse_entry(os.path.join(d, "loader/entries/gse-v2+3.conf"))
        assert new == {"title": "GSE v2", "version": "2", "sort-key": "gse", "linux": "/gse/v2/vmlinuz",
                       "initrd": "/gse/v2/initramfs", "options": "root=gse panic=-1 rd.emergency=reboot gse.pair=v2"}
        with open(os.path.join(d, "gse", "grub.cfg")) as f:
            grub = f.read()
        assert grub.index("menuentry 'GSE v2'") < grub.index("menuentry 'GSE v1'")


def test_next_boot_comes_from_the_new_pair_and_blesses_it(client, kernel_tree):
    out, entry, initrd_sha = boot_from_entry(client, timeout=600)
    assert entry["linux"] == "/gse/v2/vmlinuz" and initrd_sha == sha512(client.pair_b["initrd"])
    assert f"Linux version {kernel_tree['kver']}" in out and "gse.pair=v2" in out
    assert "gse: boot partition: the pair of v2 is installed" in out, out[-3000:]
    assert "gse: boot partition: the pair of v2 booted its system: entry blessed (boot counter removed)" in out
    assert booted(out) == "v2"
    assert f"GSETEST kernel {kernel_tree['kver']}" in out
    assert f"GSETEST module {MODULE} loaded from /lib/modules/{kernel_tree['kver']}" in out
    with BootPart(client.bootdisk) as d:
        assert entries(d) == ["gse-v1+2-1.conf", "gse-v2.conf"]


def test_forged_kernel_leaves_the_boot_partition_untouched(client, kernel_tree):
    client.publish("v3", image={"kernel_tree": kernel_tree["root"], "kvers": (), "modprobe": MODULE},
                   pair=client.controller)
    # The served kernel is not the one the pointer signed: same size, one byte changed.
    path = os.path.join(client.tree, "images", "v3", "vmlinuz")
    with open(path, "r+b") as f:
        f.seek(4096)
        b = f.read(1)
        f.seek(4096)
        f.write(bytes([b[0] ^ 0xff]))
    with BootPart(client.bootdisk) as d:
        before = snapshot(d)
    out, entry, _ = boot_from_entry(client, timeout=600)
    assert entry["options"].endswith("gse.pair=v2")
    assert "gse: installed v3 (serial 3) on /dev/vda2" in out, out[-3000:]
    assert re.search(r"gse: WARNING: boot partition: pair of v3 refused: vmlinuz: SHA512 mismatch: received "
                     r"[0-9a-f]{128}; the boot partition is unchanged", out), out[-3000:]
    assert booted(out) == "v3"
    with BootPart(client.bootdisk) as d:
        assert snapshot(d) == before
    assert re.search(r" v3 boot-pair: vmlinuz: SHA512 mismatch", vm.state_file(client.disk, "refused"))


def test_system_for_another_kernel_reboots_into_its_pair(client, kernel_tree):
    """v4 is built for a kernel the running pair does not carry (simulated:
    its /lib/modules lacks the fixture kernel's release, the one kernel
    both pairs have).  The controller installs v4 and its pair, does not
    switch into v4, and reboots into v4's pair instead of booting the
    backup; that pair cannot switch into v4 either (same release here), so
    the bound stops the loop and BACKUPFS boots."""
    kver = kernel_tree["kver"]
    client.publish("v4", image={"kvers": ("0.0.0-other",), "modprobe": MODULE}, pair=client.pair_b)
    out, entry, _ = boot_from_entry(client, timeout=600)
    assert entry["options"].endswith("gse.pair=v2")
    assert "gse: installed v4 (serial 4) on /dev/vda3" in out, out[-3000:]
    assert "gse: boot partition: installed the pair of v4 (default entry), fallback v2" in out, out[-3000:]
    assert f"gse: WARNING: kernel: refusing to switch_root into v4 on /dev/vda3: its /lib/modules lacks {kver}" in out
    assert "gse: boot partition: rebooting into the pair of v4 (the kernel its /lib/modules is for)" in out
    assert booted(out) is None and "falling back to BACKUPFS" not in out
    assert vm.state_file(client.disk, "boot/reboot").strip() == "v4 1"
    with BootPart(client.bootdisk) as d:
        assert entries(d) == ["gse-v2.conf", "gse-v4+3.conf"]
    # The boot loader takes v4's entry.
    out, entry, _ = boot_from_entry(client, timeout=600)
    assert entry["options"].endswith("gse.pair=v4")
    assert ("gse: WARNING: boot partition: this boot came from the pair of v4 and its system still lacks the "
            "running kernel's modules: no reboot") in out, out[-3000:]
    assert "gse: kernel: falling back to BACKUPFS v3 on /dev/vda2 for this boot" in out
    assert booted(out) == "v3"
    with BootPart(client.bootdisk) as d:
        # Not blessed: the pair did not boot its own system.
        assert entries(d) == ["gse-v2.conf", "gse-v4+2-1.conf"]
