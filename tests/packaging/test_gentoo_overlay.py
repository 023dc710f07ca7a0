"""packaging/gentoo: the app-admin/gse overlay passes `pkgcheck scan`.

The overlay's master is the Gentoo repository, which is not on these
machines.  pkgcheck resolves the overlay's dependencies, licence and profile
through its master, so the test gives it a stand-in master: a repository
named gentoo holding a profile, the licence and one empty ebuild for each
package the ebuild depends on (nothing of it is scanned; it only answers
"this package exists").  The overlay itself is scanned as committed, plus the
Manifest that scripts/gentoo-distfile writes for the release tarball.
"""
import os
import re
import shutil
import subprocess
import sys

import pytest

from tests.packaging.test_version import ROOT, galaxy_version

OVERLAY = os.path.join(ROOT, "packaging", "gentoo")
EBUILD_DIR = os.path.join(OVERLAY, "app-admin", "gse")
# Warnings accepted, with the reason.
ACCEPTED = {
    # The ebuild installs gse's modules in a private directory and runs the
    # system python3, without python-single-r1: the Gentoo repository's
    # eclasses are not available here to inherit and check against.
    "MissingPythonEclass",
}


def ebuild_path():
    return os.path.join(EBUILD_DIR, "gse-%s.ebuild" % galaxy_version())


def dependencies(ebuild):
    text = open(ebuild, encoding="utf-8").read()
    rdepend = re.search(r'^RDEPEND="(.*?)"', text, re.M | re.S).group(1)
    return re.findall(r"[<>=~]*([a-z0-9-]+/[a-zA-Z0-9_+-]+?)-[0-9][^\s]*|([a-z0-9-]+/[a-zA-Z0-9_+-]+)", rdepend)


def write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def stand_in_master(where, packages):
    write(os.path.join(where, "profiles", "repo_name"), "gentoo\n")
    write(os.path.join(where, "metadata", "layout.conf"),
          "masters =\nthin-manifests = true\nsign-manifests = false\ncache-formats =\nprofile-formats = portage-2\n")
    write(os.path.join(where, "profiles", "arch.list"), "amd64\n")
    write(os.path.join(where, "profiles", "profiles.desc"), "amd64 default/linux/amd64 stable\n")
    profile = os.path.join(where, "profiles", "default", "linux", "amd64")
    write(os.path.join(profile, "eapi"), "8\n")
    write(os.path.join(profile, "make.defaults"),
          'ARCH="amd64"\nACCEPT_KEYWORDS="amd64"\nCHOST="x86_64-pc-linux-gnu"\nELIBC="glibc"\nKERNEL="linux"\n')
    write(os.path.join(where, "licenses", "GPL-3+"), "GNU General Public License v3 or later\n")
    for cp in packages:
        cat, pkg = cp.split("/")
        write(os.path.join(where, cat, pkg, "%s-99.ebuild" % pkg),
              'EAPI=8\nDESCRIPTION="stand-in"\nHOMEPAGE="https://example.invalid"\nLICENSE="GPL-3+"\n'
              'SLOT="0"\nKEYWORDS="amd64"\n')
    write(os.path.join(where, "profiles", "categories"),
          "".join(sorted({cp.split("/")[0] + "\n" for cp in packages})))
    return profile


@pytest.fixture(scope="module")
def scanned(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("gentoo")
    packages = sorted({a or b for a, b in dependencies(ebuild_path())})
    profile = stand_in_master(str(tmp / "gentoo"), packages)
    overlay = tmp / "gse"
    shutil.copytree(OVERLAY, overlay, ignore=shutil.ignore_patterns("Manifest"))
    distdir = tmp / "distfiles"
    distdir.mkdir()
    p = subprocess.run([sys.executable, os.path.join(ROOT, "scripts", "gentoo-distfile"), str(distdir),
                        "--manifest", str(overlay / "app-admin" / "gse" / "Manifest")],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    config = tmp / "portage"
    write(str(config / "repos.conf" / "repos.conf"),
          "[DEFAULT]\nmain-repo = gentoo\n\n[gentoo]\nlocation = %s\n\n[gse]\nlocation = %s\n" % (tmp / "gentoo", overlay))
    os.symlink(profile, config / "make.profile")
    from pkgcheck import scan
    results = list(scan([str(overlay)], base_args=["--config", str(config)]))
    return {"results": results, "distdir": distdir, "overlay": overlay, "packages": packages}


def test_pkgcheck_scan_passes(scanned):
    found = ["%s %s: %s" % (r.level, type(r).__name__, r.desc) for r in scanned["results"]
             if type(r).__name__ not in ACCEPTED]
    assert found == []


def test_stand_in_master_answers_for_every_dependency(scanned):
    assert "app-admin/ansible-core" in scanned["packages"] and "sys-kernel/dracut" in scanned["packages"]
    names = {type(r).__name__ for r in scanned["results"]}
    assert not names & {"NonexistentDeps", "UnknownLicense", "MissingManifest"}


def test_ebuild_version_is_galaxys():
    assert os.path.isfile(ebuild_path()), "the ebuild's version must be galaxy.yml's"
    assert [f for f in os.listdir(EBUILD_DIR) if f.endswith(".ebuild")] == [os.path.basename(ebuild_path())]


def test_use_flags_are_the_concept_documents():
    text = open(ebuild_path(), encoding="utf-8").read()
    assert re.search(r'^IUSE="distcc ccache"$', text, re.M)
    meta = open(os.path.join(EBUILD_DIR, "metadata.xml"), encoding="utf-8").read()
    assert '<flag name="distcc">' in meta and '<flag name="ccache">' in meta


def test_release_tarball_holds_what_the_ebuild_installs(scanned):
    name = "gse-%s" % galaxy_version()
    listing = subprocess.run(["tar", "-tzf", str(scanned["distdir"] / (name + ".tar.gz"))],
                             capture_output=True, text=True, check=True).stdout.split()
    for path in ("gse/cli.py", "gse/features.py", "man/gse.1", "man/gse.5", "galaxy.yml", "config.d/distcc.yml",
                 "controller_dracut/90gse-base/module-setup.sh", "plugins/module_utils/hooks.py",
                 "playbooks/build.yml"):
        assert "%s/%s" % (name, path) in listing, path
