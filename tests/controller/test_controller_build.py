"""The one controller build, the controller role (playbooks/controller.yml, which
`gse --build-controller` runs), without dracut: the private dracutbasedir and
the exact dracut command.

Simulated: dracut itself.  A recording stand-in first in PATH takes its place,
so that the command line, the environment and the tree dracut would read can
be checked in seconds; test_controller_role.py checks the initramfs a real
dracut builds from the same role.
"""
import json
import os
import stat
import sys

import pytest
import yaml

from builds import KVER, ROOT, run_controller_playbook

from gse import controller, runner

FAKE_DRACUT = """#!%s
import json, os, sys
argv = sys.argv
base = os.environ["dracutbasedir"]
mods = os.path.join(base, "modules.d")
cfg = argv[argv.index("--include") + 1]
record = {
    "argv": argv,
    "links": {m: os.readlink(os.path.join(mods, m)) if os.path.islink(os.path.join(mods, m)) else "directory"
              for m in sorted(os.listdir(mods))},
    "functions": os.path.realpath(os.path.join(base, "dracut-functions.sh")),
    "conf": open(argv[argv.index("--conf") + 1]).read(),
    "confdir": os.listdir(argv[argv.index("--confdir") + 1]),
    "configd": sorted(os.path.relpath(os.path.join(d, f), cfg) for d, _, fs in os.walk(cfg) for f in fs),
    "keyring": open(os.path.join(cfg, "keys", "gse.gpg")).read(),
}
with open(os.environ["FAKE_DRACUT_LOG"], "w") as fh:
    json.dump(record, fh)
with open(argv[-1], "w") as fh:
    fh.write("initramfs")
os.chmod(argv[-1], 0o600)
"""


@pytest.fixture
def fake_dracut(tmp_path):
    if not KVER:
        pytest.skip("no installed kernel (/boot/vmlinuz-KVER with /lib/modules/KVER)")
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "dracut").write_text(FAKE_DRACUT % sys.executable)
    (bindir / "dracut").chmod(0o755)
    system = tmp_path / "sys"
    (system / "modules.d" / "99base").mkdir(parents=True)
    (system / "dracut-functions.sh").write_text("")
    kernel = tmp_path / "vmlinuz"
    kernel.write_text("kernel")
    keyring = tmp_path / "k.gpg"
    keyring.write_text("keys")
    log = tmp_path / "dracut.json"
    env = dict(os.environ, PATH="%s:%s" % (bindir, os.environ["PATH"]), FAKE_DRACUT_LOG=str(log))

    def build(output, *extra):
        args = ["-e", "gse_controller_dracutbasedir_system=%s" % system,
                "-e", "gse_controller_kernel_image=%s" % kernel] + list(extra)
        return run_controller_playbook(str(output), str(keyring), *args, env=env)

    return build, log, system


def test_role_runs_dracut_isolated_with_zstd_and_the_role_lists(tmp_path, fake_dracut):
    build, log, system = fake_dracut
    out = tmp_path / "out"
    res = build(out, "-e", json.dumps({"gse_controller_extra_drivers": ["igb"]}))
    assert res.returncode == 0, res.stdout[-3000:]
    rec = json.loads(log.read_text())
    argv = rec["argv"]
    with open(os.path.join(ROOT, "roles", "controller", "defaults", "main.yml"), encoding="utf-8") as fh:
        defaults = yaml.safe_load(fh)
    assert os.path.basename(argv[0]) == "dracut"
    assert argv[1:5] == ["--conf", argv[2], "--confdir", argv[4]]
    assert rec["conf"] == "" and rec["confdir"] == []   # the host's dracut configuration stays out
    assert argv[5:12] == ["--force", "--quiet", "--no-hostonly", "--no-early-microcode", "--zstd",
                          "--reproducible", "--modules"]
    assert argv[12].split() == defaults["gse_controller_dracut_modules"]
    assert argv[13:15] == ["--omit", "systemd systemd-initrd dracut-systemd network network-legacy plymouth"]
    assert argv[15] == "--drivers" and argv[16].split() == defaults["gse_controller_drivers"] + ["igb"]
    assert argv[17] == "--include" and argv[19] == "/config.d"
    # The modules of the kernel the controller runs: the build host's here (no image root).
    assert argv[20:23] == ["--kver", KVER, "--kmoddir"] and argv[24:] == [str(out / "initramfs.img")]
    assert os.path.realpath(argv[23]) == os.path.realpath("/lib/modules/" + KVER)
    # The private dracutbasedir: the system's dracut mirrored, the gse modules linked in.
    assert rec["functions"] == str(system / "dracut-functions.sh")
    for m in ("90gse-base", "91gse-disk", "92gse-net", "93gse-health", "94gse-system", "95gse-report", "96gse-commands"):
        assert rec["links"][m] == os.path.join(ROOT, "controller_dracut", m)
    assert rec["links"]["99base"] == "directory"   # cp -rs: directories real, files links
    # The controller config.d with the keyring where the controller reads it.
    assert rec["keyring"] == "keys" and "sources" in rec["configd"]
    assert (out / "vmlinuz").read_text() == "kernel"
    assert stat.S_IMODE(os.stat(out / "initramfs.img").st_mode) == 0o644


def test_role_refuses_a_controller_without_keyring(tmp_path, fake_dracut):
    build, log, _system = fake_dracut
    res = build(tmp_path / "out", "-e", "gse_controller_keyring=")
    assert res.returncode != 0
    assert "no keyring" in res.stdout
    assert not log.exists()


def test_gse_build_controller_runs_the_playbook(tmp_path, monkeypatch):
    calls = []

    class Result:
        status = "successful"

    def run(name, private, extravars, **kw):
        calls.append((name, extravars, kw))
        return Result()

    monkeypatch.setattr(runner, "run", run)
    assert controller.build(str(tmp_path), ["/etc/gse/config.d"], quiet=True) == 0
    assert calls == [("controller.yml", {"gse_controller_modules_dir": str(tmp_path),
                                         "gse_configd_dirs": ["/etc/gse/config.d"]},
                      {"quiet": True, "verbose": False})]
    Result.status = "failed"
    with pytest.raises(Exception, match="the controller build failed"):
        controller.build(str(tmp_path), [])
