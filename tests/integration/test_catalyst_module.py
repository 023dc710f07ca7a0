"""gse.stateless.catalyst through ansible-playbook, driving the catalyst test double end to end.

catalyst cannot run on the test machines (no Gentoo host, no chroot builds);
tests/doubles/catalyst stands in for its command line and storedir layout and
says in its header exactly what it simulates.
"""
import os
import subprocess
import tarfile

import pytest

from tests.integration import gitrepo, modrun

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOUBLE = os.path.join(ROOT, "tests", "doubles", "catalyst")
# The seed's installed packages, in the order emerge (the double) lists them.
SEED_PACKAGES = ["app-misc/lab-tools-1.0", "sys-apps/baselayout-2.14-r2"]


def run_module(tmp_path, args, check=False, env=None):
    """Run the module once in a playbook on localhost; return its registered result."""
    return modrun.run_module(tmp_path, "gse.stateless.catalyst", args, check=check, env=env)


@pytest.fixture
def build(tmp_path):
    storedir = tmp_path / "store"
    seed_root = tmp_path / "seedroot"
    (seed_root / "etc").mkdir(parents=True)
    (seed_root / "etc" / "os-release").write_text("NAME=seed\n")
    (seed_root / "bin").mkdir()
    (seed_root / "bin" / "sh").write_text("#!/bin/true\n")
    # What the double's stages "emerge" (see its header).
    for cpv in SEED_PACKAGES:
        (seed_root / "var" / "db" / "pkg" / cpv).mkdir(parents=True)
    seeds = storedir / "builds" / "seeds"
    seeds.mkdir(parents=True)
    with tarfile.open(seeds / "stage3-amd64-seed.tar.xz", "w:xz") as tar:
        tar.add(seed_root, arcname=".")
    confdir = tmp_path / "portage"
    confdir.mkdir()
    # The repository catalyst's snapshot is made from (unsigned here: the
    # catalyst module does not verify; gse.stateless.catalyst_repo does).
    upstream = str(tmp_path / "upstream")
    commit = gitrepo.commit(upstream, gitrepo.ebuild_repo_files(profile="default/linux/amd64/23.0"))
    subprocess.run(["git", "clone", "--quiet", "--bare", upstream, str(storedir / "repos" / "gentoo.git")],
                   check=True)
    args = {
        "catalyst": DOUBLE,
        "config_dir": str(tmp_path / "conf"),
        "storedir": str(storedir),
        "distdir": str(tmp_path / "distfiles"),
        "subarch": "amd64",
        "rel_type": "gse",
        "version_stamp": "t1",
        "profile": "default/linux/amd64/23.0",
        "snapshot_treeish": commit,
        "seed": "seeds/stage3-amd64-seed",
        "portage_confdir": str(confdir),
        "update_seed": True,
        "update_seed_command": "--update --deep @world",
        "compression_mode": "xz",
        "jobs": 2,
        "load_average": 2.5,
    }
    return tmp_path, storedir, args


def members(path):
    with tarfile.open(path) as tar:
        return {m.name.lstrip("./"): m for m in tar.getmembers()}, tar


def marker(path):
    with tarfile.open(path) as tar:
        return tar.extractfile("./etc/catalyst-double-stage").read().decode().splitlines()


def test_end_to_end_then_idempotent(build):
    tmp_path, storedir, args = build
    r = run_module(tmp_path, args)
    assert not r.get("failed"), r
    assert r["changed"] is True
    assert r["snapshot"]["made"] is True
    snapshot = storedir / "snapshots" / ("gentoo-%s.sqfs" % args["snapshot_treeish"])
    # A real squashfs image of the repository at that commit (git archive | tar2sqfs).
    assert subprocess.run(["rdsquashfs", "-c", "profiles/repo_name", str(snapshot)],
                          capture_output=True, text=True, check=True).stdout == "gentoo\n"
    assert [s["reason"] for s in r["stages"]] == ["missing", "missing", "missing"]
    paths = [storedir / "builds" / "gse" / ("stage%d-amd64-t1.tar.xz" % n) for n in (1, 2, 3)]
    assert [p["path"] for p in r["products"]] == [str(p) for p in paths]
    for product, path in zip(r["products"], paths):
        assert path.is_file()
        assert product["size"] == path.stat().st_size
        assert len(product["sha512"]) == 128
    # stage3 carries the seed's files and one marker line per stage, chained.
    lines = marker(paths[2])
    assert [line.split()[0] for line in lines] == ["target=stage1", "target=stage2", "target=stage3"]
    assert "source=seeds/stage3-amd64-seed" in lines[0]
    assert "source=gse/stage2-amd64-t1" in lines[2]
    with tarfile.open(paths[2]) as tar:
        assert tar.extractfile("./etc/os-release").read() == b"NAME=seed\n"
    conf = (tmp_path / "conf" / "catalyst.conf").read_text()
    assert 'options = ["autoresume", "bindist", "kerncache", "pkgcache", "seedcache"]' in conf
    assert "load-average = 2.5" in conf
    stage1 = (tmp_path / "conf" / "stage1.spec").read_text()
    assert "update_seed: yes\n" in stage1
    assert "update_seed" not in (tmp_path / "conf" / "stage2.spec").read_text()
    assert r["commands"][0][-2:] == ["-s", args["snapshot_treeish"]]

    again = run_module(tmp_path, args)
    assert not again.get("failed"), again
    assert again["changed"] is False
    assert again["commands"] == []
    assert [s["built"] for s in again["stages"]] == [False, False, False]
    assert [p["sha512"] for p in again["products"]] == [p["sha512"] for p in r["products"]]


def test_check_mode_reports_stages_without_building(build):
    tmp_path, storedir, args = build
    r = run_module(tmp_path, args, check=True)
    assert not r.get("failed"), r
    assert r["changed"] is True
    assert [s["target"] for s in r["stages"] if s["built"]] == ["stage1", "stage2", "stage3"]
    assert r["commands"] == []
    assert not (storedir / "builds" / "gse").exists()
    assert not (tmp_path / "conf" / "catalyst.conf").exists()


def test_force_rebuilds_with_purge(build):
    tmp_path, storedir, args = build
    assert not run_module(tmp_path, args).get("failed")
    product = storedir / "builds" / "gse" / "stage3-amd64-t1.tar.xz"
    before = product.stat().st_mtime_ns
    r = run_module(tmp_path, dict(args, force=True))
    assert not r.get("failed"), r
    assert r["changed"] is True
    assert r["snapshot"]["made"] is False
    assert [s["reason"] for s in r["stages"]] == ["forced"] * 3
    assert all("-p" in c for c in r["commands"])
    assert product.stat().st_mtime_ns != before


def test_later_stages_rebuild_when_a_spec_changes(build):
    tmp_path, storedir, args = build
    assert not run_module(tmp_path, args).get("failed")
    r = run_module(tmp_path, dict(args, stage_extra={"stage2": {"chost": "x86_64-gse-linux-gnu"}}))
    assert not r.get("failed"), r
    assert [s["reason"] for s in r["stages"]] == [None, "spec changed", "seed rebuilt"]
    assert [c[-1] for c in r["commands"]] == [r["specs"]["stage2"], r["specs"]["stage3"]]


def test_failing_stage_returns_log_and_resumes(build):
    tmp_path, storedir, args = build
    r = run_module(tmp_path, args, env={"CATALYST_DOUBLE_FAIL": "stage2"})
    assert r.get("failed") is True
    assert r["failed_target"] == "stage2"
    assert r["rc"] == 2
    assert r["log"] == str(tmp_path / "conf" / "log" / "stage2.log")
    assert any("emerge failed" in line for line in r["log_tail"])
    assert r["cmd"][-2:] == ["-f", str(tmp_path / "conf" / "stage2.spec")]
    assert (storedir / "builds" / "gse" / "stage1-amd64-t1.tar.xz").is_file()
    assert not (storedir / "builds" / "gse" / "stage2-amd64-t1.tar.xz").exists()

    r = run_module(tmp_path, args)
    assert not r.get("failed"), r
    assert [s["built"] for s in r["stages"]] == [False, True, True]
    log = (tmp_path / "conf" / "log" / "stage2.log").read_text()
    assert "Resume point detected" in log


def test_missing_seed_is_refused(build):
    tmp_path, storedir, args = build
    r = run_module(tmp_path, dict(args, seed="seeds/none"))
    assert r.get("failed") is True
    assert "seeds/none not found" in r["msg"]
    assert not (storedir / "builds" / "gse").exists()


def test_snapshot_of_a_treeish_the_repository_lacks_fails(build):
    tmp_path, storedir, args = build
    r = run_module(tmp_path, dict(args, snapshot_treeish="0" * 40))
    assert r.get("failed") is True and r["failed_target"] == "snapshot"
    assert not list((storedir / "snapshots").glob("*.sqfs"))
    assert not (storedir / "builds" / "gse").exists()


def emerged(log):
    """(binary, built) package names a stage log reports, in emerge's words."""
    binary, built = [], []
    for line in log.splitlines():
        if ">>> Emerging binary (" in line:
            binary.append(line.split(") ", 1)[1].split("::")[0])
        elif ">>> Emerging (" in line:
            built.append(line.split(") ", 1)[1].split("::")[0])
    return binary, built


def test_pkgcache_named_in_the_specs_and_reused_by_the_next_build(build):
    # The double honours pkgcache as catalyst 4 does (its header): the cache
    # is the spec's pkgcache_path, emerge gets --usepkg --buildpkg only when
    # update_seed is off, and a package cached by one build is installed as
    # a binary by the next.  What it cannot show: real binary packages, USE
    # and dependency checks (binpkg-respect-use), the bind mount into the
    # chroot at target_pkgdir.
    tmp_path, storedir, args = build
    cache = tmp_path / "pkgcache"
    args = dict(args, pkgcache_dir=str(cache))
    r = run_module(tmp_path, args)
    assert not r.get("failed"), r
    assert 'options = ["autoresume", "bindist", "kerncache", "pkgcache", "seedcache"]' in \
        (tmp_path / "conf" / "catalyst.conf").read_text()
    for stage in r["stages"]:
        path = str(cache / "gse" / ("%s-amd64" % stage["target"]))
        assert stage["pkgcache"] == path
        assert "pkgcache_path: %s\n" % path in open(stage["spec"]).read()
    logs = tmp_path / "conf" / "log"
    for target in ("stage1", "stage2", "stage3"):
        assert emerged((logs / ("%s.log" % target)).read_text()) == \
            ([], SEED_PACKAGES)
    assert (cache / "gse" / "stage3-amd64" / "app-misc" / "lab-tools" / "lab-tools-1.0-1.gpkg.tar").is_file()

    # The next build (another version_stamp) takes the packages from the cache,
    # except in stage1: with update_seed set catalyst does not pass --usepkg.
    r = run_module(tmp_path, dict(args, version_stamp="t2"))
    assert not r.get("failed"), r
    assert [s["reason"] for s in r["stages"]] == ["missing"] * 3
    assert emerged((logs / "stage1.log").read_text())[0] == []
    for target in ("stage2", "stage3"):
        assert emerged((logs / ("%s.log" % target)).read_text()) == \
            (SEED_PACKAGES, [])

    # --enforce=gcat purges: catalyst's -p empties the caches it rebuilds.
    r = run_module(tmp_path, dict(args, version_stamp="t2", force=True, stages=["stage3"],
                                  seed="gse/stage2-amd64-t2"))
    assert not r.get("failed"), r
    assert emerged((logs / "stage3.log").read_text())[0] == []
