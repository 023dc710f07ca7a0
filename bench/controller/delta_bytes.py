"""Bytes a client fetches for an update, side by side in one run: the
verified chunked install (the controller's gse_casync_extract, run on this
host, with the installed system as the seed, from nginx... here a counting
loopback HTTP server) for

  - no change                (a rebuild that changed nothing)
  - about 1 % of files changed (one package updated: its files replaced whole)
  - a new kernel             (vmlinuz and its modules replaced, nothing shared)

against the full image (the zstd tarball a format-1 client fetches).

The image root is a copy of real files of this host (--dirs, default /usr/bin
and /usr/lib/x86_64-linux-gnu, about 1 GB) plus a kernel: this host's vmlinuz
and its fs/ and net/ modules (--kernel-dirs).  A changed file gets one byte
in every 4 KiB altered: no chunk of it can be reused, yet it compresses as
the original did.

    python bench/controller/delta_bytes.py [--dirs D1,D2] [--percent 1]
"""
import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "controller"))
import pubtree  # noqa: E402
from client import loopback_http  # noqa: E402

sys.path.insert(0, os.path.join(ROOT, ".collections"))
from ansible_collections.gse.stateless.plugins.module_utils import caindex  # noqa: E402

LIB = os.path.join(ROOT, "controller_dracut")
EXTRACT = f"""
. {LIB}/90gse-base/gse-lib.sh
GSE_RUN=$WORK/run; GSE_LOG=$GSE_RUN/log; mkdir -p $GSE_RUN
gse_log() {{ echo "gse: $*" >> "$GSE_LOG"; }}
. {LIB}/90gse-base/gse-verify-lib.sh
. {LIB}/92gse-net/gse-net-lib.sh
gse_casync_extract "$IDX" "$DEST" $SEED
"""


def copy_root(paths, dest):
    for src in paths:
        dst = os.path.join(dest, src.lstrip("/"))
        os.makedirs(os.path.dirname(dst), exist_ok=True)
        if os.path.isdir(src):
            shutil.copytree(src, dst, symlinks=True)
        else:
            shutil.copy2(src, dst)


def rewrite(path, rnd):
    """Changed content of the same size and kind (a new inode: hard links stay
    intact): one byte in every 4 KiB altered, so no chunk of the old file
    survives while the content compresses as the original did (a rebuilt
    package or a new kernel: new bytes, same kind of bytes)."""
    with open(path, "rb") as f:
        data = bytearray(f.read())
    for i in range(rnd.randrange(4096) if data else 0, len(data), 4096):
        data[i] ^= 0x5A
    if not data:
        data = bytearray(b"\0")
    tmp = path + ".new"
    with open(tmp, "wb") as f:
        f.write(data)
    shutil.copystat(path, tmp)
    os.replace(tmp, path)


def regular_files(root, under=""):
    out = []
    for d, _, fs in os.walk(os.path.join(root, under)):
        out += [os.path.join(d, f) for f in fs if os.path.isfile(os.path.join(d, f))
                and not os.path.islink(os.path.join(d, f))]
    return sorted(out)


def tarball_bytes(root, out):
    subprocess.run(f"tar -C {root} --numeric-owner --xattrs -cf - . | zstd -q -f -T0 -3 -o {out}",
                   shell=True, check=True)
    return os.path.getsize(out)


def make_index(tree, version, root):
    """images/<version>/image.caidx of root made as part K makes it (caindex.make_argv: the same casync
    options, chunk sizes and compression), its chunks added to the tree's store."""
    d = os.path.join(tree, "images", version)
    os.makedirs(d, exist_ok=True)
    idx = os.path.join(d, "image.caidx")
    subprocess.run(caindex.make_argv(os.path.join(tree, "store"), idx, root), check=True, capture_output=True)
    return idx


def kernel_bytes(root, kernel, out):
    """The new kernel's own files (vmlinuz and the modules) as tar | zstd -3: what no delta can go below
    when none of its bytes are shared with the installed kernel."""
    rel = [k.lstrip("/") for k in kernel]
    subprocess.run(["tar", "-C", root, "--numeric-owner", "-cf", out + ".tar"] + rel, check=True)
    subprocess.run(["zstd", "-q", "-f", "-T0", "-3", "--rm", out + ".tar", "-o", out], check=True)
    return os.path.getsize(out)


def main(argv=None):
    kver = sorted(os.listdir("/lib/modules"))[-1]
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--dirs", default="/usr/bin,/usr/lib/x86_64-linux-gnu")
    p.add_argument("--kernel-dirs", default=f"/boot/vmlinuz-{kver},/lib/modules/{kver}/kernel/fs,"
                   f"/lib/modules/{kver}/kernel/net")
    p.add_argument("--percent", type=float, default=1.0)
    a = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="gse-bench-delta-", dir="/var/tmp")
    rnd = random.Random(9)
    try:
        base = os.path.join(work, "root-base")
        os.makedirs(base)
        kernel = [k for k in a.kernel_dirs.split(",") if os.path.exists(k)]
        copy_root(a.dirs.split(",") + kernel, base)
        variants = {"no_change": base}
        # One package updated: about percent % of the files, replaced whole.
        pkg = os.path.join(work, "root-package")
        subprocess.run(["cp", "-al", base, pkg], check=True)
        files = regular_files(pkg)
        for f in rnd.sample(files, max(1, int(len(files) * a.percent / 100))):
            rewrite(f, rnd)
        variants["one_percent_files"] = pkg
        # A new kernel: vmlinuz and the modules, nothing shared.
        kern = os.path.join(work, "root-kernel")
        subprocess.run(["cp", "-al", base, kern], check=True)
        for k in kernel:
            for f in (regular_files(kern, k.lstrip("/")) if os.path.isdir(k) else [os.path.join(kern, k.lstrip("/"))]):
                rewrite(f, rnd)
        variants["new_kernel"] = kern
        tree = os.path.join(work, "tree")
        full = tarball_bytes(base, os.path.join(work, "base.tar.zst"))
        res = {"image_files": len(files), "image_root_bytes": pubtree.root_bytes(base),
               "full_image_bytes": full, "kernel": kernel}
        for name, root in variants.items():
            idx = make_index(tree, name, root)
            dest = os.path.join(work, "dest")
            shutil.rmtree(dest, ignore_errors=True)
            os.makedirs(dest)
            served = []
            with loopback_http(tree, served=served) as port:
                # Bytes are measured here, not stalls: a busy bench machine
                # must not trip the stall bound.
                env = dict(os.environ, WORK=work, IDX=idx, DEST=dest, SEED=base, GSE_STALL_TIME="3600",
                           GSE_SERVER=f"http://127.0.0.1:{port}")
                subprocess.run(["sh", "-c", EXTRACT], env=env, check=True)
            fetched = sum(n for path, n in served)
            res[name] = {"fetched_bytes": fetched, "ratio_to_full": round(fetched / full, 4),
                         "full_tarball_bytes": tarball_bytes(root, os.path.join(work, "v.tar.zst"))
                         if root != base else full}
        own = kernel_bytes(kern, kernel, os.path.join(work, "kernel.tar.zst"))
        res["new_kernel"].update(own_zstd_bytes=own, own_ratio_to_full=round(own / full, 4),
                                 fetched_to_own=round(res["new_kernel"]["fetched_bytes"] / own, 4))
        res["targets"] = {"no_change": 0, "one_percent_files": 0.10, "new_kernel": 0.10}
        print(json.dumps(res, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
