"""gse.stateless.chroot: the exact command line, the clean environment, refusals."""
import os
from unittest import mock

import pytest
from ansible.errors import AnsibleError
from ansible.playbook.play_context import PlayContext
from ansible.plugins.loader import connection_loader


def make(root, **options):
    conn = connection_loader.get("gse.stateless.chroot", PlayContext(), None)
    conn.set_options(direct=dict({"remote_addr": str(root)}, **options))
    return conn


@pytest.fixture
def root(tmp_path):
    (tmp_path / "bin").mkdir()
    os.symlink("/bin/dash", tmp_path / "bin" / "sh")  # resolves only inside the chroot
    return tmp_path


def test_refuses_without_root(root):
    with mock.patch("os.geteuid", return_value=1000):
        with pytest.raises(AnsibleError, match="needs root"):
            make(root)._connect()


def test_refuses_a_directory_without_a_shell(tmp_path):
    with mock.patch("os.geteuid", return_value=0):
        with pytest.raises(AnsibleError, match="not a usable root"):
            make(tmp_path)._connect()


def test_refuses_slash():
    with mock.patch("os.geteuid", return_value=0):
        with pytest.raises(AnsibleError, match="refusing"):
            make("/")._connect()


def test_exec_runs_chroot_with_a_clean_environment(root, monkeypatch):
    monkeypatch.setenv("LD_PRELOAD", "/evil.so")
    monkeypatch.setenv("PYTHONPATH", "/host/site-packages")
    calls = []

    class P:
        returncode = 0

        def communicate(self, data=None):
            return b"out", b"err"

    def fake_popen(argv, **kw):
        calls.append((argv, kw))
        return P()

    with mock.patch("os.geteuid", return_value=0), \
            mock.patch("subprocess.Popen", fake_popen):
        conn = make(root, chroot_env={"FEATURES": "ccache"})
        conn._connect()
        rc, out, err = conn.exec_command("echo hi")
    argv, kw = calls[0]
    assert [a.decode() for a in argv][1:] == [str(root), "/bin/sh", "-c", "echo hi"]
    assert os.path.basename(argv[0].decode()) == "chroot"
    assert kw["env"] == {
        "PATH": "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "HOME": "/root", "TERM": "dumb", "LANG": "C.UTF-8", "SHELL": "/bin/bash", "FEATURES": "ccache",
    }
    assert (rc, out, err) == (0, b"out", b"err")


def test_put_file_copies_with_dd_inside_the_chroot(root, tmp_path_factory):
    src = tmp_path_factory.mktemp("src") / "f"
    src.write_bytes(b"data")
    cmds = []

    class P:
        returncode = 0

        def communicate(self, data=None):
            return b"", b""

    def fake_popen(argv, **kw):
        cmds.append(argv[-1].decode())
        return P()

    with mock.patch("os.geteuid", return_value=0), mock.patch("subprocess.Popen", fake_popen):
        conn = make(root)
        conn._connect()
        conn.put_file(str(src), "/etc/my file")
    assert cmds == ["dd of='/etc/my file' bs=65536 status=none"]
