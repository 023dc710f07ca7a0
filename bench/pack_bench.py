#!/usr/bin/env python3
"""Part K's pack -> hash -> sign through the pack and sign modules versus the raw pipeline.

The headline baseline is the raw ``tar ... | zstd -T0 -3 > f`` alone; the
fuller shell variant (plus ``sha512sum`` and ``gpg --detach-sign``) is a
second comparison.  All variants pack the same cached tree with the same tar
options and compressor; rounds are interleaved (the order rotates) so that
drift of the machine affects all alike.  See bench/README.md.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
COLLECTIONS = os.path.join(TOP, ".collections")
sys.path.insert(0, COLLECTIONS)
sys.path.insert(0, HERE)

from bench_tree import tree, tree_bytes  # noqa: E402
from ansible_collections.gse.stateless.plugins.module_utils import caindex, openpgp_sign, tar_stream  # noqa: E402

KEY = "bench@gse.invalid"


def run(argv, **kw):
    proc = subprocess.run(argv, capture_output=True, text=True, **kw)
    if proc.returncode != 0:
        raise SystemExit("failed: %s\n%s%s" % (shlex.join(argv), proc.stdout, proc.stderr))
    return proc.stdout


def module(name, args, workdir):
    """Run a module as Ansible's module runner does: a fresh interpreter with a JSON argument file."""
    argfile = os.path.join(workdir, name + ".json")
    with open(argfile, "w") as f:
        json.dump({"ANSIBLE_MODULE_ARGS": args}, f)
    # As a package module (-m), not as a script: the script's directory on
    # sys.path would let plugins/modules/locale.py shadow the standard library's.
    out = run([sys.executable, "-m", "ansible_collections.gse.stateless.plugins.modules." + name, argfile],
              env=dict(os.environ, PYTHONPATH=COLLECTIONS), cwd=workdir)
    res = json.loads(out)
    if res.get("failed"):
        raise SystemExit("%s failed: %s" % (name, res))
    return res


def children_cpu():
    ru = resource.getrusage(resource.RUSAGE_CHILDREN)
    return ru.ru_utime + ru.ru_stime


def via_modules(root, outdir, home, level, workdir):
    """What roles/archive runs: pack (signing in the same pass), then sign on what pack did not sign."""
    dest = os.path.join(outdir, "image.tar.zst")
    t0 = time.monotonic()
    res = module("pack", dict(root=root, dest=dest, level=level, force=True, sign_key=KEY, gnupghome=home),
                 workdir)
    t1 = time.monotonic()
    files = [f for f in (dest, os.path.join(outdir, "SHA512SUMS")) if f not in res["signed"]]
    if files:  # roles/archive/tasks/sign.yml skips the task when pack signed everything
        module("sign", dict(files=files, gnupghome=home, key=KEY), workdir)
    t2 = time.monotonic()
    # Part K's next step, timed on its own (not in total, the headline's
    # pack+hash+sign): the tarball's blob index.
    cpu = children_cpu()
    module("tarball_index", dict(tarball=dest, dest=dest + ".caibx", tmpdir=workdir), workdir)
    t3 = time.monotonic()
    return dict(pack=t1 - t0, total=t2 - t0, size=res["size"], stream=res["duration"], index=t3 - t2,
                index_cpu=children_cpu() - cpu)


def via_shell(root, outdir, home, level, _workdir):
    dest = os.path.join(outdir, "image.tar.zst")
    tar = shlex.join(tar_stream.tar_argv(root, []))
    comp = shlex.join(tar_stream.compressor_argv("zstd", level))
    t0 = time.monotonic()
    run(["bash", "-c", "set -o pipefail; %s | %s > %s" % (tar, comp, shlex.quote(dest))])
    run(["bash", "-c", "cd %s && sha512sum image.tar.zst > SHA512SUMS" % shlex.quote(outdir)])
    t1 = time.monotonic()
    for f in (dest, os.path.join(outdir, "SHA512SUMS")):
        run(openpgp_sign.detach_sign_argv(home, KEY, f))
    t2 = time.monotonic()
    # The blob index by hand: casync alone, its throwaway store removed.
    cpu = children_cpu()
    store = tempfile.mkdtemp(prefix="store-", dir=outdir)
    run(caindex.blob_index_argv(store, dest + ".caibx", dest))
    shutil.rmtree(store)
    t3 = time.monotonic()
    return dict(pack=t1 - t0, total=t2 - t0, size=os.path.getsize(dest), index=t3 - t2,
                index_cpu=children_cpu() - cpu)


def via_raw(root, outdir, _home, level, _workdir):
    """The issue's baseline: the raw pipeline alone, no digest, no signature."""
    dest = os.path.join(outdir, "image.tar.zst")
    tar = shlex.join(tar_stream.tar_argv(root, []))
    comp = shlex.join(tar_stream.compressor_argv("zstd", level))
    t0 = time.monotonic()
    run(["bash", "-c", "set -o pipefail; %s | %s > %s" % (tar, comp, shlex.quote(dest))])
    t1 = time.monotonic()
    return dict(pack=t1 - t0, total=t1 - t0, size=os.path.getsize(dest))


def make_key(home):
    os.chmod(home, 0o700)
    run(["gpg", "--batch", "--homedir", home, "--passphrase", "", "--quick-gen-key", "GSE Bench <%s>" % KEY,
         "ed25519", "sign", "never"])


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size-mb", type=int, default=600, help="size of the generated tree (default 600)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--level", type=int, default=3, help="zstd level (default 3, the pack module's default)")
    ap.add_argument("--workdir", default="/var/tmp", help="where the tarballs are written")
    args = ap.parse_args()

    print("preparing the %d MB tree (cached under /var/cache/gse-tests) ..." % args.size_mb, flush=True)
    root = tree(args.size_mb)
    nbytes = tree_bytes(root)
    work = tempfile.mkdtemp(prefix="gse-bench-", dir=args.workdir)
    home = os.path.join(work, "gnupg")
    os.mkdir(home)
    variants = {"modules": via_modules, "raw": via_raw, "shell": via_shell}
    names = list(variants)
    results = {name: [] for name in variants}
    loads = [loadavg()]
    try:
        make_key(home)
        # Warm the page cache so that no variant pays for the first read.
        run(["bash", "-c", "%s > /dev/null" % shlex.join(tar_stream.tar_argv(root, []))])
        for rnd in range(args.rounds):
            # Rotate the order so that every variant runs first, second and last alike.
            order = names[rnd % len(names):] + names[:rnd % len(names)]
            for name in order:
                outdir = os.path.join(work, "out-%s-%d" % (name, rnd))
                os.mkdir(outdir)
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                r = variants[name](root, outdir, home, args.level, work)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                # CPU of every process the variant ran (waited-for descendants included):
                # steadier than wall time when other work shares the machine.
                # The blob index is reported on its own, out of the headline's CPU.
                r["cpu"] = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime) \
                    - r.get("index_cpu", 0.0)
                r["load"] = loadavg()
                loads.append(r["load"])
                results[name].append(r)
                print("round %d  %-8s pack+hash %6.2f s  total %6.2f s  %7.1f MB/s  cpu %6.2f s  load %4.1f"
                      "  (tarball %d MB)%s" % (rnd + 1, name, r["pack"], r["total"], nbytes / r["total"] / 1e6,
                                              r["cpu"], r["load"], r["size"] >> 20,
                                              "  blob index %.2f s" % r["index"] if "index" in r else ""),
                      flush=True)
                shutil.rmtree(outdir)
    finally:
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "gpg-agent"], capture_output=True)
        shutil.rmtree(work, ignore_errors=True)

    med = {n: {k: statistics.median(r[k] for r in rs) for k in ("pack", "total", "cpu")} for n, rs in results.items()}
    ratio = med["raw"]["total"] / med["modules"]["total"]
    shell_ratio = med["shell"]["total"] / med["modules"]["total"]
    cpu_ratio = med["raw"]["cpu"] / med["modules"]["cpu"]
    print()
    print("input %.1f MB, zstd -T0 -%d, %d rounds, load average %.1f..%.1f (%d cores), medians:"
          % (nbytes / 1e6, args.level, args.rounds, min(loads), max(loads), os.cpu_count()))
    what = {"modules": "pack+hash+sign (modules)", "raw": "tar | zstd -T0 > f", "shell": "tar|zstd, sha512sum, gpg"}
    for n in variants:
        print("  %-8s %-26s %6.2f s   %7.1f MB/s   cpu %6.2f s"
              % (n, what[n], med[n]["total"], nbytes / med[n]["total"] / 1e6, med[n]["cpu"]))
    print("throughput modules / raw tar|zstd: %.2fx (target >= 0.90x);  cpu raw / modules: %.2fx"
          % (ratio, cpu_ratio))
    print("throughput modules / full shell variant: %.2fx" % shell_ratio)
    index = {n: statistics.median(r["index"] for r in results[n]) for n in ("modules", "shell")}
    print("blob index (not in the totals or cpu above): module %.2f s = %.2fx of modules' pack+hash+sign, "
          "%.2fx of raw tar|zstd; casync by hand %.2f s (module / by hand %.2fx); cpu module %.2f s"
          % (index["modules"], index["modules"] / med["modules"]["total"], index["modules"] / med["raw"]["total"],
             index["shell"], index["modules"] / index["shell"],
             statistics.median(r["index_cpu"] for r in results["modules"])))
    # On N free cores no variant can take less wall time than its CPU time / N:
    # with raw's wall time, that bounds the headline ratio however quiet the machine.
    cores = os.cpu_count()
    bound = min(1.0, med["raw"]["total"] / (med["modules"]["cpu"] / cores))
    print("cpu bound: modules need >= %.2f s of wall on %d cores (cpu / cores): ratio <= %.2fx with raw's %.2f s"
          % (med["modules"]["cpu"] / cores, cores, bound, med["raw"]["total"]))
    os.makedirs(os.path.join(HERE, "results"), exist_ok=True)
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    with open(os.path.join(HERE, "results", "pack-%s.json" % stamp), "w") as f:
        json.dump(dict(input_bytes=nbytes, level=args.level, cores=os.cpu_count(), rounds=results, medians=med,
                       ratio=ratio, shell_ratio=shell_ratio, cpu_ratio=cpu_ratio, cpu_bound=bound, loads=loads,
                       blob_index=index), f, indent=1)
    return 0 if ratio >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
