"""`ansible-galaxy collection build`, installed into a temporary path, documents every plugin."""
import glob
import json
import os
import subprocess
import sys
import tarfile

import pytest
import yaml

from tests.packaging.test_version import ROOT, galaxy_version

BIN = os.path.dirname(sys.executable)
# Plugin types whose files ansible-doc documents (action plugins share their module's page).
DOC_TYPES = {"modules": "module", "connection": "connection", "filter": "filter"}


def isolated_env(collections):
    """Ansible seeing only ``collections`` (an empty ansible.cfg; not the checkout's)."""
    cfg = os.path.join(os.path.dirname(str(collections)), "empty-ansible.cfg")
    open(cfg, "a").close()
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections), ANSIBLE_CONFIG=cfg, ANSIBLE_NOCOLOR="1")
    env.pop("ANSIBLE_COLLECTIONS_PATHS", None)
    return env


def plugin_names(root):
    """(type, fully qualified name) of every documented plugin under root/plugins."""
    out = []
    for directory, kind in DOC_TYPES.items():
        for path in sorted(glob.glob(os.path.join(root, "plugins", directory, "*.py"))):
            name = os.path.basename(path)[:-3]
            if name == "__init__":
                continue
            if kind == "filter":
                # A filter file may hold several filters; its FilterModule names them.
                names = filters_of(path)
            else:
                names = [name]
            out += [(kind, "gse.stateless." + n) for n in names]
    return out


def filters_of(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    namespace = {}
    exec(compile(text, path, "exec"), namespace)
    return sorted(namespace["FilterModule"]().filters())


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    out = tmp_path_factory.mktemp("galaxy")
    p = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "build", "--output-path", str(out), ROOT],
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    tarball = out / ("gse-stateless-%s.tar.gz" % galaxy_version())
    assert tarball.is_file(), os.listdir(out)
    dest = out / "collections"
    # Away from the checkout: otherwise galaxy sees it "already installed" and does nothing.
    env = isolated_env(dest)
    p = subprocess.run([os.path.join(BIN, "ansible-galaxy"), "collection", "install", "--offline",
                        "-p", str(dest), str(tarball)], capture_output=True, text=True, env=env, cwd=str(out))
    assert p.returncode == 0, p.stdout + p.stderr
    return tarball, dest


def test_tarball_leaves_out_development_files(installed):
    tarball, _ = installed
    names = tarfile.open(tarball).getnames()
    assert "MANIFEST.json" in names and "plugins/modules/emerge.py" in names
    for unwanted in (".venv", ".git", "gse", "packaging", "setup.py"):
        assert not [n for n in names if n == unwanted or n.startswith(unwanted + "/")], unwanted


def test_installed_manifest(installed):
    _, dest = installed
    with open(dest / "ansible_collections/gse/stateless/MANIFEST.json", encoding="utf-8") as f:
        info = json.load(f)["collection_info"]
    assert (info["namespace"], info["name"], info["version"]) == ("gse", "stateless", galaxy_version())


def test_every_plugin_has_docs(installed):
    _, dest = installed
    root = dest / "ansible_collections/gse/stateless"
    plugins = plugin_names(str(root))
    assert len(plugins) >= 15
    env = isolated_env(dest)
    failures = []
    by_kind = {}
    for kind, name in plugins:
        by_kind.setdefault(kind, []).append(name)
    for kind, names in by_kind.items():
        # --json: one run per type; a plugin without documentation is missing from it or fails the run.
        p = subprocess.run([os.path.join(BIN, "ansible-doc"), "-t", kind, "--json"] + names,
                           env=env, capture_output=True, text=True, cwd=str(dest))
        if p.returncode != 0:
            failures.append((kind, p.stderr[-2000:]))
            continue
        docs = yaml.safe_load(p.stdout)
        for name in names:
            doc = (docs.get(name) or {}).get("doc") or {}
            if not doc.get("short_description") or not doc.get("description"):
                failures.append((kind, name))
            # The page really comes from the installed copy, not the checkout.
            elif not doc.get("filename", "").startswith(str(dest)):
                failures.append((kind, name, doc.get("filename")))
            if kind == "module" and not (docs[name].get("examples") and docs[name].get("return")):
                failures.append((kind, name, "EXAMPLES/RETURN"))
    assert not failures


def test_documented_module_count_matches_tree(installed):
    _, dest = installed
    env = isolated_env(dest)
    p = subprocess.run([os.path.join(BIN, "ansible-doc"), "-t", "module", "-l", "gse.stateless"],
                       env=env, capture_output=True, text=True, cwd=str(dest))
    listed = {line.split()[0] for line in p.stdout.splitlines() if line.startswith("gse.stateless.")}
    on_disk = {n for k, n in plugin_names(str(dest / "ansible_collections/gse/stateless")) if k == "module"}
    assert listed == on_disk
