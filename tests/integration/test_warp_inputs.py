"""Part A's record for --time-warp (roles/fundamentals/tasks/seed.yml), on the fixture's mirror.

Only the gseed sub-part runs: it fetches and verifies the fixture's stage3,
writes $CLOCALLG/inputs.json (what gse keeps in the time state), and, given
the pin a replay hands over (gse_stage3_pin), takes that stage3 instead of
fetching the latest.
"""
import hashlib
import json
import os
import shutil

import pytest

from tests.integration.buildrun import ROOT
from tests.integration import gitrepo
from tests.integration.test_build import drop_env, make_env

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds chroot and mount: root only")


def _inputs(env, build_id):
    with open(os.path.join(env.logs, build_id, "inputs.json"), encoding="utf-8") as f:
        return json.load(f)


def test_part_a_records_the_stage3_and_a_replay_pins_it(gse_fixture, fixture_http, signing):
    env = make_env(gse_fixture, fixture_http, signing)
    try:
        # Only the build host: without an extracted system the chroot's plays have nothing to run on.
        rc, res = env.run("--limit", "buildhost", tags=["gseed"], extra={"gse_build_id": "first"})
        assert rc == 0, res.failed()
        fetched = res.ran("Fetch and verify the latest stage3")[0]
        stage3 = _inputs(env, "first")["stage3"]
        assert stage3["path"] == fetched["path"] and stage3["sha512"] == fetched["sha512"]
        assert stage3["version"] == fetched["date"] and stage3["name"] == fetched["name"]

        rc, res = env.run("--limit", "buildhost", tags=["gseed"],
                          extra={"gse_build_id": "replay", "gse_stage3_pin": stage3})
        assert rc == 0, res.failed()
        assert res.ran("Fetch and verify the latest stage3") == []
        assert res.ran("Use the stage3 of the replayed run")
        assert _inputs(env, "replay")["stage3"] == stage3
    finally:
        drop_env(env)


def test_part_a_records_catalysts_snapshot(gse_fixture, fixture_http, signing):
    env = make_env(gse_fixture, fixture_http, signing)
    try:
        # The ebuild repository, a signed commit, as tests/integration/test_build.py serves it.
        upstream = os.path.join(env.dir, "upstream")
        shutil.copytree(gse_fixture.repo, upstream)
        home, fingerprint = signing
        commit = gitrepo.commit(upstream, {"metadata/timestamp.chk": "Mon, 30 Nov 2026 00:00:00 +0000\n"},
                                home, fingerprint)
        rc, res = env.run("--limit", "buildhost", tags=["gseed"], extra={
            "gse_build_id": "catalyst", "gse_base": "catalyst",
            "gse_catalyst_executable": os.path.join(ROOT, "tests/doubles/catalyst"),
            "gse_catalyst_repo_url": "file://" + upstream, "gse_catalyst_repo_keyring": gse_fixture.keyring,
            "gse_distfiles_dir": os.path.join(env.cdist, "distfiles")})
        assert rc == 0, res.failed()
        made = res.ran("Create the Portage snapshot catalyst builds from")[0]["snapshot"]["path"]
        snapshot = _inputs(env, "catalyst")["snapshot"]
        # The treeish as part A resolved it: the verified commit, not the branch.
        assert snapshot["path"] == made and snapshot["treeish"] == commit
        with open(made, "rb") as f:
            assert snapshot["sha512"] == hashlib.sha512(f.read()).hexdigest()
        # catalyst had no seed: the fetched stage3 is recorded too.
        assert _inputs(env, "catalyst")["stage3"]["path"].startswith(os.path.join(env.cdist, "downloads"))
    finally:
        drop_env(env)
