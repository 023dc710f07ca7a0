"""A small system image for boot tests: busybox, a plain init that reports
what the booted system sees on the serial console, and the real gse-health
helper of roles/client_health.

behaviour "healthy": records startup and shutdown, powers off.
behaviour "crash":   records startup, then dies without an orderly shutdown.
"""
import os
import random
import shutil
import subprocess

from builds import KVER

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HEALTH = os.path.join(ROOT, "roles", "client_health", "files", "gse-health")
APPLETS = ("sh mount umount cat echo awk touch sync poweroff readlink sleep mkdir rm mv "
           "date grep ls stat uname modprobe wget timeout").split()

INIT = r"""#!/bin/sh
export PATH=/bin:/usr/bin:/sbin
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
exec >/dev/console 2>&1
echo "GSETEST booted version=$(cat /usr/share/gse-test/version)"
echo "GSETEST kernel $(uname -r)"
# A module that is not built into the kernel: loaded from this system's
# /lib/modules after switch_root (busybox modprobe reads depmod's modules.dep).
if [ -r /usr/share/gse-test/modprobe ]; then
    m=$(cat /usr/share/gse-test/modprobe)
    if [ -e "/sys/module/$m" ]; then
        echo "GSETEST module $m present before modprobe"
    elif modprobe "$m" && [ -e "/sys/module/$m" ]; then
        echo "GSETEST module $m loaded from /lib/modules/$(uname -r)"
    else
        echo "GSETEST module $m failed"
    fi
fi
case " $(cat /proc/cmdline) " in
    *" gsetest.calibrate "*) /usr/lib/gse-test/calibrate ;;
esac
for m in / /etc /var/log /tmp /var/lib/gse/state; do
    awk -v m="$m" '$2==m {print "GSETEST mount " $2 " " $3 " " $4}' /proc/mounts
done
awk '$5=="/" {print "GSETEST root-subvolume " $4}' /proc/self/mountinfo
stat -c 'GSETEST mode %n %a %u:%g' /tmp /etc
if touch /gse-test-write 2>/dev/null; then echo "GSETEST root writable"; else echo "GSETEST root readonly"; fi
echo "GSETEST etc-seed=$(cat /etc/gse-test-seed 2>/dev/null)"
echo "GSETEST config=$(cat /etc/gse-test-config 2>/dev/null)"
echo "GSETEST runlevel=$(readlink /etc/runlevels/default/gse-health 2>/dev/null)"
echo x > /etc/gse-test-etc-write && echo "GSETEST etc writable"
if echo 999 > /var/lib/gse/state/serial 2>/dev/null; then echo "GSETEST state writable"; else echo "GSETEST state readonly"; fi
/usr/lib/gse/gse-health startup && echo "GSETEST startup recorded"
if [ "$(cat /usr/share/gse-test/behaviour)" = crash ]; then
    echo "GSETEST crashing"
    poweroff -f
fi
/usr/lib/gse/gse-health shutdown && echo "GSETEST shutdown recorded"
umount /var/lib/gse/state/health
umount /var/lib/gse/state
sync
echo "GSETEST poweroff"
poweroff -f
"""


# A fixed workload of what the controller spends its time on (starting
# programs, hashing), run in the guest and on the host with the same busybox:
# the ratio of the two is how much slower the emulated machine is.
CALIBRATE = r"""#!/bin/sh
read t0 x < /proc/uptime
i=0
while [ $i -lt 200 ]; do /bin/busybox true; i=$((i + 1)); done
i=0
while [ $i -lt 5 ]; do /bin/busybox sha512sum /bin/busybox > /dev/null; i=$((i + 1)); done
read t1 x < /proc/uptime
echo "GSETEST calibrate $t0 $t1"
"""


def calibrate_on_host():
    """Seconds the calibration workload takes on this host, with the busybox
    that make_root copies into the image."""
    import time
    busybox = shutil.which("busybox")
    script = CALIBRATE.replace("/bin/busybox", busybox)
    t0 = time.monotonic()
    subprocess.run([busybox, "sh", "-c", script], check=True, stdout=subprocess.DEVNULL)
    return time.monotonic() - t0


def make_root(root, version, behaviour="healthy", payload_bytes=0, extra=None, payload_seed=None,
              kernel_tree=None, kvers=(KVER,), modprobe=None):
    """Write the image root in `root` (extra: {relative path: bytes} more
    files; payload_seed: the same payload for the same seed, for images
    that share most of their bytes).  kernel_tree: a directory (boot/,
    lib/modules/) copied in, the image's own kernel; kvers: kernels whose
    lib/modules/KVER the image claims with an empty modules.dep (the
    controller switches only into a system with the running kernel's
    modules); modprobe: a module the booted system loads."""
    for d in ("bin", "sbin", "usr/bin", "usr/lib/gse", "usr/share/gse-test", "proc", "sys", "dev",
              "etc/init.d", "etc/runlevels/default", "var/log", "var/lib/gse/state", "tmp", "run"):
        os.makedirs(os.path.join(root, d), exist_ok=True)
    os.chmod(os.path.join(root, "tmp"), 0o1777)
    shutil.copy2(shutil.which("busybox"), os.path.join(root, "bin", "busybox"))
    for a in APPLETS:
        os.symlink("busybox", os.path.join(root, "bin", a))
    with open(os.path.join(root, "sbin", "init"), "w") as f:
        f.write(INIT)
    os.chmod(os.path.join(root, "sbin", "init"), 0o755)
    shutil.copy2(HEALTH, os.path.join(root, "usr", "lib", "gse", "gse-health"))
    os.makedirs(os.path.join(root, "usr", "lib", "gse-test"), exist_ok=True)
    with open(os.path.join(root, "usr", "lib", "gse-test", "calibrate"), "w") as f:
        f.write(CALIBRATE)
    os.chmod(os.path.join(root, "usr", "lib", "gse-test", "calibrate"), 0o755)
    with open(os.path.join(root, "etc", "init.d", "gse-health"), "w") as f:
        f.write("#!/sbin/openrc-run\n")
    os.symlink("/etc/init.d/gse-health", os.path.join(root, "etc", "runlevels", "default", "gse-health"))
    for name, text in (("version", version), ("behaviour", behaviour)):
        with open(os.path.join(root, "usr", "share", "gse-test", name), "w") as f:
            f.write(text + "\n")
    with open(os.path.join(root, "etc", "gse-test-seed"), "w") as f:
        f.write("seeded-" + version + "\n")
    for kv in kvers:
        os.makedirs(os.path.join(root, "lib", "modules", kv), exist_ok=True)
        open(os.path.join(root, "lib", "modules", kv, "modules.dep"), "a").close()
    if kernel_tree:
        shutil.copytree(kernel_tree, root, symlinks=True, dirs_exist_ok=True)
    if modprobe:
        with open(os.path.join(root, "usr", "share", "gse-test", "modprobe"), "w") as f:
            f.write(modprobe + "\n")
    for rel, data in (extra or {}).items():
        p = os.path.join(root, rel)
        os.makedirs(os.path.dirname(p), exist_ok=True)
        with open(p, "wb") as f:
            f.write(data)
    if payload_bytes:
        # Incompressible bulk: makes the download long enough to interrupt,
        # or large enough to measure.
        rnd = random.Random(payload_seed) if payload_seed is not None else None
        with open(os.path.join(root, "usr", "share", "gse-test", "payload"), "wb") as f:
            left = payload_bytes
            while left:
                n = min(left, 1 << 20)
                f.write(rnd.randbytes(n) if rnd else os.urandom(n))
                left -= n


def pack(root, tarball):
    """tar of the root (numeric owners, xattrs), zstd: as part K packs it."""
    subprocess.run(
        f"tar -C {root} --numeric-owner --xattrs -cf - . | zstd -q -T0 -3 -o {tarball}",
        shell=True, check=True)
    return tarball


def make_image(workdir, version, behaviour="healthy", payload_bytes=0, extra=None, payload_seed=None, **kw):
    root = os.path.join(workdir, f"root-{version}")
    make_root(root, version, behaviour, payload_bytes, extra, payload_seed, **kw)
    return pack(root, os.path.join(workdir, f"{version}.tar.zst"))
