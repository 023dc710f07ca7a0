"""Boot a client in QEMU (TCG) and inspect its disk afterwards."""
import contextlib
import json
import os
import signal
import threading
import subprocess
import tempfile
import time

BASE_CMDLINE = "console=ttyS0 panic=-1 rd.emergency=reboot rd.shell=0 root=gse"


def make_disk(path, size="1G"):
    subprocess.run(["truncate", "-s", size, path], check=True)
    return path


def boot(kernel, initrd, disk, cmdline="", net=True, timeout=300, log=None, kill_on=None, kill_after=0.0,
         base=BASE_CMDLINE, times=None, qemu_args=(), kill_when=None, bootfile=None):
    """Boot once; return (console text, seconds, rc).  With kill_on, QEMU is
    killed kill_after seconds after that text appears on the console (power
    cut); with kill_when (a threading.Event), as soon as it is set (a server
    that holds the guest's download says when).  With times (a list),
    (seconds since start, line) of every console line is appended to it.
    With bootfile (a URL) instead of a kernel, the firmware boots from the
    network: QEMU's iPXE ROM of the virtio NIC gets the URL from QEMU's DHCP
    server and runs that script (the kernel command line is the script's)."""
    load = ["-boot", "n"] if bootfile else [
        "-kernel", kernel, "-initrd", initrd, "-append", f"{base} {cmdline}".strip()]
    argv = [
        "timeout", "-k", "5", str(timeout),
        "qemu-system-x86_64", "-accel", "tcg", "-m", "768", "-smp", "1", "-no-reboot",
        "-nographic", "-serial", "stdio", "-monitor", "none", "-nodefaults",
        *load,
        "-drive", f"file={disk},format=raw,if=virtio,cache=unsafe",
        # Entropy for the guest: without it getrandom() blocks udev and mkfs
        # for a minute under TCG.
        "-device", "virtio-rng-pci",
        *qemu_args,
    ]
    if net or bootfile:
        argv += ["-netdev", "user,id=n0" + (f",bootfile={bootfile}" if bootfile else ""),
                 "-device", "virtio-net-pci,netdev=n0"]
    t0 = time.monotonic()
    # A session of its own: a power cut kills timeout and QEMU together.
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                            start_new_session=True)
    out = []
    cut = None

    def power_cut():
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    watcher = None
    if kill_when is not None:
        def watch():
            # Polled, so that the thread ends with the boot either way.
            while proc.poll() is None:
                if kill_when.wait(0.2):
                    power_cut()
                    return
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
    try:
        for raw in proc.stdout:
            line = raw.decode(errors="replace")
            out.append(line)
            if times is not None:
                times.append((time.monotonic() - t0, line))
            if log:
                log.write(line)
                log.flush()
            if kill_on and cut is None and kill_on in line:
                # The console is quiet while the image streams in: a timer,
                # not the next line, cuts the power.
                cut = threading.Timer(kill_after, power_cut)
                cut.start()
    finally:
        if cut is not None:
            cut.join()
        if watcher is not None:
            watcher.join()
    rc = proc.wait()
    return "".join(out), time.monotonic() - t0, rc


def _table(disk):
    return json.loads(subprocess.run(["sfdisk", "--json", disk], check=True, capture_output=True,
                                     text=True).stdout)["partitiontable"]


def _number(disk, part):
    return int(part["node"].rsplit(disk, 1)[-1])


def partitions(disk):
    """[(number, start byte, size bytes)] from the disk image's GPT."""
    table = _table(disk)
    sector = table.get("sectorsize", 512)
    return [(_number(disk, p), p["start"] * sector, p["size"] * sector) for p in table.get("partitions", [])]


def bootable(disk):
    """The partition numbers that carry the GPT legacy-BIOS-bootable attribute."""
    return [_number(disk, p) for p in _table(disk).get("partitions", [])
            if "LegacyBIOSBootable" in p.get("attrs", "")]


@contextlib.contextmanager
def loop(disk, start, size, writable=False):
    """One partition of the image as a loop device, read-only unless writable
    (the container has no udev for partition nodes); detached afterwards."""
    dev = subprocess.run(["losetup", "--find", "--show"] + ([] if writable else ["--read-only"]) +
                         ["--offset", str(start), "--sizelimit", str(size), disk],
                         check=True, capture_output=True, text=True).stdout.strip()
    try:
        yield dev
    finally:
        subprocess.run(["losetup", "-d", dev], check=False)


def labels(disk):
    """{partition number: (label, record of a complete system or None)}.  The
    record is the controller's: installed/vdaN in the state area (partition
    1), valid only for the filesystem UUID it names."""
    out = {}
    try:
        parts = partitions(disk)
    except subprocess.CalledProcessError:
        return out
    records = {}
    for n, start, size in parts:
        with loop(disk, start, size) as part:
            probe = {}
            for key in ("LABEL", "UUID"):
                probe[key] = subprocess.run(["blkid", "-p", "-s", key, "-o", "value", part],
                                            capture_output=True, text=True).stdout.strip()
        if n == 1:
            with loop(disk, start, size) as part:
                records = {name: read_file(part, f"installed/{name}") for name in ("vda2", "vda3")}
        out[n] = probe
    res = {}
    for n, probe in out.items():
        rec = records.get(f"vda{n}")
        if rec is not None and f"uuid={probe['UUID']}" not in rec.splitlines():
            rec = None
        res[n] = (probe["LABEL"], rec)
    return res


def state_file(disk, relpath):
    """A file of the state area (partition 1)."""
    n, start, size = partitions(disk)[0]
    with loop(disk, start, size) as part:
        return read_file(part, relpath)


def read_file(part, relpath):
    """The content of relpath on a partition (None when absent)."""
    with tempfile.TemporaryDirectory(prefix="gse-inspect-") as mnt:
        if subprocess.run(["mount", "-o", "ro,noload", part, mnt], capture_output=True).returncode != 0:
            if subprocess.run(["mount", "-o", "ro", part, mnt], capture_output=True).returncode != 0:
                return None
        try:
            p = os.path.join(mnt, relpath)
            if not os.path.isfile(p):
                return None
            with open(p, errors="replace") as f:
                return f.read()
        finally:
            subprocess.run(["umount", mnt], check=False)


def by_label(disk):
    """{label: version installed there (or None)}."""
    res = {}
    for n, (label, rec) in labels(disk).items():
        version = None
        if rec:
            version = dict(line.split("=", 1) for line in rec.splitlines() if "=" in line).get("version")
        res[label] = version
    return res


def tree_digest(path):
    """{relative path: (type, mode, uid, gid, mtime s, content sha256 / link
    target)} of a directory tree (lost+found left out): what makes two
    installs of the same image the same system."""
    import hashlib
    import stat as st
    out = {}
    for dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if not (dirpath == path and d == "lost+found")]
        for name in [""] + dirnames + filenames if dirpath == path else dirnames + filenames:
            p = os.path.join(dirpath, name) if name else dirpath
            s = os.lstat(p)
            if st.S_ISREG(s.st_mode):
                h = hashlib.sha256()
                with open(p, "rb") as f:
                    for block in iter(lambda: f.read(1 << 20), b""):
                        h.update(block)
                what = h.hexdigest()
            elif st.S_ISLNK(s.st_mode):
                what = os.readlink(p)
            else:
                what = ""
            out[os.path.relpath(p, path)] = (st.S_IFMT(s.st_mode), st.S_IMODE(s.st_mode), s.st_uid, s.st_gid,
                                             int(s.st_mtime) if not st.S_ISLNK(s.st_mode) else 0, what)
    return out


def partition_tree(disk, number):
    """tree_digest of system partition `number` (ext4: its top is the root)."""
    for n, start, size in partitions(disk):
        if n == number:
            with loop(disk, start, size) as part, tempfile.TemporaryDirectory(prefix="gse-inspect-") as mnt:
                subprocess.run(["mount", "-o", "ro,noload", part, mnt], check=True)
                try:
                    return tree_digest(mnt)
                finally:
                    subprocess.run(["umount", mnt], check=False)
    raise KeyError(number)


def partition_of(disk, label):
    """The partition number that carries label."""
    for n, (lab, rec) in labels(disk).items():
        if lab == label:
            return n
    raise KeyError(label)
