"""The version is written once, in galaxy.yml; the Python package and the wheel read it."""
import importlib.util
import os
import re

import yaml

import gse
from gse import layout

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def galaxy_version():
    with open(os.path.join(ROOT, "galaxy.yml"), encoding="utf-8") as f:
        return str(yaml.safe_load(f)["version"])


def test_package_version_is_galaxy_version():
    assert gse.__version__ == galaxy_version()


def test_setup_reads_galaxy_version():
    spec = importlib.util.spec_from_file_location("gse_setup_probe", os.path.join(ROOT, "setup.py"))
    text = open(spec.origin, encoding="utf-8").read()
    # Run only the reader, not setup(): the module's last line builds.
    namespace = {"__file__": spec.origin}
    exec(compile(text.rsplit("\nsetup(", 1)[0], spec.origin, "exec"), namespace)
    assert namespace["galaxy_version"]() == galaxy_version()


def test_no_second_version_literal():
    # pyproject.toml must take the version from setup.py (dynamic), not carry its own.
    with open(os.path.join(ROOT, "pyproject.toml"), encoding="utf-8") as f:
        text = f.read()
    assert not re.search(r'^version\s*=', text, re.M)
    assert re.search(r'^dynamic\s*=\s*\[\s*"version"\s*\]', text, re.M)
    with open(os.path.join(ROOT, "gse", "__init__.py"), encoding="utf-8") as f:
        assert not re.search(r"__version__\s*=\s*['\"]", f.read())


def test_checkout_collection_found(monkeypatch):
    monkeypatch.delenv("GSE_COLLECTION_ROOT", raising=False)
    layout.find_collection.cache_clear()
    try:
        assert layout.find_collection() == ROOT
    finally:
        layout.find_collection.cache_clear()
