#!/usr/bin/env python3
"""A rebuild with nothing changed against the first build, side by side in one run.

Each round builds the bundled default (the project's Gentoo-like stage3 on
loopback, playbooks/build.yml with inventories/demo, as scripts/demo does) in
a fresh directory, then builds again in the same directory with nothing
changed.  It prints the wall time and the CPU time (of ansible-playbook and
everything it started) of both builds, which work the rebuild skipped (the
build-tool round trip, the pack) and whether its tarball is the first one's
byte for byte, and the ratio rebuild / first build (the target is <= 0.20).
A rebuild with nothing changed skips parts B to J whole (docs/build.md).
See bench/README.md.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(HERE)
sys.path.insert(0, os.path.join(TOP, ".collections"))
sys.path.insert(0, TOP)

from tests.fixture.build import ensure_fixture  # noqa: E402
from tests.fixture.http import FixtureServer  # noqa: E402
from tests.integration.buildrun import BuildEnv  # noqa: E402


def loadavg():
    with open("/proc/loadavg") as f:
        return float(f.read().split()[0])


def timed(env):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.monotonic()
    rc, res = env.run()
    wall = time.monotonic() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if rc != 0:
        raise SystemExit("build failed (rc %d): %s" % (rc, res.failed()))
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu, res


def newest_tarball(env):
    images = os.path.join(env.cdist, "images")
    path = os.path.join(images, sorted(os.listdir(images))[-1], "image.tar.zst")
    h = hashlib.sha512()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return path, h.hexdigest()


def where_time_goes(res, top=12):
    """(seconds per role, the slowest tasks) of a build, from the test callback's per-task wall times."""
    roles, tasks = {}, []
    for play in res.data.get("plays", []):
        for t in play.get("tasks", []):
            seconds = t.get("seconds", 0.0)
            name = t["task"]["name"]
            role = name.split(" : ", 1)[0] if " : " in name else "(play)"
            roles[role] = roles.get(role, 0.0) + seconds
            tasks.append((seconds, name))
    return sorted(roles.items(), key=lambda kv: -kv[1]), sorted(tasks, reverse=True)[:top], len(tasks)


def skipped(res, name):
    return all(r.get("skipped") for n, _h, r in res.tasks() if n.endswith(name))


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--workdir", default="/var/tmp")
    args = ap.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("run as root: the build mounts and chroots")
    fixture = ensure_fixture()
    home = tempfile.mkdtemp(prefix="gse-bench-gnupg-")
    shutil.rmtree(home)
    shutil.copytree(fixture.gnupg_home, home, ignore=shutil.ignore_patterns("S.*", "*.lock"))
    rounds = []
    try:
        with FixtureServer(fixture.path) as server:
            for n in range(1, args.rounds + 1):
                env = BuildEnv(tempfile.mkdtemp(prefix="gse-bench-rebuild-", dir=args.workdir), fixture, server.url,
                               home, fixture.fingerprint)
                try:
                    load0 = loadavg()
                    first_wall, first_cpu, _res = timed(env)
                    first_path, first_sha = newest_tarball(env)
                    again_wall, again_cpu, res = timed(env)
                    again_path, again_sha = newest_tarball(env)
                    taken = [r for name, _h, r in res.tasks()
                             if name.endswith("Take over the image of the unchanged root") and not r.get("skipped")]
                    pack = [r for name, _h, r in res.tasks() if name.endswith("Pack the system")]
                    checks = [r for name, _h, r in res.tasks()
                              if name.endswith("Compare the build's inputs and root with the last completed build")]
                    # The publish module's result (it has "image"), not the include of its task file.
                    published = [r for name, _h, r in res.tasks() if "Publish the image" in name
                                 and "image" in r]
                    r = dict(first=first_wall, first_cpu=first_cpu, rebuild=again_wall, rebuild_cpu=again_cpu,
                             parts_skipped=bool(checks and checks[0].get("unchanged")),
                             skip_reason=checks[0].get("reason", "") if checks else "no check",
                             published_nothing=bool(published) and str(published[0].get("msg", "")).startswith(
                                 "unchanged: "),
                             identical=first_sha == again_sha and first_path != again_path,
                             image_taken_over=bool(taken and taken[0].get("taken_over")),
                             packed=any(r.get("packed") for r in pack),
                             eix_skipped=skipped(res, "Install eix"),
                             depclean_skipped=skipped(res, "Remove what nothing needs any more (depclean)"),
                             load=(load0, loadavg()))
                    rounds.append(r)
                    print("round %d  first build %6.1f s (cpu %6.1f s)  rebuild %6.1f s (cpu %6.1f s)  "
                          "ratio %.2f (cpu %.2f)  same tarball %s  parts B-J skipped %s%s  image taken over %s  "
                          "packed again %s  published nothing new %s  load %.1f..%.1f"
                          % (n, first_wall, first_cpu, again_wall, again_cpu, again_wall / first_wall,
                             again_cpu / first_cpu, r["identical"], r["parts_skipped"],
                             "" if r["parts_skipped"] else " (%s)" % r["skip_reason"], r["image_taken_over"],
                             r["packed"], r["published_nothing"], r["load"][0], r["load"][1]), flush=True)
                    roles, slowest, count = where_time_goes(res)
                    r["rebuild_roles"], r["rebuild_slowest"] = roles, slowest
                    print("  where the rebuild's %.1f s went (%d tasks, wall seconds from each task's start "
                          "to its result):" % (again_wall, count))
                    for role, seconds in roles:
                        print("    %-34s %6.1f s" % (role, seconds))
                    print("  its slowest tasks:")
                    for seconds, name in slowest:
                        print("    %6.1f s  %s" % (seconds, name))
                finally:
                    env.wait_released()
                    shutil.rmtree(env.dir, ignore_errors=True)
    finally:
        subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True)
        shutil.rmtree(home, ignore_errors=True)
    med = {k: statistics.median(r[k] for r in rounds) for k in ("first", "first_cpu", "rebuild", "rebuild_cpu")}
    ratio, cpu_ratio = med["rebuild"] / med["first"], med["rebuild_cpu"] / med["first_cpu"]
    print("medians of %d round(s), %d cores: first build %.1f s (cpu %.1f s), rebuild with nothing changed "
          "%.1f s (cpu %.1f s)" % (len(rounds), os.cpu_count(), med["first"], med["first_cpu"], med["rebuild"],
                                   med["rebuild_cpu"]))
    print("rebuild / first build: %.2f (target <= 0.20);  cpu: %.2f" % (ratio, cpu_ratio))
    out = os.path.join(HERE, "results", "rebuild-%s.json" % time.strftime("%Y%m%dT%H%M%S"))
    os.makedirs(os.path.dirname(out), exist_ok=True)
    with open(out, "w") as f:
        json.dump(dict(rounds=rounds, medians=med, ratio=ratio, cpu_ratio=cpu_ratio), f, indent=1)
    print("written to %s" % out)
    return 0 if ratio <= 0.20 else 1


if __name__ == "__main__":
    sys.exit(main())
