"""Controllers for the boot tests: kernel + initramfs built by the
controller role (playbooks/controller.yml) for a given keyring, once per
content hash (modules, config.d, role, keyring, kernel version)."""
import fcntl
import hashlib
import os
import re
import shutil
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CACHE = os.path.join(os.environ.get("GSE_TEST_CACHE", "/var/cache/gse-tests"), "controller")
KVER = os.environ.get("GSE_TEST_KVER") or sorted(
    d for d in os.listdir("/lib/modules") if os.path.exists(f"/boot/vmlinuz-{d}"))[-1] \
    if os.path.isdir("/lib/modules") else ""


def run_controller_playbook(output, keyring, *extra, env=None, kver=KVER):
    """ansible-playbook playbooks/controller.yml for kver (None: the role
    chooses); ``extra`` are more arguments (-e ...)."""
    kv = ["-e", f"gse_controller_kver={kver}"] if kver else []
    return subprocess.run(
        [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), os.path.join(ROOT, "playbooks", "controller.yml"),
         "-e", f"gse_controller_modules_dir={ROOT}/controller_dracut", *kv,
         "-e", f"gse_controller_output={output}", "-e", f"gse_controller_keyring={keyring}", *extra],
        capture_output=True, text=True, cwd=ROOT, env=env)


def content_hash(extra=b""):
    """A digest of the controller's modules and config.d (and ``extra``): the cache key of a build."""
    modules_dir = os.path.join(ROOT, "controller_dracut")
    h = hashlib.sha256(extra)
    for top in (modules_dir, os.path.join(modules_dir, "config.d")):
        for root, dirs, files in os.walk(top):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(root, name)
                h.update(os.path.relpath(path, top).encode())
                with open(path, "rb") as f:
                    h.update(f.read())
    return h.hexdigest()


def _version_key(kver):
    return [(0, int(p), "") if p.isdigit() else (1, 0, p) for p in re.split(r"[.-]", kver)]


def installed_kernel(boot="/boot", modules="/lib/modules"):
    """The kernel the controller role chooses when none is given: the running
    one when it is installed (boot/vmlinuz-KVER and modules/KVER), else the
    newest installed one (tests predict the role's choice with it)."""
    running = os.uname().release
    if os.path.exists(os.path.join(boot, f"vmlinuz-{running}")) and os.path.isdir(os.path.join(modules, running)):
        return running
    found = [n[len("vmlinuz-"):] for n in os.listdir(boot) if n.startswith("vmlinuz-")] if os.path.isdir(boot) else []
    found = [k for k in found if os.path.isdir(os.path.join(modules, k))]
    if not found:
        raise ValueError(f"no installed kernel ({boot}/vmlinuz-KVER with {modules}/KVER)")
    return max(found, key=_version_key)


def cached_controller(keyring):
    """{"kernel", "initrd", "dir", "keyring"} of a controller trusting keyring."""
    role = os.path.join(ROOT, "roles", "controller", "tasks", "build.yml")
    with open(keyring, "rb") as k, open(role, "rb") as r:
        extra = k.read() + r.read() + KVER.encode()
    out = os.path.join(CACHE, f"initramfs-{content_hash(extra=extra)[:16]}")
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(out, "initramfs.img")):
            res = run_controller_playbook(out + ".new", keyring)
            assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
            shutil.rmtree(out, ignore_errors=True)
            os.rename(out + ".new", out)
    return {"kernel": os.path.join(out, "vmlinuz"), "initrd": os.path.join(out, "initramfs.img"),
            "dir": out, "keyring": keyring}


def image_controller(keyring, image_root, tree_key):
    """{"kernel", "initrd", "dir", "keyring"} of a controller built for an
    image: its kernel and dracut against its /lib/modules
    (gse_controller_image_root, no kernel version given: the role finds it);
    cached by content hash, tree_key naming the kernel tree the image
    carries."""
    role = os.path.join(ROOT, "roles", "controller")
    h = hashlib.sha256(tree_key.encode())
    for d, dirs, files in os.walk(role):
        dirs.sort()
        for n in sorted(files):
            with open(os.path.join(d, n), "rb") as f:
                h.update(n.encode() + f.read())
    with open(keyring, "rb") as k:
        h.update(k.read())
    out = os.path.join(CACHE, f"image-initramfs-{content_hash(extra=h.digest())[:16]}")
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(os.path.join(out, "initramfs.img")):
            res = run_controller_playbook(out + ".new", keyring, "-e", f"gse_controller_image_root={image_root}",
                                          kver=None)
            assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
            shutil.rmtree(out, ignore_errors=True)
            os.rename(out + ".new", out)
    return {"kernel": os.path.join(out, "vmlinuz"), "initrd": os.path.join(out, "initramfs.img"),
            "dir": out, "keyring": keyring}
