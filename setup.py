"""Build hooks of the gse distribution (the metadata is in pyproject.toml).

The wheel carries the gse.stateless collection as package data under
gse/collection/ansible_collections/gse/stateless, copied from this checkout
at build time, so that an installed ``gse`` finds its playbooks, roles,
config.d and dracut modules without the repository.  The version is
galaxy.yml's: the one place it is written.
"""
import os
import re
import shutil

from setuptools import setup
from setuptools.command.build_py import build_py

TOP = os.path.dirname(os.path.abspath(__file__))

# What the collection is made of (what an installed gse reads); tests, bench,
# packaging and the Python package itself stay out.
COLLECTION_PARTS = (
    "galaxy.yml", "README.md", "ansible.cfg", "meta", "plugins", "roles", "playbooks",
    "inventories", "config.d", "controller_dracut", "docs",
)
COLLECTION_DEST = os.path.join("gse", "collection", "ansible_collections", "gse", "stateless")


def galaxy_version():
    with open(os.path.join(TOP, "galaxy.yml"), encoding="utf-8") as f:
        match = re.search(r"^version:\s*['\"]?([^'\"\s]+)", f.read(), re.M)
    if not match:
        raise SystemExit("galaxy.yml has no version")
    return match.group(1)


class BuildWithCollection(build_py):
    """build_py, plus the collection copied into the built package."""

    def run(self):
        super().run()
        if getattr(self, "editable_mode", False):
            # An editable install runs from the checkout, which is the collection.
            return
        dest = os.path.join(self.build_lib, COLLECTION_DEST)
        shutil.rmtree(dest, ignore_errors=True)
        os.makedirs(dest)
        ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
        for part in COLLECTION_PARTS:
            src = os.path.join(TOP, part)
            if os.path.isdir(src):
                shutil.copytree(src, os.path.join(dest, part), ignore=ignore, symlinks=True)
            else:
                shutil.copy2(src, os.path.join(dest, part))


setup(version=galaxy_version(), cmdclass={"build_py": BuildWithCollection})
