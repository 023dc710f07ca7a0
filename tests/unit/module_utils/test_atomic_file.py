"""The one atomic writer: whole content or none, the mode asked, an existing file's mode kept on request."""
import os
import stat

import pytest

from ansible_collections.gse.stateless.plugins.module_utils import atomic_file, managed_file


def mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


def test_writes_the_mode_asked_whatever_the_umask(tmp_path):
    path = str(tmp_path / "f")
    old = os.umask(0o077)
    try:
        atomic_file.write_atomic(path, "a\n", 0o644)
    finally:
        os.umask(old)
    assert open(path).read() == "a\n" and mode(path) == 0o644
    assert os.listdir(tmp_path) == ["f"]


def test_keep_existing_keeps_mode_and_owner(tmp_path):
    path = str(tmp_path / "f")
    with open(path, "w") as fh:
        fh.write("old\n")
    os.chmod(path, 0o600)
    os.chown(path, 1234, 5678)
    atomic_file.write_atomic(path, "new\n", 0o644, keep_existing=True)
    st = os.stat(path)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid) == (0o600, 1234, 5678)
    atomic_file.write_atomic(path, "newer\n", 0o644)
    assert mode(path) == 0o644 and open(path).read() == "newer\n"


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = str(tmp_path / "f")
    atomic_file.write_atomic(path, "old\n")

    def broken(fd):
        raise OSError(5, "Input/output error")

    monkeypatch.setattr(atomic_file.os, "fsync", broken)
    with pytest.raises(OSError):
        atomic_file.write_atomic(path, "new\n")
    assert open(path).read() == "old\n"
    assert os.listdir(tmp_path) == ["f"]


class Module:
    check_mode = False


def test_managed_files_go_through_it(tmp_path):
    path = str(tmp_path / "locale.gen")
    assert managed_file.write(Module(), path, "en_US.UTF-8 UTF-8\n", 0o640) is True
    assert mode(path) == 0o640
    os.chmod(path, 0o600)
    assert managed_file.write(Module(), path, "en_US.UTF-8 UTF-8\n") is False
    assert managed_file.write(Module(), path, "de_DE.UTF-8 UTF-8\n") is True
    assert mode(path) == 0o600 and open(path).read() == "de_DE.UTF-8 UTF-8\n"
    assert sorted(os.listdir(tmp_path)) == ["locale.gen"]
