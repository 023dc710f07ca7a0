"""image_entries: the exact tar argv, and paths resolved through the image's own symlinks.

The resolution tests list real tarballs made here with GNU tar (the layout of a
merged-/usr Gentoo root, links that dangle, loop, climb above the root, names
with spaces and quotes); the argv and failure tests replace ``run_command``
with a recorder, which cannot show what tar prints, the real runs do.
"""
import json
import os
import subprocess

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gse.stateless.plugins.modules import image_entries


def run_module(capsys, args, check=False):
    if check:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args), pytest.raises(SystemExit):
        image_entries.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def image(tmp_path):
    """A merged-/usr root packed as part K packs it (numeric owners, zstd)."""
    root = tmp_path / "root"
    for d in ("usr/bin", "usr/lib", "etc", "var/empty", "opt/a b"):
        (root / d).mkdir(parents=True)
    (root / "usr/bin/init").write_text("init\n")
    (root / "usr/lib/os-release").write_text("NAME=Gentoo\n")
    (root / 'opt/a b/say "hi"').write_text("x\n")
    os.symlink("usr/bin", root / "sbin")
    os.symlink("../usr/lib/os-release", root / "etc/os-release")
    os.symlink("/usr/lib", root / "etc/abs")
    os.symlink("../../../../../usr/bin/init", root / "etc/climb")
    os.symlink("nowhere", root / "etc/dangling")
    os.symlink("loop-b", root / "etc/loop-a")
    os.symlink("loop-a", root / "etc/loop-b")
    os.link(root / "usr/bin/init", root / "usr/bin/init-hard")
    tarball = tmp_path / "image.tar.zst"
    subprocess.run(f"tar -C {root} --numeric-owner -cf - . | zstd -q -o {tarball}", shell=True, check=True)
    return tarball


def test_argv_is_exactly_one_listing(capsys, monkeypatch, tmp_path):
    seen = []

    def fake(self, args, **kw):
        seen.append((args, kw.get("environ_update")))
        return 0, 'drwxr-xr-x 0/0 0 2026-11-30 11:47 "./"\n-rw-r--r-- 0/0 5 2026-11-30 11:47 "./a"\n', ""

    monkeypatch.setattr(basic.AnsibleModule, "run_command", fake)
    res = run_module(capsys, dict(tarball="/i/image.tar.zst", entries=["/a"]))
    assert seen == [(["tar", "--list", "--verbose", "--numeric-owner", "--quoting-style=c", "--file",
                      "/i/image.tar.zst"], {"LC_ALL": "C"})]
    assert res["entries"] == {"/a": "a"} and not res["changed"] and res["missing"] == []


def test_paths_resolve_through_the_images_own_links(capsys, image):
    res = run_module(capsys, dict(tarball=str(image), entries=[
        "/sbin/init", "etc/os-release", "./etc/abs/os-release", "/etc/climb", "/usr/bin/init-hard",
        '/opt/a b/say "hi"', "/var/empty", "/"]))
    assert not res.get("failed"), res
    assert res["entries"] == {
        "/sbin/init": "usr/bin/init", "etc/os-release": "usr/lib/os-release",
        "./etc/abs/os-release": "usr/lib/os-release", "/etc/climb": "usr/bin/init",
        "/usr/bin/init-hard": "usr/bin/init-hard", '/opt/a b/say "hi"': 'opt/a b/say "hi"',
        "/var/empty": "var/empty", "/": "."}


@pytest.mark.parametrize("entry, why", [
    ("/etc/dangling", "/etc/nowhere is not in the image"),
    ("/sbin/halt", "/usr/bin/halt is not in the image"),
    ("/etc/loop-a", "more than 40 symbolic links (a loop?) at /etc/loop"),
    ("/etc/os-release/x", "/usr/lib/os-release is not a directory"),
])
def test_a_missing_path_fails_naming_where_its_lookup_ended(capsys, image, entry, why):
    res = run_module(capsys, dict(tarball=str(image), entries=["/sbin/init", entry]))
    assert res["failed"] and res["entries"]["/sbin/init"] == "usr/bin/init" and res["entries"][entry] is None
    assert len(res["missing"]) == 1 and res["missing"][0].startswith(entry + ": " + why), res["missing"]
    assert why in res["msg"]


def test_check_mode_reads_as_well(capsys, image):
    res = run_module(capsys, dict(tarball=str(image), entries=["/sbin/init"]), check=True)
    assert res["entries"] == {"/sbin/init": "usr/bin/init"} and not res["changed"]


def test_a_file_tar_cannot_list_fails_with_tars_words(capsys, tmp_path):
    bad = tmp_path / "image.tar.zst"
    bad.write_bytes(b"not a tarball" * 100)
    res = run_module(capsys, dict(tarball=str(bad), entries=["/sbin/init"]))
    assert res["failed"] and res["rc"] != 0 and res["cmd"][:2] == ["tar", "--list"] and res["stderr"]
