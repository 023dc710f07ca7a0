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


def sudo_become(user="root"):
    from ansible.plugins.loader import become_loader
    plugin = become_loader.get("ansible.builtin.sudo")
    plugin.set_options(direct={"become_user": user})
    return plugin


def test_not_root_without_become_names_the_way_out(root):
    with mock.patch("os.geteuid", return_value=1000):
        conn = make(root)
        conn.set_become_plugin(None)
        with pytest.raises(AnsibleError, match="become root with sudo"):
            conn._connect()


def test_not_root_becomes_root_for_the_chroot_program_only(root):
    # The job of an AWX execution environment: uid 1000, become with sudo.
    calls = []

    class P:
        returncode = 0

        def communicate(self, data=None):
            return b"", b""

    def fake_popen(argv, **kw):
        calls.append([a.decode() for a in argv])
        return P()

    with mock.patch("os.geteuid", return_value=1000), mock.patch("subprocess.Popen", fake_popen):
        conn = make(root, chroot_env={"FEATURES": "ccache"})
        conn.set_become_plugin(sudo_become())
        assert conn.become is None  # Ansible must not wrap the command inside the chroot
        conn._connect()
        conn.exec_command("echo hi")
    argv = calls[0]
    assert argv[:5] == ["sudo", "-n", "--", "env", "-i"]
    i = next(n for n, a in enumerate(argv) if os.path.basename(a) == "chroot")
    # sudo resets the environment: the clean one is handed on by env -i, and nothing else.
    assert sorted(argv[5:i]) == sorted([
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "HOME=/root", "TERM=dumb",
        "LANG=C.UTF-8", "SHELL=/bin/bash", "FEATURES=ccache"])
    assert argv[i + 1:] == [str(root), "/bin/sh", "-c", "echo hi"]


def test_become_to_another_user_is_refused(root):
    with mock.patch("os.geteuid", return_value=1000):
        conn = make(root)
        conn.set_become_plugin(sudo_become("portage"))
        with pytest.raises(AnsibleError, match="become_user: root"):
            conn._connect()
