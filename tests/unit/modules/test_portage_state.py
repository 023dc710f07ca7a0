"""portage_state: what changes the digest of Portage's state and what does not (a real tree, portageq stood in)."""
import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gse.stateless.plugins.module_utils import portage_repos
from ansible_collections.gse.stateless.plugins.modules import portage_state


@pytest.fixture
def root(tmp_path, monkeypatch):
    r = tmp_path / "root"
    for d in ("var/db/pkg/app-misc/hello-1", "var/lib/portage", "etc/portage/package.use", "repo/metadata",
              "repo/app-misc/hello"):
        (r / d).mkdir(parents=True)
    (r / "var/db/pkg/app-misc/hello-1/COUNTER").write_text("7\n")
    (r / "var/lib/portage/world").write_text("app-misc/hello\n")
    (r / "etc/portage/make.conf").write_text('USE="X"\n')
    (r / "etc/portage/make.profile").symlink_to("../../repo/profiles/lab")
    (r / "repo/app-misc/hello/hello-1.ebuild").write_text("EAPI=8\n")
    monkeypatch.setattr(portage_repos, "repo_locations", lambda module, root: {"lab": str(r / "repo")})
    return r


def digest(capsys, r):
    with patch_module_args(dict(root=str(r))), pytest.raises(SystemExit):
        portage_state.main()
    out = json.loads(capsys.readouterr().out)
    assert out["changed"] is False and out["repositories"] == ["lab"] and out["packages"] >= 1
    return out["digest"]


def test_same_state_same_digest(capsys, root):
    before = digest(capsys, root)
    (root / "etc/portage/make.conf").write_text('USE="X"\n')  # written again, same content
    (root / "tmp").mkdir()
    assert digest(capsys, root) == before


@pytest.mark.parametrize("change", ["merge", "remerge", "world", "config", "profile", "repo", "sync_mark"])
def test_changes(capsys, root, change):
    before = digest(capsys, root)
    if change == "merge":
        (root / "var/db/pkg/app-misc/eix-1").mkdir()
        (root / "var/db/pkg/app-misc/eix-1/COUNTER").write_text("8\n")
    elif change == "remerge":
        (root / "var/db/pkg/app-misc/hello-1/COUNTER").write_text("9\n")
    elif change == "world":
        (root / "var/lib/portage/world").write_text("app-misc/hello\napp-portage/eix\n")
    elif change == "config":
        (root / "etc/portage/package.use/lab").write_text("app-misc/hello -X\n")
    elif change == "profile":
        os.unlink(root / "etc/portage/make.profile")
        (root / "etc/portage/make.profile").symlink_to("../../repo/profiles/other")
    elif change == "repo":  # a tree without a sync mark: its files count
        (root / "repo/app-misc/hello/hello-2.ebuild").write_text("EAPI=8\n")
    else:
        (root / "repo/metadata/timestamp.chk").write_text("Mon, 30 Nov 2026 00:00:00 +0000\n")
    assert digest(capsys, root) != before
