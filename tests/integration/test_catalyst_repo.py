"""gse.stateless.catalyst_repo: the git repository of catalyst's snapshot, fetched and verified.

Real git and gpg throughout: the repository is served over file:// and its
commits are signed with the fixture's test release key (standing in for
Gentoo's repository signing key), or with a second, unknown key, or not at
all.  A refused fetch must leave the destination exactly as it was.
"""
import os
import subprocess

import pytest

from tests.fixture.signing import SigningKey
from tests.integration import gitrepo
from tests.integration.modrun import run_module

MODULE = "gse.stateless.catalyst_repo"


def tree_state(path):
    """Every file under ``path`` with its content: what "nothing changed on disk" compares."""
    state = {}
    if not os.path.exists(path):
        return None
    for top, _dirs, files in os.walk(path):
        for name in files:
            full = os.path.join(top, name)
            with open(full, "rb") as f:
                state[os.path.relpath(full, path)] = f.read()
    return state


@pytest.fixture
def forger(tmp_path):
    """A GnuPG home with a key the keyring does not hold."""
    home = str(tmp_path / "forger")
    key = SigningKey(home)
    key.generate()
    yield home, key.fingerprint
    key.stop_agent()


def test_signed_commit_fetched_verified_and_reported(tmp_path, gse_fixture, signing):
    home, fpr = signing
    upstream = str(tmp_path / "upstream")
    first = gitrepo.commit(upstream, gitrepo.ebuild_repo_files(), home, fpr)
    dest = tmp_path / "store" / "repos" / "gentoo.git"
    args = {"url": "file://" + upstream, "ref": "stable", "dest": str(dest), "keyring": gse_fixture.keyring}

    r = run_module(tmp_path, MODULE, args)
    assert not r.get("failed"), r
    assert r["changed"] is True and r["previous"] is None
    assert r["commit"] == first and r["object_type"] == "commit" and r["signer"] == fpr
    # catalyst's `git -C <dest> archive <commit>` reads it.
    listing = subprocess.run(["git", "-C", str(dest), "archive", "--format=tar", first],
                             capture_output=True, check=True).stdout
    assert b"profiles/repo_name" in listing
    assert gitrepo.git(str(dest), "rev-parse", "HEAD") == first

    again = run_module(tmp_path, MODULE, args)
    assert not again.get("failed"), again
    assert again["changed"] is False and again["commit"] == first

    second = gitrepo.commit(upstream, {"profiles/updates": "x\n"}, home, fpr)
    r = run_module(tmp_path, MODULE, args)
    assert r["changed"] is True and r["previous"] == first and r["commit"] == second

    # A full commit id fetches exactly that tree again (a time state's replay).
    back = run_module(tmp_path, MODULE, dict(args, ref=first))
    assert not back.get("failed"), back
    assert back["commit"] == first and back["previous"] == second
    r = run_module(tmp_path, MODULE, args)
    assert r["commit"] == second

    # Without a URL the existing repository's ref is verified in place: the
    # branch name resolves to what was verified under that name.
    for ref in ("HEAD", "stable"):
        local = run_module(tmp_path, MODULE, dict(args, url="", ref=ref))
        assert not local.get("failed"), local
        assert local["commit"] == second and local["changed"] is False and local["fetched"] is False


def test_signed_tag_is_verified(tmp_path, gse_fixture, signing):
    home, fpr = signing
    upstream = str(tmp_path / "upstream")
    commit = gitrepo.commit(upstream, gitrepo.ebuild_repo_files(), tag="v1", gnupghome=home, key=fpr)
    r = run_module(tmp_path, MODULE, {"url": "file://" + upstream, "ref": "refs/tags/v1",
                                      "dest": str(tmp_path / "gentoo.git"), "keyring": gse_fixture.keyring})
    assert not r.get("failed"), r
    assert r["object_type"] == "tag" and r["commit"] == commit and r["object"] != commit


@pytest.mark.parametrize("who", ["unsigned", "forged"])
def test_unsigned_or_foreign_commit_refused_and_dest_untouched(tmp_path, gse_fixture, signing, forger, who):
    home, fpr = signing
    upstream = str(tmp_path / "upstream")
    good = gitrepo.commit(upstream, gitrepo.ebuild_repo_files(), home, fpr)
    dest = tmp_path / "gentoo.git"
    args = {"url": "file://" + upstream, "ref": "stable", "dest": str(dest), "keyring": gse_fixture.keyring}
    assert not run_module(tmp_path, MODULE, args).get("failed")
    before = tree_state(str(dest))

    # The upstream moves on with a commit that is not signed by the keyring's key.
    bad_home, bad_key = forger if who == "forged" else (None, None)
    bad = gitrepo.commit(upstream, {"profiles/evil": "x\n"}, bad_home, bad_key)
    r = run_module(tmp_path, MODULE, args)
    assert r.get("failed") is True, r
    assert bad in r["msg"] and "no good signature" in r["msg"]
    assert r["cmd"][-3:-1] == ["verify-commit", "--raw"]
    assert tree_state(str(dest)) == before
    assert gitrepo.git(str(dest), "rev-parse", "HEAD") == good
    # No quarantine left beside it.
    assert sorted(os.listdir(tmp_path)) == sorted(n for n in os.listdir(tmp_path) if not n.startswith(".fetch-"))

    # From nothing, a refused fetch creates nothing.
    fresh = tmp_path / "fresh" / "gentoo.git"
    r = run_module(tmp_path, MODULE, dict(args, dest=str(fresh)))
    assert r.get("failed") is True
    assert not fresh.exists()


def test_missing_repository_without_url_is_refused(tmp_path, gse_fixture):
    r = run_module(tmp_path, MODULE, {"dest": str(tmp_path / "none.git"), "keyring": gse_fixture.keyring})
    assert r.get("failed") is True and "no repository" in r["msg"]
