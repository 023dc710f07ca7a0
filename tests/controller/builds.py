"""Controllers for the boot tests: kernel + initramfs built by the
controller role (playbooks/controller.yml) for a given keyring, once per
content hash (modules, config.d, role, keyring, kernel version)."""
import fcntl
import os
import shutil
import subprocess

from gse import controller_build

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
CACHE = os.path.join(os.environ.get("GSE_TEST_CACHE", "/var/cache/gse-tests"), "controller")
KVER = os.environ.get("GSE_TEST_KVER") or sorted(
    d for d in os.listdir("/lib/modules") if os.path.exists(f"/boot/vmlinuz-{d}"))[-1] \
    if os.path.isdir("/lib/modules") else ""


def run_controller_playbook(output, keyring, *extra):
    return subprocess.run(
        [os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), os.path.join(ROOT, "playbooks", "controller.yml"),
         "-e", f"gse_controller_modules_dir={ROOT}/controller_dracut", "-e", f"gse_controller_kver={KVER}",
         "-e", f"gse_controller_output={output}", "-e", f"gse_controller_keyring={keyring}", *extra],
        capture_output=True, text=True, cwd=ROOT)


def cached_controller(keyring):
    """{"kernel", "initrd", "dir", "keyring"} of a controller trusting keyring."""
    role = os.path.join(ROOT, "roles", "controller", "tasks", "build.yml")
    with open(keyring, "rb") as k, open(role, "rb") as r:
        extra = k.read() + r.read() + KVER.encode()
    out = os.path.join(CACHE, f"initramfs-{controller_build.content_hash(extra=extra)[:16]}")
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
