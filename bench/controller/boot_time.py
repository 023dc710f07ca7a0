"""The controller's added boot time, side by side in one run (QEMU, TCG):

  plain    the same kernel and drivers, dracut without the gse modules,
           root=LABEL=SYSFS on a disk prepared by the controller
  gse      the controller, server up, no new version
  offline  the controller, server down (nothing listens on the port)

Each boot is timed from QEMU's start to the image's first console line
("GSETEST booted"); medians over --rounds.  Before the rounds, one boot
installs the image and one makes the backup (work a client does once, not
at every boot).

The targets (1.5 s, 3 s) are for hardware; QEMU here emulates the CPU (TCG,
no KVM), which makes starting a program or hashing many times slower.  The
bench measures that factor in the same run: the test image runs a fixed
workload (200 program starts, 5 SHA-512 passes over busybox) in the guest,
and the same workload with the same busybox runs on the host.  The added
times divided by that factor are reported as estimates for hardware, next to
the measured emulated seconds.

    python bench/controller/boot_time.py [--rounds 3]
"""
import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "controller"))
import pubtree  # noqa: E402
import testimage  # noqa: E402
import vm  # noqa: E402
from builds import run_controller_playbook  # noqa: E402
from gse.serve import Server, free_port  # noqa: E402


def build_controller(output, keyring, kver, modules=None):
    """{"kernel", "initramfs"} built by the controller role; ``modules`` replaces its dracut modules."""
    extra = ["-e", "gse_controller_kver=%s" % kver]
    if modules:
        extra += ["-e", json.dumps({"gse_controller_dracut_modules": modules})]
    res = run_controller_playbook(output, keyring, *extra)
    if res.returncode != 0:
        raise RuntimeError("the controller build failed:\n" + res.stdout[-3000:])
    return {"kernel": os.path.join(output, "vmlinuz"), "initramfs": os.path.join(output, "initramfs.img")}


def time_to_marker(kernel, initrd, disk, cmdline, marker="GSETEST booted", **kw):
    """Seconds from QEMU's start to the first console line with marker."""
    times = []
    vm.boot(kernel, initrd, disk, cmdline, timeout=600, times=times, **kw)
    for secs, line in times:
        if marker in line:
            return round(secs, 2)
    raise RuntimeError(f"no {marker!r} on the console:\n{''.join(l for _, l in times)[-3000:]}")


def calibrate(kernel, initrd, disk, rounds):
    """(guest seconds, host seconds) of the calibration workload, medians."""
    guest, host = [], []
    for _ in range(rounds):
        out, _, _ = vm.boot(kernel, initrd, disk, "root=LABEL=SYSFS ro gsetest.calibrate", net=False,
                            base=vm.BASE_CMDLINE.replace("root=gse", ""), timeout=600)
        line = next(l for l in out.splitlines() if l.startswith("GSETEST calibrate "))
        t0, t1 = map(float, line.split()[2:4])
        guest.append(t1 - t0)
        host.append(testimage.calibrate_on_host())
    return statistics.median(guest), statistics.median(host)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--kver", default=None)
    a = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="gse-bench-boot-")
    try:
        home = os.path.join(work, "gnupg")
        keyring = pubtree.make_key(home)
        kver = a.kver or sorted(d for d in os.listdir("/lib/modules") if os.path.exists(f"/boot/vmlinuz-{d}"))[-1]
        gse = build_controller(os.path.join(work, "gse"), keyring, kver)
        plain = build_controller(os.path.join(work, "plain"), keyring, kver,
                                 ["bash", "udev-rules", "base", "fs-lib", "rootfs-block"])
        tree = os.path.join(work, "tree")
        os.makedirs(tree)
        pubtree.add_image(home, tree, "v1", testimage.make_image(work, "v1"))
        pubtree.set_version(home, tree, 1, "v1")
        disk = vm.make_disk(os.path.join(work, "disk.img"))
        res = {"plain_s": [], "gse_s": [], "offline_s": []}
        with Server(tree) as srv:
            url = f"gse.server=http://10.0.2.2:{srv.port}"
            vm.boot(gse["kernel"], gse["initramfs"], disk, url, timeout=600)  # install v1
            vm.boot(gse["kernel"], gse["initramfs"], disk, url, timeout=600)  # the backup
            for _ in range(a.rounds):
                res["plain_s"].append(time_to_marker(plain["kernel"], plain["initramfs"], disk,
                                                     "root=LABEL=SYSFS ro", net=False,
                                                     base=vm.BASE_CMDLINE.replace("root=gse", "")))
                res["gse_s"].append(time_to_marker(gse["kernel"], gse["initramfs"], disk, url))
                res["offline_s"].append(time_to_marker(gse["kernel"], gse["initramfs"], disk,
                                                       f"gse.server=http://10.0.2.2:{free_port()}"))
            guest, host = calibrate(plain["kernel"], plain["initramfs"], disk, a.rounds)
        med = {k: statistics.median(v) for k, v in res.items()}
        res["added_no_new_version_s"] = round(med["gse_s"] - med["plain_s"], 2)
        res["added_offline_s"] = round(med["offline_s"] - med["plain_s"], 2)
        factor = guest / host
        res["emulation_slowdown"] = round(factor, 1)
        res["estimated_hw_added_no_new_version_s"] = round(res["added_no_new_version_s"] / factor, 2)
        res["estimated_hw_added_offline_s"] = round(res["added_offline_s"] / factor, 2)
        res["targets_s"] = {"no_new_version": 1.5, "offline": 3.0}
        print(json.dumps(res, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
