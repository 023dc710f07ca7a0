"""app-admin/gse's src_install, run by real Portage in the fixture's stage3.

`ebuild gse-<ver>.ebuild clean install` unpacks the release tarball that
scripts/gentoo-distfile packs (verified against its Manifest) and installs into the
image directory, with the USE flags given; the test reads the image.  The
fixture is Debian underneath: GNU tar is `tar` there, while Portage's unpack
calls `gtar`, which Gentoo's app-arch/tar provides; the test adds that one
link to its own copy of the root.  Portage warns that the overlay's master
(the Gentoo repository) is not there; the ebuild inherits nothing from it.
"""
import os
import shutil
import subprocess
import sys

import pytest

from tests.fixture.mounts import chroot_mounts, in_chroot
from tests.packaging.test_version import ROOT, galaxy_version

OVERLAY = os.path.join(ROOT, "packaging", "gentoo")
COLLECTION = "usr/share/ansible/collections/ansible_collections/gse/stateless"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="chroot and mounts: root only")


def install(root, repo, use):
    """Run the ebuild's phases up to install with USE; return the image directory."""
    in_chroot(root, ["rm", "-rf", "/var/tmp/portage/app-admin"])
    p = in_chroot(root, ["env", "USE=%s" % use, "ebuild",
                         "/var/db/repos/gse/app-admin/gse/gse-%s.ebuild" % galaxy_version(), "clean", "install"],
                  check=False)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return os.path.join(root, "var/tmp/portage/app-admin/gse-%s/image" % galaxy_version())


@pytest.fixture
def prepared_root(stage3_root, gse_fixture):
    os.symlink("tar", os.path.join(stage3_root, "usr/bin/gtar"))
    overlay = os.path.join(stage3_root, "var/db/repos/gse")
    shutil.copytree(OVERLAY, overlay)
    distdir = os.path.join(stage3_root, "var/cache/distfiles")
    os.makedirs(distdir, exist_ok=True)
    subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "gentoo-distfile"), distdir,
                    "--manifest", os.path.join(overlay, "app-admin/gse/Manifest")], check=True, capture_output=True)
    with chroot_mounts(stage3_root, gse_fixture.repo):
        yield stage3_root, gse_fixture.repo


def man_page(image, section):
    for name in ("gse.%s" % section, "gse.%s.bz2" % section):
        if os.path.isfile(os.path.join(image, "usr/share/man/man%s" % section, name)):
            return name
    return None


def test_install_puts_everything_where_the_docs_say(prepared_root):
    root, repo = prepared_root
    image = install(root, repo, "distcc -ccache")
    with open(os.path.join(image, "usr/lib64/gse/features"), encoding="utf-8") as fh:
        assert fh.read().split() == ["distcc"]
    assert os.access(os.path.join(image, "usr/bin/gse"), os.X_OK)
    assert os.path.isfile(os.path.join(image, "usr/lib/gse/python/gse/cli.py"))
    assert man_page(image, "1") and man_page(image, "5")
    for rel in ("galaxy.yml", "plugins/module_utils/hooks.py", "playbooks/build.yml", "roles/common/defaults/main.yml",
                "controller_dracut/config.d/sources"):
        assert os.path.isfile(os.path.join(image, COLLECTION, rel)), rel
    for cat in os.listdir(os.path.join(ROOT, "config.d")):
        assert os.path.isfile(os.path.join(image, "usr/lib64/gse/config.d", cat)), cat
    # The dracut modules keep their modes (the hooks dracut runs are executable).
    source = os.path.join(ROOT, "controller_dracut")
    modules = [m for m in sorted(os.listdir(source)) if m[:2].isdigit()]
    assert modules
    for module in modules:
        for name in os.listdir(os.path.join(source, module)):
            mode = os.stat(os.path.join(source, module, name)).st_mode & 0o111
            for where in ("usr/lib/dracut/modules.d", COLLECTION + "/controller_dracut"):
                installed = os.path.join(image, where, module, name)
                assert os.stat(installed).st_mode & 0o111 == mode, installed
    assert os.path.isdir(os.path.join(image, "etc/gse/config.d"))
    # man 1 gse's example path of --build-controller names the collection's modules.
    link = os.path.join(image, "usr/lib64/gse/config.d/controller/modules")
    assert os.path.islink(link) and not os.readlink(link).startswith("/")
    assert os.path.realpath(link) == os.path.realpath(os.path.join(image, COLLECTION, "controller_dracut"))

    # The installed package finds the installed collection: gse --version from the image's paths.
    env = dict(os.environ, PYTHONPATH=os.path.join(image, "usr/lib/gse/python"),
               GSE_COLLECTION_ROOT=os.path.join(image, COLLECTION))
    p = subprocess.run([sys.executable, "-c", "import sys; sys.argv[0] = 'gse'; from gse.cli import main; "
                        "sys.exit(main(['--version']))"], env=env, capture_output=True, text=True, cwd="/")
    assert p.returncode == 0, p.stderr
    assert galaxy_version() in p.stdout + p.stderr
    assert subprocess.run(["sh", "-n", os.path.join(image, "usr/bin/gse")]).returncode == 0


def test_without_use_flags_the_features_file_is_empty(prepared_root):
    root, repo = prepared_root
    image = install(root, repo, "-distcc -ccache")
    with open(os.path.join(image, "usr/lib64/gse/features"), encoding="utf-8") as fh:
        assert fh.read().split() == []
    image = install(root, repo, "ccache -distcc")
    with open(os.path.join(image, "usr/lib64/gse/features"), encoding="utf-8") as fh:
        assert fh.read().split() == ["ccache"]
