"""The controller built by playbooks/controller.yml (the session's build):
its content, and that the role does not rebuild unchanged inputs."""
import os
import re
import subprocess

from builds import run_controller_playbook


def lsinitrd(img):
    return subprocess.run(["lsinitrd", img], capture_output=True, check=True).stdout.decode(errors="replace")


def test_initramfs_holds_the_hooks_in_order_and_the_config(controller):
    listing = lsinitrd(controller["initrd"])
    hooks = re.findall(r"usr/lib/dracut/hooks/([a-z-]+/\d\d-gse-[a-z-]+\.sh)", listing)
    assert hooks == [
        "cmdline/01-gse-export-config.sh", "cmdline/02-gse-cmdline.sh",
        "mount/50-gse-mount-root.sh",
        "pre-mount/05-gse-state.sh", "pre-mount/10-gse-network-check.sh",
        "pre-mount/20-gse-fetch-config.sh", "pre-mount/25-gse-commands.sh", "pre-mount/30-gse-disk.sh",
        "pre-mount/40-gse-version-check.sh", "pre-mount/45-gse-boot.sh", "pre-mount/50-gse-health.sh",
        "pre-pivot/50-gse-apply-config.sh", "pre-pivot/55-gse-runlevels.sh",
        "pre-pivot/70-gse-report.sh", "pre-pivot/75-gse-boot-bless.sh", "pre-pivot/80-gse-cleanup.sh",
        "pre-pivot/85-gse-reboot.sh", "pre-pivot/90-gse-etc-misc.sh",
    ]
    for f in ("config.d/sources", "config.d/labels", "config.d/tmpfs", "config.d/disk",
              "config.d/network", "config.d/report", "config.d/boot", "config.d/keys/gse.gpg",
              "usr/lib/gse/gse-boot-lib.sh", "usr/lib/gse/gse-report-lib.sh", "usr/lib/gse/busybox", "usr/lib/gse/gse-verify-lib.sh",
              "usr/lib/gse/gse-chunk-gate",
              "usr/bin/casync", "usr/lib/casync/protocols/casync-http", "usr/lib/casync/protocols/casync-https"):
        # (casync-https is a symlink: "name -> target")
        assert re.search(rf" {re.escape(f)}( -> \S+)?$", listing, re.M), f
    assert "systemd-udevd" in listing  # udev comes from udev-rules
    # Readable by a TFTP/HTTP server for network boot.
    assert os.stat(controller["initrd"]).st_mode & 0o777 == 0o644
    assert not re.search(r"usr/lib/systemd/system/.*initrd", listing)


def test_role_does_not_rebuild_unchanged_inputs(controller):
    res = run_controller_playbook(controller["dir"], controller["keyring"])
    assert res.returncode == 0, res.stdout[-2000:]
    assert re.search(r"localhost\s+: ok=\d+\s+changed=0 ", res.stdout), res.stdout[-2000:]


def test_role_refuses_a_missing_kernel(controller, tmp_path):
    res = run_controller_playbook(str(tmp_path / "o"), controller["keyring"],
                                  "-e", "gse_controller_kernel_image=/nonexistent/vmlinuz")
    assert res.returncode != 0
    assert "missing: /nonexistent/vmlinuz" in res.stdout


def test_role_chooses_an_installed_kernel_when_none_is_given(controller):
    """Without gse_controller_kver the role takes the running kernel when it is
    installed, else the newest installed one: here the session's controller
    was built for that kernel, so nothing is rebuilt."""
    import pytest
    from builds import KVER
    from builds import installed_kernel
    if installed_kernel() != KVER:
        pytest.skip(f"the role would choose {installed_kernel()}, the session's controller is for {KVER}")
    res = run_controller_playbook(controller["dir"], controller["keyring"], "-e", "gse_controller_kver=")
    assert res.returncode == 0, res.stdout[-2000:]
    assert re.search(r"localhost\s+: ok=\d+\s+changed=0 ", res.stdout), res.stdout[-2000:]


def test_a_host_without_a_c_compiler_gets_a_controller_that_checks_chunks_in_the_shell(controller, tmp_path):
    """gse-chunk-gate cannot be built (CC names a compiler that fails): the
    controller is built all the same, without the gate, and the build says
    that the shell checks the chunks."""
    env = dict(os.environ, CC="/bin/false")
    res = run_controller_playbook(str(tmp_path / "o"), controller["keyring"], env=env)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    # (The callback folds long lines and doubles quotes.)
    said = " ".join(res.stdout.split()).replace("''", "'")
    assert "gse-net: gse-chunk-gate not built (/bin/false failed with status 1): the tarball's chunks are " \
        "checked by the shell's dd, openssl and cat" in said, res.stdout[-3000:]
    listing = lsinitrd(str(tmp_path / "o" / "initramfs.img"))
    assert "usr/lib/gse/gse-ranges-lib.sh" in listing
    assert "gse-chunk-gate" not in listing
