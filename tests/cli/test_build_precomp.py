"""gse --base=precomp from the command line: the real build sequence on the fixture.

The configuration is the bundled default (inventories/demo) written as config.d
files, plus the fixture's mirror, keyring, repository and signing key.
Requested scripts run at a host hook (-gparta) and at a chroot hook (+gupdate).
"""
import importlib.machinery
import importlib.util
import os
import re
import subprocess

import pytest
from gse import layout

from conftest import GseEnv, mounts_under

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
pytestmark = [
    pytest.mark.skipif(not os.path.isfile(os.path.join(ROOT, "playbooks", "build.yml")),
                       reason="playbooks/build.yml (the build sequence) is not in this checkout yet"),
    pytest.mark.skipif(os.geteuid() != 0, reason="builds a chroot and mounts: root only"),
]


@pytest.fixture
def signing(gse_fixture, gse_signing_home):
    # The fixture plugin's private copy of the test key's GnuPG home.
    return gse_signing_home, gse_fixture.fingerprint


def _configd(env, fixture, url, signing):
    """The bundled default's config.d, as scripts/demo writes it (scripts/demo-configd)."""
    loader = importlib.machinery.SourceFileLoader("demo_configd", os.path.join(ROOT, "scripts", "demo-configd"))
    demo_configd = importlib.util.module_from_spec(importlib.util.spec_from_loader("demo_configd", loader))
    loader.exec_module(demo_configd)
    demo_configd.write(str(env.configd), dict(
        gse_cdistdir=str(env.cdist), gse_log_root=str(env.logs), gse_publish_dir=str(env.tmp / "publish"),
        gse_stage3_mirror=url, gse_stage3_keyring=fixture.keyring, gse_repos_dir=os.path.dirname(fixture.repo),
        gse_gnupghome=signing[0], gse_signing_key=signing[1], gse_min_free_mb=1,
        # The controller's health service is the controller build's
        # business (and tested there); this test is about the command.
        gse_client_health=False))


def test_precomp_build_from_the_command_line(tmp_path_factory, gse_fixture, fixture_http, signing):
    env = GseEnv(tmp_path_factory.mktemp("gse-cli-build", numbered=True))
    env.env.pop("GSE_PLAYBOOK_DIR")
    _configd(env, gse_fixture, fixture_http, signing)
    sdir = env.tmp / "scripts"
    sdir.mkdir()
    host_trace = env.tmp / "host-trace"
    (sdir / "onhost").write_text("echo \"onhost $(test -e %s && echo host)\" >> %s\n"
                                 % (sdir, host_trace))
    (sdir / "inchroot").write_text("test ! -e %s && echo 'inchroot chroot' >> /etc/gse-hook-test\n" % sdir)
    (sdir / "inchroot2").write_text("echo 'inchroot2 chroot' >> /etc/gse-hook-test\n")
    try:
        r = env.gse("--base=precomp", "-q", "--non-interactive", "--sdir=%s" % sdir,
                    "--do=onhost inchroot,inchroot2", "-g=-gparta,+gupdate", timeout=3600)
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
        parts = layout.hooks().PARTS
        lines = [re.sub(r" \(\d+:\d\d:\d\d\)$", "", line) for line in r.stdout.splitlines()]
        # Every sub-part of the default precomp build prints its line, in the table's order
        # (gcat is catalyst's, grebuild and the rest are off by default).
        printed = [line for line in lines if line.startswith("[")]
        expected = ["[%2d/%d] %s" % (i + 1, len(parts), sub.phase) for i, part in enumerate(parts)
                    for sub in part.subs]
        assert [line for line in expected if line in printed] == printed
        for line in ("[ 1/12] Extracting tarball", "[ 3/12] Updating Portage",
                     "[ 6/12] Emerging essential packages", "[11/12] Packing the tarball"):
            assert line in printed
        assert host_trace.read_text() == "onhost host\n"
        images = env.cdist / "images"
        [image] = os.listdir(images)
        tarball = images / image / "image.tar.zst"
        hook_file = subprocess.run(["tar", "--zstd", "-xOf", str(tarball), "./etc/gse-hook-test"],
                                   capture_output=True, text=True, check=True).stdout
        assert hook_file == "inchroot chroot\ninchroot2 chroot\n"
        assert mounts_under(env.tmp) == []
    finally:
        for target in sorted(mounts_under(env.tmp), reverse=True):
            subprocess.run(["umount", "-l", target], check=False)
