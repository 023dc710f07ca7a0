"""Time states: save, list, delete and warp, private to root, without clear-text secrets."""
import os
import stat

import pytest
import yaml
from passlib.hash import sha512_crypt

from gse import config, states
from gse.errors import UsageError

# What must be equal between a run and its warp (identity and paths of the run differ;
# the live log follows each run's -q, which is how it is shown, not what it builds).
PER_RUN = ("gse_build_id", "gse_configd_dirs", "mount_owner", "gse_live_log", "gse_stage3_pin")


def _same_run(rec):
    return {k: v for k, v in rec.items() if k not in PER_RUN}


def test_save_list_warp_delete_round_trip(gse_env):
    gse_env.write_config("etc", {"gse_hostname": "one"})
    gse_env.write_config("users", {"gse_users": [{"name": "lab", "password": "s3cret-pw"}]})
    # The stand-in's part A resolves this "stage3" (tests/cli/test_time_warp.py has the details).
    stage3 = gse_env.tmp / "stage3.tar.xz"
    stage3.write_text("stage3")
    gse_env.switch({"gse_test_stage3": str(stage3)})
    r = gse_env.gse("--base=precomp", "--build-minimal", "--enforce=gparte", "--time-state=first")
    assert r.returncode == 0, r.stderr
    assert "TASK [" in r.stdout and "PLAY RECAP" in r.stdout  # the default mode streams everything
    saved = gse_env.records()[0]
    assert saved["gse_test_marker"] == "one"

    [(number, name, path)] = states.entries(str(gse_env.states))
    assert (number, name) == (1, "first")
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(gse_env.states).st_mode) == 0o700
    with open(path, encoding="utf-8") as f:
        text = f.read()
    assert "s3cret-pw" not in text
    doc = yaml.safe_load(text)
    assert doc["options"] == {"base": "precomp", "build_minimal": True, "enforce": ["gparte"]}

    r = gse_env.gse("--time-state?")
    assert (r.returncode, r.stdout) == (0, "1:first\n")

    # The configuration changes; the warp still runs what was saved.
    gse_env.write_config("etc", {"gse_hostname": "two"})
    gse_env.write_config("users", {"gse_users": [{"name": "other", "password": "new"}]})
    r = gse_env.gse("--time-warp=1", "-q")
    assert r.returncode == 0, r.stderr
    warped = gse_env.records()[0]
    assert _same_run(warped) == dict(_same_run(saved), gse_users=warped["gse_users"])
    assert warped["gse_stage3_pin"]["path"] == str(stage3)
    [user] = warped["gse_users"]
    assert user["name"] == "lab" and "password" not in user
    assert sha512_crypt.verify("s3cret-pw", user["password_hash"])
    # The warp read the snapshot, written privately under its $CLOCALLG.
    [snap] = warped["gse_configd_dirs"]
    assert snap.startswith(gse_env.last_build()) and stat.S_IMODE(os.stat(snap).st_mode) == 0o700
    assert gse_env.ran(gse_env.builds()[0]) == gse_env.ran(gse_env.builds()[1])

    r = gse_env.gse("--time-state=-1")
    assert r.returncode == 0 and "deleted time state 1:first" in r.stdout
    assert gse_env.gse("--time-state?").stdout == ""
    assert gse_env.mounts() == []


def test_a_clear_secret_is_never_saved(gse_env):
    gse_env.write_config("publish", {"gse_signing_passphrase": "hunter2"})
    r = gse_env.gse("--base=precomp", "--time-state=leaky")
    assert r.returncode == 2
    # config.d holds no such setting: it is refused before a state could hold it.
    assert "unknown setting gse_signing_passphrase" in r.stderr and "hunter2" not in r.stderr
    assert gse_env.written() == []
    # A secret the schema does not know of is never stored either.
    from gse.secrets import scrub
    with pytest.raises(UsageError, match="publish.yml holds a clear-text secret"):
        scrub("publish.yml", {"gse_signing_passphrase": "hunter2"})


def test_numbering_follows_creation_and_survives_deletes(tmp_path):
    d = str(tmp_path / "states")
    cfg = config.Config(dirs=[])
    for name in ("first_state", "minimal", "test_build"):
        states.save(d, states.build_document(name, {"base": "precomp"}, cfg))
    assert states.listing(d) == "1:first_state\n2:minimal\n3:test_build\n"
    states.delete(d, 2)
    states.save(d, states.build_document("again", {"base": "catalyst"}, cfg))
    assert states.listing(d) == "1:first_state\n2:test_build\n3:again\n"
    assert states.load(d, 3).options == {"base": "catalyst"}
    with pytest.raises(UsageError, match="exists already"):
        states.save(d, states.build_document("again", {}, cfg))
