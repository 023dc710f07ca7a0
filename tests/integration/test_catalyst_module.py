"""gse.stateless.catalyst through ansible-playbook, driving the catalyst test double end to end.

catalyst cannot run on the test machines (no Gentoo host, no chroot builds);
tests/doubles/catalyst stands in for its command line and storedir layout and
says in its header exactly what it simulates.
"""
import json
import os
import subprocess
import sys
import tarfile

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DOUBLE = os.path.join(ROOT, "tests", "doubles", "catalyst")


def run_module(tmp_path, args, check=False, env=None):
    """Run the module once in a playbook on localhost; return its registered result."""
    out = tmp_path / "result.json"
    if out.exists():
        out.unlink()
    play = [{
        "hosts": "localhost", "gather_facts": False,
        "tasks": [
            {"gse.stateless.catalyst": args, "register": "r", "ignore_errors": True,
             "check_mode": check},
            {"ansible.builtin.copy": {"content": "{{ r | to_json }}", "dest": str(out)},
             "check_mode": False},
        ],
    }]
    playbook = tmp_path / "play.yml"
    playbook.write_text(json.dumps(play))
    proc = subprocess.run(
        [os.path.join(os.path.dirname(sys.executable), "ansible-playbook"), "-i", "localhost,",
         "-c", "local", "-e", "ansible_python_interpreter=" + sys.executable, str(playbook)],
        cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, **(env or {})))
    assert out.exists(), proc.stdout + proc.stderr
    return json.loads(out.read_text())


@pytest.fixture
def build(tmp_path):
    storedir = tmp_path / "store"
    seed_root = tmp_path / "seedroot"
    (seed_root / "etc").mkdir(parents=True)
    (seed_root / "etc" / "os-release").write_text("NAME=seed\n")
    (seed_root / "bin").mkdir()
    (seed_root / "bin" / "sh").write_text("#!/bin/true\n")
    seeds = storedir / "builds" / "seeds"
    seeds.mkdir(parents=True)
    with tarfile.open(seeds / "stage3-amd64-seed.tar.xz", "w:xz") as tar:
        tar.add(seed_root, arcname=".")
    confdir = tmp_path / "portage"
    confdir.mkdir()
    args = {
        "catalyst": DOUBLE,
        "config_dir": str(tmp_path / "conf"),
        "storedir": str(storedir),
        "distdir": str(tmp_path / "distfiles"),
        "subarch": "amd64",
        "rel_type": "gse",
        "version_stamp": "t1",
        "profile": "default/linux/amd64/23.0",
        "snapshot_treeish": "0123abcd",
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
    assert (storedir / "snapshots" / "gentoo-0123abcd.sqfs").is_file()
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
    assert r["commands"][0][-2:] == ["-s", "0123abcd"]

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
