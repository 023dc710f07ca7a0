"""`pip install .` into a fresh virtual environment gives a working gse without the checkout.

The wheel carries the collection (setup.py copies it in) and the man pages
(data files).  pip fetches the dependencies from the machine's configured
package index, as a user's pip would.
"""
import glob
import os
import subprocess
import sys
import zipfile

import pytest

from tests.packaging.test_version import ROOT, galaxy_version

COLLECTION_IN_WHEEL = "gse/collection/ansible_collections/gse/stateless/"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    out = tmp_path_factory.mktemp("wheel")
    p = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(out), ROOT],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    wheels = glob.glob(os.path.join(out, "gse-*.whl"))
    assert len(wheels) == 1
    return wheels[0]


def test_wheel_carries_collection_and_man_pages(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    for part in ("galaxy.yml", "plugins/modules/emerge.py", "plugins/connection/chroot.py",
                 "roles/portage/tasks/main.yml", "playbooks/build.yml", "playbooks/controller.yml",
                 "config.d/system.yml", "controller_dracut/90gse-base/module-setup.sh",
                 "inventories/default/hosts.yml"):
        assert COLLECTION_IN_WHEEL + part in names, part
    assert any(n.endswith(".data/data/share/man/man1/gse.1") for n in names)
    assert any(n.endswith(".data/data/share/man/man5/gse.5") for n in names)
    # Only the collection: no tests, no bench, no packaging inside it.
    assert not [n for n in names if n.startswith(tuple(COLLECTION_IN_WHEEL + d for d in ("tests/", "bench/", "packaging/", "gse/")))]
    assert os.path.basename(wheel).startswith("gse-%s-" % galaxy_version())


@pytest.fixture(scope="module")
def venv(tmp_path_factory, wheel):
    d = tmp_path_factory.mktemp("venv") / "env"
    subprocess.run([sys.executable, "-m", "venv", str(d)], check=True)
    # `pip install .` exactly as the README says, from the checkout.
    p = subprocess.run([str(d / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "."],
                       cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout[-3000:] + p.stderr[-3000:]
    return d


def clean_env():
    # Nothing may point back into the checkout.
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("GSE_", "ANSIBLE_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = "/usr/bin:/bin"
    return env


def test_gse_version_without_checkout(venv, tmp_path):
    p = subprocess.run([str(venv / "bin" / "gse"), "--version"], cwd=tmp_path, env=clean_env(),
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert p.stdout.strip() == "gse %s" % galaxy_version()


def test_installed_gse_finds_shipped_collection(venv, tmp_path):
    code = "from gse import layout; print(layout.find_collection()); print(layout.collections_path())"
    p = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path, env=clean_env(),
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    root, cpath = p.stdout.split()
    assert root.startswith(str(venv)) and not root.startswith(ROOT + os.sep)
    assert os.path.isfile(os.path.join(cpath, "ansible_collections/gse/stateless/plugins/modules/emerge.py"))
    assert os.path.isdir(os.path.join(root, "controller_dracut", "93gse-health"))


def test_installed_collection_loads_in_ansible(venv, tmp_path):
    # The shipped copy is a real collection: ansible-doc of the venv lists its modules.
    cpath = subprocess.run([str(venv / "bin" / "python"), "-c", "from gse import layout; print(layout.collections_path())"],
                           env=clean_env(), capture_output=True, text=True, check=True).stdout.strip()
    env = dict(clean_env(), ANSIBLE_COLLECTIONS_PATH=cpath)
    p = subprocess.run([str(venv / "bin" / "ansible-doc"), "-t", "module", "-l", "gse.stateless"],
                       cwd=tmp_path, env=env, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "gse.stateless.emerge" in p.stdout and "gse.stateless.chroot_mounts" in p.stdout


@pytest.mark.parametrize("section", ["1", "5"])
def test_man_pages_render(venv, section):
    page = venv / "share" / "man" / ("man" + section) / ("gse." + section)
    assert page.is_file()
    p = subprocess.run(["man", "-l", str(page)], env=dict(clean_env(), MANPAGER="cat", MANWIDTH="80"),
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert "GSE" in p.stdout.upper() and "NAME" in p.stdout
