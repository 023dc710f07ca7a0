"""Product II from the image: the client boots the image's own kernel (Debian's
linux-image package, unpacked into the image as /boot/vmlinuz-KVER with its
modules under /lib/modules/KVER) with an initramfs that dracut built against
that image's /lib/modules; after switch_root a module that is not built into
the kernel loads from the image.  The first boot is a network boot: QEMU's
iPXE fetches the tree's boot.ipxe (part L's generator), which loads the
kernel and initramfs published in the version's directory.  Then an image
without the running kernel's modules is installed, refused at switch_root
with a log line, and the backup boots instead.

Two boots, as one client's life: keep it that way under TCG.

What the fixture cannot show: the image's /lib/modules holds the package's
kernel and a subset of its modules (those the controller's drivers and the
test module need, with their dependencies; depmod's indexes rebuilt), so
that the image streams in seconds; a Gentoo image carries all of them.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

import builds
import testimage
import vm
from client import Client, booted

sys.path.insert(0, builds.ROOT)
from tests.fixture import kernel as kernel_fixture  # noqa: E402

# Not built in (CONFIG_DUMMY=m in Debian's kernels), needed by nothing the
# controller loads: present after switch_root only when loaded from the image.
MODULE = "dummy"
DRIVERS = ("virtio_blk virtio_pci virtio_net virtio_scsi sd_mod ahci nvme e1000 e1000e virtio_rng ext4 btrfs "
           "af_packet").split()


@pytest.fixture(scope="module")
def kernel_tree():
    if not shutil.which("apt-get") or not shutil.which("depmod"):
        pytest.skip("needs apt-get and depmod (scripts/bootstrap installs them)")
    return kernel_fixture.tree(DRIVERS + [MODULE])


@pytest.fixture(scope="module")
def client(signing, kernel_tree, tmp_path_factory):
    from conftest import need
    need("dracut", "qemu-system-x86_64", "busybox", "sfdisk", "lsinitrd")
    work = str(tmp_path_factory.mktemp("image-kernel"))
    # The controller is built for the image that carries the kernel: its
    # root is what part K packs (the role reads ROOT/boot and ROOT/lib/modules).
    root = os.path.join(work, "controller-root")
    testimage.make_root(root, "v1", kernel_tree=kernel_tree["root"], kvers=(), modprobe=MODULE)
    controller = builds.image_controller(signing[1], root, os.path.basename(kernel_tree["root"]))
    shutil.rmtree(root)
    return Client(controller, signing, work)


def test_controller_is_the_images_kernel_with_its_modules(client, kernel_tree):
    kver = kernel_tree["kver"]
    with open(os.path.join(kernel_tree["root"], "boot", f"vmlinuz-{kver}"), "rb") as a, \
            open(client.controller["kernel"], "rb") as b:
        assert a.read() == b.read()
    listing = subprocess.run(["lsinitrd", client.controller["initrd"]], capture_output=True,
                             check=True).stdout.decode(errors="replace")
    assert f"lib/modules/{kver}/kernel/drivers/block/virtio_blk.ko" in listing
    # The test module stays out of the initramfs: after switch_root it can
    # only come from the image.
    assert f"/{MODULE}.ko" not in listing


def test_module_loads_from_the_images_lib_modules_after_switch_root(client, kernel_tree):
    kver = kernel_tree["kver"]
    client.publish("v1", image={"kernel_tree": kernel_tree["root"], "kvers": (), "modprobe": MODULE},
                   pair=client.controller)
    assert client.pointer["kernel"] == "images/v1/vmlinuz" and client.pointer["initramfs"] == "images/v1/initramfs"
    out, secs, rc = client.boot(netboot=True, timeout=600)
    assert "gse: installed v1 (serial 1) on /dev/vda2" in out, out[-3000:]
    # The kernel iPXE loaded is the published one, with boot.ipxe's command line.
    assert f"Linux version {kver}" in out and "root=gse" in out
    assert booted(out) == "v1"
    assert f"GSETEST kernel {kver}" in out
    assert f"GSETEST module {MODULE} loaded from /lib/modules/{kver}" in out, out[-3000:]
    assert "GSETEST shutdown recorded" in out


def test_image_without_the_running_kernels_modules_is_refused(client, kernel_tree):
    kver = kernel_tree["kver"]
    # v2 carries no kernel at all (an image built without part H, or for
    # another kernel): the controller installs it, verified, but does not
    # switch into it.
    client.publish("v2", image={"kvers": ("0.0.0-other",), "modprobe": MODULE})
    out, secs, rc = client.boot()
    assert "gse: installed v2 (serial 2) on /dev/vda3" in out, out[-3000:]
    line = (f"gse: WARNING: kernel: refusing to switch_root into v2 on /dev/vda3: its /lib/modules lacks {kver} "
            "(the running kernel)")
    assert line in out, out[-3000:]
    assert "gse: kernel: falling back to BACKUPFS v1 on /dev/vda2 for this boot" in out
    assert booted(out) == "v1"
    assert f"GSETEST module {MODULE} loaded from /lib/modules/{kver}" in out
    # The labels stay (the next controller, built for v2, boots it); the log
    # in the state area keeps the refusal.
    assert vm.by_label(client.disk) == {"GSESTATE": None, "SYSFS": "v2", "BACKUPFS": "v1"}
    assert re.search(r"kernel: refusing to switch_root into v2", vm.state_file(client.disk, "log/controller.log"))
    assert vm.state_file(client.disk, "health/cycle").strip() == "version=v1"


def test_role_refuses_an_image_root_without_depmod_index(signing, kernel_tree, tmp_path):
    root = tmp_path / "root"
    shutil.copytree(kernel_tree["root"], root)
    kver = kernel_tree["kver"]
    os.remove(root / "lib" / "modules" / kver / "modules.dep")
    res = builds.run_controller_playbook(str(tmp_path / "o"), signing[1], "-e", f"gse_controller_image_root={root}",
                                         kver=None)
    assert res.returncode != 0
    assert f"missing: {root}/lib/modules/{kver}/modules.dep (run depmod -b ROOT KVER)" in res.stdout
