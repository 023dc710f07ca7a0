"""Install throughput: the controller's verified stream (gse_stream_image of
controller_dracut/92gse-net/gse-net-lib.sh, run on this host: download ->
SHA512 + size -> zstd -d -> tar -x) and its verified chunked install
(gse_fetch + gse_check_file of the casync index, then gse_casync_extract
from an empty seed: every chunk checked against the index) against the raw
`curl | zstd -d | tar -x` pipeline, on the same image served by nginx on
loopback, side by side in one run.

    python bench/controller/install_throughput.py [--mib 256] [--rounds 3]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, ROOT)
sys.path.insert(0, os.path.join(ROOT, "tests", "controller"))
import pubtree  # noqa: E402
import testimage  # noqa: E402
from gse.serve import Server  # noqa: E402

LIB = os.path.join(ROOT, "controller_dracut")
GSE = f"""
. {LIB}/90gse-base/gse-lib.sh
GSE_RUN=$WORK/run; GSE_LOG=$GSE_RUN/log; mkdir -p $GSE_RUN
gse_log() {{ echo "gse: $*" >> "$GSE_LOG"; }}
. {LIB}/90gse-base/gse-verify-lib.sh
. {LIB}/92gse-net/gse-net-lib.sh
"""
STREAM = GSE + 'gse_stream_image "$IMG" "$DEST" "$SHA" "$SIZE" zstd\n'
CHUNKED = GSE + ('gse_fetch "$IDX" "$GSE_RUN/image.caidx" && gse_check_file "$GSE_RUN/image.caidx" "$ISHA" "$ISIZE" '
                 '&& gse_casync_extract "$GSE_RUN/image.caidx" "$DEST"\n')
RAW = "curl -fsS \"$GSE_SERVER/$IMG\" | zstd -dcq | tar -xp --numeric-owner -C \"$DEST\""


def timed(script, env):
    t0 = time.monotonic()
    subprocess.run(["sh", "-c", script], env=env, check=True)
    return time.monotonic() - t0


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--mib", type=int, default=256, help="incompressible payload of the image")
    p.add_argument("--rounds", type=int, default=3)
    a = p.parse_args(argv)
    work = tempfile.mkdtemp(prefix="gse-bench-install-")
    try:
        tree = os.path.join(work, "tree")
        os.makedirs(tree)
        tarball = testimage.make_image(work, "bench", payload_bytes=a.mib << 20)
        idx = pubtree.make_index(tree, "bench", os.path.join(work, "root-bench"))
        shutil.rmtree(os.path.join(work, "root-bench"))
        d = os.path.join(tree, "images", "bench")
        os.replace(tarball, os.path.join(d, "image.tar.zst"))
        img = "images/bench/image.tar.zst"
        size = os.path.getsize(os.path.join(tree, img))
        env = dict(os.environ, WORK=work, GSE_STALL_TIME="3600", IMG=img, SHA=pubtree.sha512(os.path.join(tree, img)), SIZE=str(size),
                   IDX="images/bench/image.caidx", ISHA=pubtree.sha512(idx), ISIZE=str(os.path.getsize(idx)))
        res = {"image_bytes": size}
        # Loopback: no network limit, so both pipelines are bound by this
        # machine's CPU and the verification's extra work shows in full.
        # 1 Gbit/s: nginx sends at most 119 MB/s per connection, the line
        # rate of a client's usual link.
        for name, rate in (("loopback", ""), ("1gbit", "119m")):
            r = {"gse_s": [], "chunked_s": [], "raw_s": []}
            with Server(tree, limit_rate=rate) as srv:
                env["GSE_SERVER"] = srv.url
                for _ in range(a.rounds):
                    for key, script in (("raw_s", RAW), ("gse_s", STREAM), ("chunked_s", CHUNKED)):
                        dest = os.path.join(work, "dest")
                        shutil.rmtree(dest, ignore_errors=True)
                        os.makedirs(dest)
                        env["DEST"] = dest
                        r[key].append(round(timed(script, env), 3))
            best = {k: min(r[k]) for k in ("gse_s", "chunked_s", "raw_s")}
            r["gse_MiB_s"] = round(size / best["gse_s"] / 2**20, 1)
            r["raw_MiB_s"] = round(size / best["raw_s"] / 2**20, 1)
            r["ratio"] = round(best["raw_s"] / best["gse_s"], 2)
            r["chunked_ratio"] = round(best["raw_s"] / best["chunked_s"], 2)
            res[name] = r
        res["target_ratio"] = {"loopback": 0.8, "1gbit": 0.95}
        print(json.dumps(res, indent=1))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
