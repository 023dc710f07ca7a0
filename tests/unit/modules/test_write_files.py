"""write_files: several files in one call, each written only when it differs; modes; check mode."""
import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gse.stateless.plugins.modules import write_files


def run_module(capsys, files, check=False):
    args = {"files": files}
    if check:
        args["_ansible_check_mode"] = True
    with patch_module_args(args), pytest.raises(SystemExit):
        write_files.main()
    return json.loads(capsys.readouterr().out)


def files_in(root):
    return [{"path": str(root / "profiles/repo_name"), "content": "gse\n"},
            {"path": str(root / "profiles/gse/eapi"), "content": "8\n"},
            {"path": str(root / "etc/x.conf"), "content": "[gse]\n", "mode": "0600"}]


def test_writes_creates_directories_and_is_idempotent(capsys, tmp_path):
    files = files_in(tmp_path)
    first = run_module(capsys, files)
    assert first["changed"] and first["changed_files"] == [f["path"] for f in files]
    assert (tmp_path / "profiles/gse/eapi").read_text() == "8\n"
    assert oct(os.stat(tmp_path / "etc/x.conf").st_mode & 0o7777) == "0o600"
    assert oct(os.stat(tmp_path / "profiles/repo_name").st_mode & 0o7777) == "0o644"
    assert oct(os.stat(tmp_path / "profiles/gse").st_mode & 0o7777) == "0o755"
    again = run_module(capsys, files)
    assert not again["changed"] and again["changed_files"] == []


def test_only_the_differing_file_is_written(capsys, tmp_path):
    files = files_in(tmp_path)
    run_module(capsys, files)
    before = os.stat(tmp_path / "profiles/repo_name").st_ino
    (tmp_path / "profiles/gse/eapi").write_text("7\n")
    os.chmod(tmp_path / "etc/x.conf", 0o644)
    result = run_module(capsys, files)
    assert result["changed_files"] == [files[1]["path"], files[2]["path"]]
    assert (tmp_path / "profiles/gse/eapi").read_text() == "8\n"
    assert oct(os.stat(tmp_path / "etc/x.conf").st_mode & 0o7777) == "0o600"
    assert os.stat(tmp_path / "profiles/repo_name").st_ino == before


def test_check_mode_reports_and_touches_nothing(capsys, tmp_path):
    files = files_in(tmp_path)
    result = run_module(capsys, files, check=True)
    assert result["changed"] and len(result["changed_files"]) == 3
    assert not (tmp_path / "profiles").exists()


def test_refuses_a_directory_or_symlink_in_a_files_place(capsys, tmp_path):
    (tmp_path / "profiles/repo_name").mkdir(parents=True)
    result = run_module(capsys, files_in(tmp_path)[:1])
    assert result["failed"] and "not a regular file" in result["msg"]
    os.rmdir(tmp_path / "profiles/repo_name")
    os.symlink("/etc/passwd", tmp_path / "profiles/repo_name")
    result = run_module(capsys, files_in(tmp_path)[:1])
    assert result["failed"] and "not a regular file" in result["msg"]
