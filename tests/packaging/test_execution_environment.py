"""`ansible-builder create` makes the execution environment's build context.

Building the image itself needs podman or docker, which these machines do
not have: the test stops at the context, and runs the one step of the image
build that needs no container (installing the collection from the context
the way the Containerfile's galaxy stage does).
"""
import json
import os
import re
import subprocess
import sys

import pytest
import yaml

from tests.packaging.test_version import ROOT, galaxy_version

BIN = os.path.dirname(sys.executable)


@pytest.fixture(scope="module")
def context(tmp_path_factory):
    out = tmp_path_factory.mktemp("ee") / "context"
    p = subprocess.run([os.path.join(BIN, "ansible-builder"), "create", "-c", str(out),
                        "-f", os.path.join(ROOT, "execution-environment.yml")],
                       cwd=ROOT, capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    return out


def containerfile(context):
    for name in ("Containerfile", "Dockerfile"):
        if (context / name).is_file():
            return (context / name).read_text()
    raise AssertionError("no Containerfile in %s" % context)


def test_context_has_the_dependency_files(context):
    build = context / "_build"
    assert (build / "requirements.txt").read_text() == open(os.path.join(ROOT, "requirements.txt")).read()
    assert (build / "bindep.txt").read_text() == open(os.path.join(ROOT, "bindep.txt")).read()
    assert (build / "gse_stateless" / "plugins" / "modules" / "emerge.py").is_file()
    assert (build / "gse_stateless" / "config.d" / "system.yml").is_file()
    text = containerfile(context)
    assert re.search(r"^FROM \$EE_BASE_IMAGE", text, re.M)
    assert "ansible-galaxy collection install" in text
    assert "ansible-core>=2.19,<2.22" in text


def test_galaxy_stage_installs_the_collection(context, tmp_path):
    # What the Containerfile runs in /build, run here in the context's _build.
    cfg = tmp_path / "empty.cfg"
    cfg.write_text("")
    dest = tmp_path / "collections"
    env = dict(os.environ, ANSIBLE_CONFIG=str(cfg), ANSIBLE_COLLECTIONS_PATH=str(dest))
    p = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "-r", "requirements.yml",
                        "--collections-path", str(dest)], cwd=context / "_build", env=env,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    manifest = json.loads((dest / "ansible_collections/gse/stateless/MANIFEST.json").read_text())
    assert manifest["collection_info"]["version"] == galaxy_version()
    assert (dest / "ansible_collections/gse/stateless/playbooks/build.yml").is_file()


def test_python_requirements_follow_pyproject():
    # The runtime dependencies of pyproject.toml, less the two execution-environment.yml names itself.
    import tomllib
    with open(os.path.join(ROOT, "pyproject.toml"), "rb") as f:
        deps = tomllib.load(f)["project"]["dependencies"]
    with open(os.path.join(ROOT, "requirements.txt"), encoding="utf-8") as f:
        reqs = [l.strip() for l in f if l.strip() and not l.startswith("#")]
    wanted = [d for d in deps if not d.startswith(("ansible-core", "ansible-runner"))]
    # paramiko is for remote build hosts over SSH, which AWX jobs use too.
    assert sorted(reqs) == sorted(wanted)
    with open(os.path.join(ROOT, "execution-environment.yml"), encoding="utf-8") as f:
        ee = yaml.safe_load(f)
    core = [d for d in deps if d.startswith("ansible-core")][0]
    assert ee["dependencies"]["ansible_core"]["package_pip"] == core


def test_base_image_names_no_registry_host():
    with open(os.path.join(ROOT, "execution-environment.yml"), encoding="utf-8") as f:
        name = yaml.safe_load(f)["images"]["base_image"]["name"]
    first = name.split("/", 1)[0]
    # A short name: the first component is not a host (no dot, no port, not localhost).
    assert "/" not in name or not ("." in first or ":" in first or first == "localhost")
