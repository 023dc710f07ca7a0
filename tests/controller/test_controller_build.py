"""gse.controller_build without dracut: the private dracutbasedir and the
exact dracut command."""
import os
import subprocess

import pytest

from gse import controller_build as cb


def test_dracutbasedir_mirrors_the_system_and_adds_the_gse_modules(tmp_path):
    system = tmp_path / "sys"
    (system / "modules.d" / "99base").mkdir(parents=True)
    (system / "dracut-functions.sh").write_text("")
    base = cb.make_dracutbasedir(cb.REPO_MODULES, str(tmp_path / "w"), str(system))
    assert os.readlink(os.path.join(base, "dracut-functions.sh")) == str(system / "dracut-functions.sh")
    assert os.readlink(os.path.join(base, "modules.d", "99base")) == str(system / "modules.d" / "99base")
    for m in ("90gse-base", "91gse-disk", "92gse-net", "93gse-health", "94gse-system"):
        target = os.readlink(os.path.join(base, "modules.d", m))
        assert os.path.isfile(os.path.join(target, "module-setup.sh"))


def test_build_runs_dracut_isolated_with_zstd_and_explicit_drivers(tmp_path, monkeypatch):
    seen = {}

    def fake_run(argv, env=None, capture_output=None, text=None):
        seen["argv"], seen["env"] = argv, env
        # What the initramfs would receive at /config.d.
        cfg = argv[argv.index("--include") + 1]
        seen["keyring"] = open(os.path.join(cfg, "keys", "gse.gpg")).read()
        open(argv[-1], "w").close()
        return subprocess.CompletedProcess(argv, 0, "", "")

    monkeypatch.setattr(cb.subprocess, "run", fake_run)
    kernel = tmp_path / "vmlinuz-x"
    kernel.write_text("kernel")
    keyring = tmp_path / "k.gpg"
    keyring.write_text("keys")
    res = cb.build(kver="6.1.0-x", kernel_image=str(kernel), output=str(tmp_path / "out"),
                   keyring=str(keyring), extra_drivers=["igb"])
    argv = seen["argv"]
    assert argv[:5] == ["dracut", "--conf", argv[2], "--confdir", argv[4]]
    assert os.path.basename(argv[2]) == "dracut.conf" and os.path.basename(argv[4]) == "dracut.conf.d"
    assert argv[5:12] == ["--force", "--quiet", "--no-hostonly", "--no-early-microcode", "--zstd",
                          "--reproducible", "--modules"]
    assert argv[12] == "bash udev-rules base gse-base gse-disk gse-net gse-health gse-system"
    assert argv[13:15] == ["--omit", "systemd systemd-initrd dracut-systemd network network-legacy plymouth"]
    assert argv[15] == "--drivers" and argv[16].split() == cb.DEFAULT_DRIVERS + ["igb"]
    assert argv[17] == "--include" and argv[19] == "/config.d"
    assert argv[20:] == ["--kver", "6.1.0-x", res["initramfs"]]
    assert seen["env"]["dracutbasedir"].endswith("/dracut")
    assert seen["keyring"] == "keys"
    assert open(res["kernel"]).read() == "kernel"


def test_build_refuses_a_controller_without_keyring(tmp_path):
    kernel = tmp_path / "vmlinuz"
    kernel.write_text("k")
    with pytest.raises(ValueError, match="no keyring"):
        cb.build(kver="x", kernel_image=str(kernel), output=str(tmp_path / "o"))


def test_installed_kernel_prefers_the_running_one_else_the_newest(tmp_path, monkeypatch):
    from gse import controller_build
    boot, mods = tmp_path / "boot", tmp_path / "modules"
    for k in ("6.1.0-9-amd64", "6.10.2-1-amd64", "6.2.0-1-amd64"):
        (boot / f"vmlinuz-{k}").parent.mkdir(exist_ok=True)
        (boot / f"vmlinuz-{k}").write_text("")
        (mods / k).mkdir(parents=True)
    (boot / "vmlinuz-7.0.0-no-modules").write_text("")

    class Uname:
        release = "6.18.0-not-installed"

    monkeypatch.setattr(controller_build.os, "uname", lambda: Uname)
    assert controller_build.installed_kernel(str(boot), str(mods)) == "6.10.2-1-amd64"
    Uname.release = "6.1.0-9-amd64"
    assert controller_build.installed_kernel(str(boot), str(mods)) == "6.1.0-9-amd64"
    with pytest.raises(ValueError, match="no installed kernel"):
        controller_build.installed_kernel(str(tmp_path / "none"), str(mods))
