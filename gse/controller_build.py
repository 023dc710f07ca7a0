"""Build the controller: a kernel and an initramfs with the gse dracut modules.

``gse --build-controller=DIR`` ends here (through ``playbooks/controller.yml``
or directly through :func:`build`).  dracut finds modules only under its
``dracutbasedir``, so the build makes a private one: a mirror of the system's
dracut directory made of symlinks, whose ``modules.d`` also links the modules
of DIR.  ``--conf``/``--confdir`` point at empty files so the build host's own
dracut configuration (hostonly, networking, systemd) stays out.
"""
import hashlib
import os
import re
import shutil
import subprocess
import tempfile

SYSTEM_DRACUT = "/usr/lib/dracut"

# What a controller needs besides its own modules: a shell, udev, base.
BASE_MODULES = ["bash", "udev-rules", "base"]
GSE_MODULES = ["gse-base", "gse-disk", "gse-net", "gse-health", "gse-system"]
# Disks, network and filesystems of the usual clients (and of QEMU).
DEFAULT_DRIVERS = [
    "virtio_blk", "virtio_pci", "virtio_net", "virtio_scsi", "sd_mod", "ahci", "nvme",
    "e1000", "e1000e", "virtio_rng", "ext4", "btrfs",
]

REPO_MODULES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                            "controller_dracut")
REPO_CONFIGD = os.path.join(REPO_MODULES, "config.d")


def module_dirs(modules_dir):
    """The dracut module directories (NNname) of modules_dir."""
    return sorted(
        d for d in os.listdir(modules_dir)
        if d[:2].isdigit() and os.path.isfile(os.path.join(modules_dir, d, "module-setup.sh"))
    )


def make_dracutbasedir(modules_dir, where, system_dracut=SYSTEM_DRACUT):
    """Mirror system_dracut in `where` with symlinks, plus modules_dir's modules."""
    base = os.path.join(where, "dracut")
    os.makedirs(os.path.join(base, "modules.d"))
    for entry in os.listdir(system_dracut):
        if entry != "modules.d":
            os.symlink(os.path.join(system_dracut, entry), os.path.join(base, entry))
    sysmods = os.path.join(system_dracut, "modules.d")
    for entry in os.listdir(sysmods):
        os.symlink(os.path.join(sysmods, entry), os.path.join(base, "modules.d", entry))
    for entry in module_dirs(modules_dir):
        link = os.path.join(base, "modules.d", entry)
        if os.path.lexists(link):
            os.unlink(link)
        os.symlink(os.path.abspath(os.path.join(modules_dir, entry)), link)
    return base


def dracut_argv(kver, initramfs, configd, modules, drivers, kmoddir=None):
    """The dracut command line of a controller build."""
    argv = [
        "dracut", "--force", "--quiet", "--no-hostonly", "--no-early-microcode",
        "--zstd", "--reproducible",
        "--modules", " ".join(modules),
        "--omit", "systemd systemd-initrd dracut-systemd network network-legacy plymouth",
        "--drivers", " ".join(drivers),
        "--include", os.path.abspath(configd), "/config.d",
        "--kver", kver,
    ]
    if kmoddir:
        argv += ["--kmoddir", kmoddir]
    argv.append(initramfs)
    return argv


def _version_key(kver):
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.-]", kver)]


def installed_kernel(boot="/boot", modules="/lib/modules"):
    """The running kernel when it is installed (boot/vmlinuz-KVER and
    modules/KVER), else the newest installed one; as the controller role
    chooses it."""
    running = os.uname().release
    if os.path.exists(os.path.join(boot, f"vmlinuz-{running}")) and os.path.isdir(os.path.join(modules, running)):
        return running
    found = [n[len("vmlinuz-"):] for n in os.listdir(boot) if n.startswith("vmlinuz-")] if os.path.isdir(boot) else []
    found = [k for k in found if os.path.isdir(os.path.join(modules, k))]
    if not found:
        raise ValueError(f"no installed kernel ({boot}/vmlinuz-KVER with {modules}/KVER): give kver=")
    return max(found, key=_version_key)


def build(modules_dir=REPO_MODULES, kver=None, kernel_image=None, output=".",
          configd=REPO_CONFIGD, drivers=None, extra_drivers=(), keyring=None,
          kmoddir=None, modules=None):
    """Build the controller into `output`: vmlinuz and initramfs.img.

    modules_dir: directory with the gse dracut modules (NNgse-*/module-setup.sh).
    kver: kernel version (default: installed_kernel()).  kernel_image: the kernel
    copied next to the initramfs (default /boot/vmlinuz-KVER).  configd: the
    controller config.d put at /config.d.  keyring: an OpenPGP keyring copied
    to config.d/keys/gse.gpg (else configd must hold one).  drivers /
    extra_drivers: kernel modules put in the initramfs.  Returns a dict with
    the paths and the dracut command.
    """
    kver = kver or installed_kernel()
    kernel_image = kernel_image or f"/boot/vmlinuz-{kver}"
    os.makedirs(output, exist_ok=True)
    drivers = list(drivers or DEFAULT_DRIVERS) + list(extra_drivers)
    with tempfile.TemporaryDirectory(prefix="gse-controller-") as tmp:
        base = make_dracutbasedir(modules_dir, tmp)
        conf = os.path.join(tmp, "dracut.conf")
        open(conf, "w").close()
        confdir = os.path.join(tmp, "dracut.conf.d")
        os.mkdir(confdir)
        # The config.d goes in as a copy, with the keyring where it is read.
        cfg = os.path.join(tmp, "config.d")
        shutil.copytree(configd, cfg, symlinks=False)
        if keyring:
            os.makedirs(os.path.join(cfg, "keys"), exist_ok=True)
            shutil.copyfile(keyring, os.path.join(cfg, "keys", "gse.gpg"))
        if not os.path.isfile(os.path.join(cfg, "keys", "gse.gpg")):
            raise ValueError(f"no keyring: give keyring= or put keys/gse.gpg in {configd}")
        initramfs = os.path.join(os.path.abspath(output), "initramfs.img")
        argv = dracut_argv(kver, initramfs, cfg, modules or BASE_MODULES + GSE_MODULES,
                           drivers, kmoddir)
        argv[1:1] = ["--conf", conf, "--confdir", confdir]
        env = dict(os.environ, dracutbasedir=base)
        res = subprocess.run(argv, env=env, capture_output=True, text=True)
        if res.returncode != 0:
            raise RuntimeError(f"dracut failed (rc={res.returncode}): {res.stderr[-4000:]}")
    kernel = os.path.join(os.path.abspath(output), "vmlinuz")
    shutil.copyfile(kernel_image, kernel)
    return {"initramfs": initramfs, "kernel": kernel, "kver": kver, "argv": argv}


def content_hash(modules_dir=REPO_MODULES, configd=REPO_CONFIGD, extra=b""):
    """A digest of everything that goes into a build (for caches)."""
    h = hashlib.sha256(extra)
    for top in (modules_dir, configd):
        for root, dirs, files in os.walk(top):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(root, name)
                h.update(os.path.relpath(path, top).encode())
                with open(path, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()
