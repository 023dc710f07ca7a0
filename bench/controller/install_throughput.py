"""Install throughput: the controller's two verified installs against the raw
`curl | zstd -d | tar -x` pipeline, on the same image served by nginx, side
by side in one run:

- stream: gse_stream_image of controller_dracut/92gse-net/gse-net-lib.sh
  (download -> SHA512 + size -> zstd -d -> tar -x);
- staged: the chunked install from an empty seed as gse-version-check.sh
  runs it: the casync index fetched and checked (gse_fetch +
  gse_check_file), its chunk table read (gse_caidx_chunks), the chunks
  fetched in parallel into a staging store in the target (gse_chunks_stage),
  casync extract from that store (gse_casync_extract: every chunk checked
  against the index), the staging store removed;
- serial (with --serial): gse_casync_extract alone, casync fetching every
  chunk itself through its HTTP helper (what the staging replaces);
- ranges: the tarball in verified chunks, as gse-version-check.sh runs it
  for a target nothing seeds: the tarball's blob index fetched and checked,
  its table read (gse_caibx_ranges), then the tarball in one request, cut
  into the index's chunks as it arrives by gse-chunk-gate, each chunk's
  SHA-256 checked before it goes on to zstd and tar (gse_ranges_image);
- ranges_install: the same install with the index fetched, checked and
  read untimed just before (the controller does that before it wipes the
  target: it is not on the data's path);
- ranges_shell: ranges_install where the gate could not be built: the
  shell's cut and check (dd, openssl and cat per chunk), the chunks held in
  a tmpfs of their own.

The image is incompressible random payload (the worst case for every
verified path: raw does almost no work per byte), or with --dirs a tarball
of real files of this host (binaries and libraries compress about 3:1, as a
system image does).

The real shell functions run on this host, on two links: loopback,
unlimited (everything bound by this machine's CPU), and 1 Gbit/s: a veth
pair into a network namespace of its own whose sending side is shaped by a
token bucket (tc tbf, 1 Gbit/s), so that the limit holds for all
connections together (nginx's limit_rate is per request and lets a small
object through unshaped).  Needs root (ip netns, tc).

    python bench/controller/install_throughput.py [--mib 256 | --dirs D1,D2] [--rounds 3] [--serial] [--workdir DIR]
        [--variants ranges_install,ranges_shell]   (raw always runs: it is what the ratios are of)
"""
import argparse
import contextlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "controller"))
sys.path.insert(0, os.path.join(ROOT, ".collections"))
import pubtree  # noqa: E402
from chunkgate import gate_path  # noqa: E402
import testimage  # noqa: E402
from gse.serve import Server  # noqa: E402

LIB = os.path.join(ROOT, "controller_dracut")
GSE = f"""
. {LIB}/90gse-base/gse-lib.sh
GSE_RUN=$RUNDIR/run; GSE_LOG=$GSE_RUN/log; mkdir -p $GSE_RUN
gse_log() {{ echo "gse: $*" >> "$GSE_LOG"; }}
. {LIB}/90gse-base/gse-verify-lib.sh
. {LIB}/92gse-net/gse-net-lib.sh
. {LIB}/92gse-net/gse-chunks-lib.sh
. {LIB}/92gse-net/gse-ranges-lib.sh
"""
STREAM = GSE + 'gse_stream_image "$IMG" "$DEST" "$SHA" "$SIZE" zstd\n'
INDEX = 'gse_fetch "$IDX" "$GSE_RUN/image.caidx" && gse_check_file "$GSE_RUN/image.caidx" "$ISHA" "$ISIZE" || exit 3\n'
LIST = 'gse_caidx_chunks "$GSE_RUN/image.caidx" "$GSE_RUN/chunks.list" > "$GSE_RUN/cs" || exit 4\n'
# The staging store in RAM (what the controller takes when it fits the
# memory available) and on the target (when it does not).
RAM_MOUNT = 'gse_chunks_ram "$GSE_RUN/chunks" "$(gse_staging_bytes $(cat "$GSE_RUN/cs"))" || exit 7\n'
STAGE = 'gse_chunks_stage "$GSE_RUN/chunks.list" "$GSE_CHUNK_STAGING" || exit 5\n'
EXTRACT = 'gse_casync_extract "$GSE_RUN/image.caidx" "$DEST" || exit 6\n'
RAM_RELEASE = 'gse_chunks_ram_release "$GSE_RUN/chunks"\n'
TARGET_RELEASE = 'gse_chunks_unstage "$GSE_CHUNK_STAGING" "$DEST"\n'
AT_RAM = 'GSE_CHUNK_STAGING=$GSE_RUN/chunks\n'
AT_TARGET = 'GSE_CHUNK_STAGING=$DEST/$GSE_STAGING_NAME\n'
STAGED_RAM = GSE + INDEX + LIST + AT_RAM + RAM_MOUNT + STAGE + EXTRACT + RAM_RELEASE
STAGED_TARGET = GSE + INDEX + LIST + AT_TARGET + STAGE + EXTRACT + TARGET_RELEASE
# The staged installs cut into their phases, each its own process tree (the
# state between them in files), for --phases: wall time, CPU and the bytes
# written to disk of each (rusage of the tree: the curl, casync, rm it ran;
# not nginx's work).
PHASES = {
    "ram": [("index", GSE + INDEX + LIST), ("mount", GSE + RAM_MOUNT), ("fetch", GSE + AT_RAM + STAGE),
            ("extract", GSE + AT_RAM + EXTRACT), ("release", GSE + RAM_RELEASE)],
    "target": [("index", GSE + INDEX + LIST), ("fetch", GSE + AT_TARGET + STAGE),
               ("extract", GSE + AT_TARGET + EXTRACT), ("release", GSE + AT_TARGET + TARGET_RELEASE)],
}
SERIAL = GSE + INDEX + 'gse_casync_extract "$GSE_RUN/image.caidx" "$DEST"\n'
# The tarball in verified chunks (gse-version-check.sh without a seed): its
# blob index fetched and checked, the tarball fetched as one stream and cut
# into the index's chunks, every chunk's SHA-256 checked before it goes on
# to zstd and tar.
RANGES_INDEX = ('gse_fetch_sized "$TISIZE" "$TIDX" "$GSE_RUN/tarball.caibx" '
                '&& gse_check_file "$GSE_RUN/tarball.caibx" "$TISHA" "$TISIZE" || exit 3\n'
                'gse_caibx_ranges "$GSE_RUN/tarball.caibx" "$SIZE" "$GSE_RUN/ranges.list" > "$GSE_RUN/ranges.sum" '
                '|| exit 4\n')
# As the controller runs it: the chunks checked by gse-chunk-gate (built for
# this host as module-setup.sh builds it; $GATE), the largest chunk given.
RANGES_INSTALL = ('GSE_CHUNK_GATE=$GATE\nread -r _n _big < "$GSE_RUN/ranges.sum"\n'
                  'gse_ranges_image "$IMG" "$SIZE" "$GSE_RUN/ranges.list" "$DEST" zstd "$_big"\n')
# The controller where the gate could not be built: the shell's cut and
# check (dd, openssl, cat), the chunks in a tmpfs of their own.
RANGES_INSTALL_SHELL = RANGES_INSTALL.replace("GSE_CHUNK_GATE=$GATE", "GSE_CHUNK_GATE=/nonexistent")
RANGES = GSE + RANGES_INDEX + RANGES_INSTALL
# The same install timed without the index: in the controller the index is
# fetched, checked and read before the target is wiped (gse-version-check.sh),
# so it is not on the data's path; here it runs untimed just before.
RANGES_ALONE = GSE + RANGES_INSTALL
RANGES_ALONE_SHELL = GSE + RANGES_INSTALL_SHELL
UNTIMED = {name: GSE + 'rm -f "$GSE_RUN/ranges.list"\n' + RANGES_INDEX
           for name in ("ranges_install_s", "ranges_shell_s")}
RAW = "curl -fsS \"$GSE_SERVER/$IMG\" | zstd -dcq | tar -xp --numeric-owner -C \"$DEST\""


def run(*argv):
    subprocess.run(argv, check=True)


@contextlib.contextmanager
def shaped_link(rate):
    """A veth pair into a new network namespace, the host's side shaped to
    rate (tc tbf); yields (host address, namespace).  Removed afterwards."""
    tag = os.getpid() % 10000
    ns, host_if, ns_if = f"gsebench{tag}", f"gseh{tag}", f"gsen{tag}"
    net = f"10.{200 + tag % 50}.{tag % 250}"
    run("ip", "netns", "add", ns)
    try:
        run("ip", "link", "add", host_if, "type", "veth", "peer", "name", ns_if)
        run("ip", "link", "set", ns_if, "netns", ns)
        run("ip", "addr", "add", f"{net}.1/30", "dev", host_if)
        run("ip", "link", "set", host_if, "up")
        run("ip", "netns", "exec", ns, "ip", "addr", "add", f"{net}.2/30", "dev", ns_if)
        run("ip", "netns", "exec", ns, "ip", "link", "set", ns_if, "up")
        run("ip", "netns", "exec", ns, "ip", "link", "set", "lo", "up")
        # The download direction: what the host (the server) sends.
        run("tc", "qdisc", "add", "dev", host_if, "root", "tbf", "rate", rate, "burst", "1mb", "latency", "50ms")
        yield f"{net}.1", ns
    finally:
        subprocess.run(["ip", "link", "del", host_if], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def timed(script, env, ns):
    argv = ["sh", "-c", script]
    if ns:
        argv = ["ip", "netns", "exec", ns] + argv
    t0 = time.monotonic()
    subprocess.run(argv, env=env, check=True)
    return time.monotonic() - t0


def rusage_run(script, env, ns):
    """Run script; (wall s, CPU s of its whole tree, MiB it wrote to disk)."""
    argv = ["sh", "-c", script]
    if ns:
        argv = ["ip", "netns", "exec", ns] + argv
    t0 = time.monotonic()
    pid = os.spawnvpe(os.P_NOWAIT, argv[0], argv, env)
    _, status, ru = os.wait4(pid, 0)
    wall = time.monotonic() - t0
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"{argv}: exit {os.waitstatus_to_exitcode(status)}")
    return round(wall, 3), round(ru.ru_utime + ru.ru_stime, 3), round(ru.ru_oublock * 512 / 2**20, 1)


def phases(tree, env, rounds, work, host="127.0.0.1", ns=None):
    """Per phase of the staged install and the raw pipeline: best wall
    time of the rounds, with the CPU and disk writes of that round."""
    r = {}
    with Server(tree, host=host) as srv:
        env["GSE_SERVER"] = srv.url
        for _ in range(rounds):
            dest = os.path.join(work, "dest")
            shutil.rmtree(dest, ignore_errors=True)
            os.makedirs(dest)
            env["DEST"] = dest
            steps = [("raw", RAW)] + [(f"{where}_{n}", sc) for where in PHASES for n, sc in PHASES[where]]
            for name, script in steps:
                # ip netns exec runs in a mount namespace of its own: the
                # store in RAM is mounted and released outside it (the
                # fetch and the extract then see it).
                got = rusage_run(script, env, None if name.endswith(("_mount", "ram_release")) else ns)
                if name not in r or got[0] < r[name]["wall_s"]:
                    r[name] = {"wall_s": got[0], "cpu_s": got[1], "disk_MiB": got[2]}
                if name in ("raw", "ram_release"):
                    shutil.rmtree(dest)
                    os.makedirs(dest)
    return r


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def measure(tree, env, size, variants, rounds, work, host="127.0.0.1", ns=None):
    r = {k: [] for k, _ in variants}
    r["load"] = [loadavg()]
    with Server(tree, host=host) as srv:
        env["GSE_SERVER"] = srv.url
        for i in range(rounds):
            # Rotated, so drift of a shared machine hits every variant alike.
            for key, script in variants[i % len(variants):] + variants[:i % len(variants)]:
                dest = os.path.join(work, "dest")
                shutil.rmtree(dest, ignore_errors=True)
                os.makedirs(dest)
                env["DEST"] = dest
                # Every variant starts with nothing left to write back:
                # the previous one's (and the removal's) dirty pages are not
                # its to pay for.
                if key in UNTIMED:
                    timed(UNTIMED[key], env, ns)
                os.sync()
                r[key].append(round(timed(script, env, ns), 3))
    r["load"].append(loadavg())
    best = {k: min(r[k]) for k, _ in variants}
    # The median too: writing to a disk, the same variant spreads widely
    # from round to round, and the best of few rounds is partly luck.
    median = {k: statistics.median(r[k]) for k, _ in variants}
    r["raw_MiB_s"] = round(size / best["raw_s"] / 2**20, 1)
    for k, _ in variants:
        if k != "raw_s":
            r[k[:-2] + "_ratio"] = round(best["raw_s"] / best[k], 2)
            r[k[:-2] + "_ratio_median"] = round(median["raw_s"] / median[k], 2)
    return r


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mib", type=int, default=256, help="incompressible payload of the image")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--serial", action="store_true", help="also casync fetching every chunk itself (slow)")
    p.add_argument("--phases", action="store_true", help="only the breakdown of the staged install into its phases")
    p.add_argument("--dirs", default=None,
                   help="the image holds copies of these host directories (comma-separated) instead of random bytes")
    p.add_argument("--variants", default="",
                   help="comma-separated variants to run beside raw (default: all)")
    p.add_argument("--workdir", default=None, help="where the image is unpacked (default: the temporary directory)")
    a = p.parse_args(argv)
    variants = [("raw_s", RAW), ("stream_s", STREAM), ("ranges_s", RANGES), ("ranges_install_s", RANGES_ALONE),
                ("ranges_shell_s", RANGES_ALONE_SHELL),
                ("staged_ram_s", STAGED_RAM),
                ("staged_target_s", STAGED_TARGET)]
    if a.serial:
        variants.append(("serial_s", SERIAL))
    if a.variants:
        wanted = {v.strip() + "_s" for v in a.variants.split(",")}
        unknown = wanted - {k for k, _ in variants}
        if unknown:
            p.error("unknown variants: %s (known: %s)" % (", ".join(sorted(k[:-2] for k in unknown)),
                                                          ", ".join(k[:-2] for k, _ in variants)))
        variants = [(k, sc) for k, sc in variants if k == "raw_s" or k in wanted]
    work = tempfile.mkdtemp(prefix="gse-bench-install-", dir=a.workdir)
    # The controller's own files (/run/gse: the chunks in flight of the
    # tarball's chunks among them) are in RAM, as in the initramfs.
    rundir = tempfile.mkdtemp(prefix="gse-bench-run-", dir="/dev/shm")
    try:
        tree = os.path.join(work, "tree")
        os.makedirs(tree)
        if a.dirs:
            root = os.path.join(work, "root-bench")
            os.makedirs(root)
            # Relative to / (cp --parents stats an absolute source's parents
            # relative to the working directory).
            subprocess.run(["cp", "-a", "--parents"] + [d.strip("/") for d in a.dirs.split(",")] + [root],
                           check=True, cwd="/")
            tarball = testimage.pack(root, os.path.join(work, "bench.tar.zst"))
        else:
            tarball = testimage.make_image(work, "bench", payload_bytes=a.mib << 20)
        idx = pubtree.make_index(tree, "bench", os.path.join(work, "root-bench"))
        shutil.rmtree(os.path.join(work, "root-bench"))
        d = os.path.join(tree, "images", "bench")
        os.replace(tarball, os.path.join(d, "image.tar.zst"))
        img = "images/bench/image.tar.zst"
        size = os.path.getsize(os.path.join(tree, img))
        # Part K's own command line and chunk sizes.
        tidx = pubtree.make_tarball_index(os.path.join(tree, img), chunk_size=None)
        # Bounds as in the controller, the stall window widened: a busy
        # machine must not turn a slow round into a refusal.
        env = dict(os.environ, WORK=work, RUNDIR=rundir, GSE_STALL_TIME="3600", IMG=img, GATE=gate_path(),
                   SHA=pubtree.sha512(os.path.join(tree, img)),
                   SIZE=str(size), IDX="images/bench/image.caidx", ISHA=pubtree.sha512(idx),
                   ISIZE=str(os.path.getsize(idx)), GSE_STORE_PATH="store", TIDX=img + ".caibx",
                   TISHA=pubtree.sha512(tidx), TISIZE=str(os.path.getsize(tidx)))
        store = [os.path.join(dp, f) for dp, _, fs in os.walk(os.path.join(tree, "store")) for f in fs]
        res = {"image_bytes": size, "payload": a.dirs or "random", "chunks": len(store),
               "tarball_chunks": (os.path.getsize(tidx) - 104) // 40,
               "store_bytes": sum(os.path.getsize(f) for f in store),
               "cores": os.cpu_count(), "parallel": int(os.environ.get("GSE_FETCH_PARALLEL", "8"))}
        if a.phases:
            res["load"] = [loadavg()]
            res["loopback"] = phases(tree, env, a.rounds, work)
            with shaped_link("1gbit") as (host, ns):
                res["1gbit"] = phases(tree, env, a.rounds, work, host=host, ns=ns)
            res["load"].append(loadavg())
            print(json.dumps(res, indent=1))
            return
        res["loopback"] = measure(tree, env, size, variants, a.rounds, work)
        with shaped_link("1gbit") as (host, ns):
            res["1gbit"] = measure(tree, env, size, variants, a.rounds, work, host=host, ns=ns)
        res["target_ratio"] = {"loopback": 0.8, "1gbit": 0.95}
        print(json.dumps(res, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(rundir, ignore_errors=True)


if __name__ == "__main__":
    main()
