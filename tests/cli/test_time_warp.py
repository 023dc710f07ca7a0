"""--time-warp as an exact replay: the state keeps the files the run read and the stage3 it used.

The stand-in playbook records what it reads: the --sdir scripts, the
--kernel/--initrd images and the inject-custom files, read through the paths
gse hands over, and the stage3 pin of part A.  Its part A "resolves" the
stage3 named by the switch gse_test_stage3 and writes $CLOCALLG/inputs.json
as the real seed.yml does; what it cannot show is a real download, which the
stage3 module's own tests cover.
"""
import os

import pexpect
import pytest
import yaml

from conftest import GSE
from gse import config, states
from gse.errors import UsageError


@pytest.fixture
def saved_run(gse_env):
    """A run saved as state 1 with a script, a kernel, an initrd, an inject file and a stage3."""
    tmp = gse_env.tmp
    sdir = tmp / "scripts"
    sdir.mkdir()
    files = {"script": sdir / "prepare", "kernel": tmp / "vmlinuz-6.6", "initrd": tmp / "initramfs-6.6",
             "inject": tmp / "motd", "stage3": tmp / "stage3-amd64-openrc-1.tar.xz"}
    for kind, path in files.items():
        path.write_text("%s-saved" % kind)
    gse_env.write_config("inject-custom", {"gse_inject_custom": [{"src": str(files["inject"]),
                                                                  "dest": "/etc/motd"}]})
    gse_env.switch({"gse_test_stage3": str(files["stage3"]), "gse_test_stage3_version": "20261125T170321Z"})
    r = gse_env.gse("--base=precomp", "-q", "--sdir=%s" % sdir, "--do=prepare", "-g=-gparte",
                    "--kernel=%s" % files["kernel"], "--initrd=%s" % files["initrd"], "--time-state=exact")
    assert r.returncode == 0, r.stderr
    return files


def _record(gse_env):
    return gse_env.records()[0]


def _state(gse_env):
    [(_, _, path)] = states.entries(str(gse_env.states))
    with open(path, encoding="utf-8") as f:
        return path, yaml.safe_load(f)


def test_the_state_keeps_the_files_by_digest_and_the_stage3_part_a_resolved(gse_env, saved_run):
    path, doc = _state(gse_env)
    assert doc["format"] == states.FORMAT
    kept = {e["kind"]: e for e in doc["files"]}
    assert set(kept) == {"script", "kernel", "initrd", "inject"}
    for kind, entry in kept.items():
        assert entry["path"] == str(saved_run[kind])
        copy = os.path.join(states.files_dir(path), entry["sha512"])
        with open(copy, encoding="utf-8") as f:
            assert f.read() == "%s-saved" % kind
    stage3 = doc["inputs"]["stage3"]
    assert stage3["path"] == str(saved_run["stage3"]) and stage3["version"] == "20261125T170321Z"


def test_a_replay_uses_the_kept_copies_and_the_recorded_stage3(gse_env, saved_run):
    for kind in ("script", "kernel", "initrd", "inject"):
        saved_run[kind].write_text("%s-changed" % kind)
    os.unlink(saved_run["kernel"])  # even gone: the state has its copy
    r = gse_env.gse("--time-warp=1", "-q")
    assert r.returncode == 0, r.stderr
    assert "not exact" not in r.stderr
    rec = _record(gse_env)
    assert rec["read_scripts"] == ["script-saved"]
    assert rec["read_kernel"] == ["kernel-saved"] and rec["read_initrd"] == ["initrd-saved"]
    assert rec["read_inject"] == ["inject-saved"]
    # Installed under their own names (part H copies to /boot/<basename>).
    assert os.path.basename(rec["gse_kernel_path"]) == "vmlinuz-6.6"
    assert rec["gse_stage3_pin"]["path"] == str(saved_run["stage3"])
    assert rec["gse_stage3_pin"]["version"] == "20261125T170321Z"
    # The copies were laid out for the run only.
    assert not os.path.exists(rec["gse_sdir"])


def test_a_damaged_copy_or_a_changed_stage3_is_refused_by_name(gse_env, saved_run):
    path, doc = _state(gse_env)
    script = next(e for e in doc["files"] if e["kind"] == "script")
    with open(os.path.join(states.files_dir(path), script["sha512"]), "w", encoding="utf-8") as f:
        f.write("tampered")
    kernel = next(e for e in doc["files"] if e["kind"] == "kernel")
    os.unlink(os.path.join(states.files_dir(path), kernel["sha512"]))
    saved_run["stage3"].write_text("a newer stage3")
    builds = gse_env.builds()
    r = gse_env.gse("--time-warp=1", "-q")
    assert r.returncode == 2
    assert "time state 1 (exact) cannot be replayed exactly" in r.stderr
    assert "--sdir script %s: the state's copy does not match the SHA-512 saved with it" % saved_run["script"] \
        in r.stderr
    assert "--kernel image %s: the state's copy is missing" % saved_run["kernel"] in r.stderr
    assert "the stage3 at %s is not the one the run used (version 20261125T170321Z)" % saved_run["stage3"] \
        in r.stderr
    assert "--time-warp-inexact" in r.stderr
    assert gse_env.builds() == builds  # refused before anything was created


def test_a_missing_stage3_is_refused_and_inexact_proceeds_with_warnings(gse_env, saved_run):
    path, doc = _state(gse_env)
    script = next(e for e in doc["files"] if e["kind"] == "script")
    os.unlink(os.path.join(states.files_dir(path), script["sha512"]))
    saved_run["script"].write_text("script-today")
    os.unlink(saved_run["stage3"])
    r = gse_env.gse("--time-warp=1", "-q")
    assert r.returncode == 2
    assert "the stage3 20261125T170321Z the run used is no longer available" in r.stderr

    saved_run["stage3"].write_text("the latest stage3")
    r = gse_env.gse("--time-warp=1", "-q", "--time-warp-inexact")
    assert r.returncode == 0, r.stderr
    assert "gse: warning: the replay is not exact: --sdir script %s: the state's copy is missing" \
        % saved_run["script"] in r.stderr
    assert "gse: warning: the replay is not exact: the stage3 at" in r.stderr
    rec = _record(gse_env)
    # What could not be restored is read as it is today; the rest still from the state.
    assert rec["read_scripts"] == ["script-today"] and rec["read_kernel"] == ["kernel-saved"]
    assert rec["gse_stage3_pin"] == {}


def test_inexact_goes_with_time_warp_only(gse_env):
    r = gse_env.gse("--base=precomp", "--time-warp-inexact")
    assert r.returncode == 2 and "--time-warp-inexact goes with --time-warp=N" in r.stderr


def test_a_state_of_the_older_format_is_read_and_refused_unless_inexact(gse_env):
    gse_env.states.mkdir(mode=0o700)
    # As gse before exact replays wrote it: no format, no kept files, no inputs.
    old = {"name": "old", "created": "2026-01-01T00:00:00+00:00", "gse_version": "0.1.0",
           "options": {"base": "precomp"}, "config": states.snapshot(config.load([str(gse_env.configd)]))}
    (gse_env.states / "0001-old.yml").write_text(yaml.safe_dump(old))
    r = gse_env.gse("--time-warp=1", "-q")
    assert r.returncode == 2
    assert "it was saved by an older gse (state format 1), which kept no copies" in r.stderr
    r = gse_env.gse("--time-warp=1", "-q", "--time-warp-inexact")
    assert r.returncode == 0, r.stderr
    assert _record(gse_env)["gse_base"] == "precomp"


def test_a_state_of_a_newer_format_is_refused(gse_env):
    gse_env.states.mkdir(mode=0o700)
    (gse_env.states / "0001-future.yml").write_text(yaml.safe_dump(
        {"format": 99, "name": "future", "options": {"base": "precomp"}, "config": []}))
    with pytest.raises(UsageError, match=r"saved by a newer gse \(format 99\); this gse reads formats 1 to 2"):
        states.load(str(gse_env.states), 1)


def test_deleting_a_state_removes_its_copies(gse_env, saved_run):
    path, _ = _state(gse_env)
    assert os.path.isdir(states.files_dir(path))
    r = gse_env.gse("--time-state=-1")
    assert r.returncode == 0, r.stderr
    assert not os.path.exists(states.files_dir(path)) and not os.path.exists(path)


def test_the_answers_are_saved_and_replayed(gse_env):
    child = pexpect.spawn(GSE, ["--base=catalyst", "-q", "--time-state=answered"], env=gse_env.env,
                          cwd=str(gse_env.tmp), encoding="utf-8", timeout=300, dimensions=(50, 200))
    try:
        for answer in ("n", "y", "y"):     # gker, ginitrd, gmark (catalyst: no part D question)
            child.expect(r"\[y/N\] ")
            child.sendline(answer)
        child.expect(r"Build \S+ finished")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    _, doc = _state(gse_env)
    assert doc["answers"] == {"gse_kernel_build": False, "gse_initramfs_build": True, "gse_mark_default": True}
    # Replayed without a terminal: the saved answers, not the defaults.
    r = gse_env.gse("--time-warp=1", "-q", "--time-warp-inexact")
    assert r.returncode == 0, r.stderr
    rec = _record(gse_env)
    assert (rec["gse_kernel_build"], rec["gse_initramfs_build"], rec["gse_mark_default"]) == (False, True, True)


def test_a_catalyst_snapshot_is_exact_by_its_commit(tmp_path):
    """A snapshot named by the verified commit is made again when gone; one named by a branch is not exact."""
    from gse import warp
    snap = tmp_path / "gentoo-x.sqfs"
    snap.write_text("snapshot")
    digest = warp.sha512(str(snap))
    commit = "3f1c0e8a9b" * 4

    def saved(treeish, path):
        inputs = {"snapshot": {"path": str(path), "treeish": treeish, "sha512": digest}}
        return states.Saved(1, "c", str(tmp_path / "0001-c.yml"), 2, {"base": "catalyst"},
                            config.Config(dirs=[]), inputs=inputs)

    assert warp.differences(saved(commit, snap)) == []
    assert warp.pins(saved(commit, snap)) == {"gse_catalyst_snapshot_treeish": commit}
    assert warp.differences(saved(commit, tmp_path / "gone.sqfs")) == []
    [branch] = warp.differences(saved("stable", snap))
    assert "snapshot of stable is not named by a commit" in branch
    snap.write_text("another tree")
    [changed] = warp.differences(saved(commit, snap))
    assert "is not the one the run used" in changed and "its SHA-512 differs" in changed
