"""Where gse finds the collection, its hook table, playbooks and default settings.

The gse command runs the playbooks of the gse.stateless collection.  From a
checkout the collection is the repository itself (reached through the
committed ``.collections`` link); an installed package may ship it inside the
package.  ``find_collection`` is the one place that knows these layouts.
"""
import functools
import importlib
import os
import sys
import types

import yaml

from .errors import UsageError

PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


# Where an installed package carries the collection (setup.py copies it there).
SHIPPED = os.path.join(PACKAGE_DIR, "collection", "ansible_collections", "gse", "stateless")
# Where the Gentoo package (packaging/gentoo) installs it: Ansible's system-wide collection path.
SYSTEM = "/usr/share/ansible/collections/ansible_collections/gse/stateless"


def _candidates():
    # Explicit override first (development, packaging tests).
    env = os.environ.get("GSE_COLLECTION_ROOT")
    if env:
        yield env
    # Shipped inside the package (pip install of a release).
    yield SHIPPED
    # A checkout: the repository root is the collection.
    yield os.path.dirname(PACKAGE_DIR)
    # Installed by the distribution beside the package (emerge app-admin/gse).
    yield SYSTEM


@functools.lru_cache(maxsize=None)
def find_collection():
    """Return the root directory of the gse.stateless collection."""
    for root in _candidates():
        if os.path.isfile(os.path.join(root, "galaxy.yml")) and os.path.isfile(
            os.path.join(root, "plugins", "module_utils", "hooks.py")
        ):
            return os.path.abspath(root)
    raise UsageError("cannot find the gse.stateless collection (set GSE_COLLECTION_ROOT)")


@functools.lru_cache(maxsize=None)
def collection_version():
    """The collection's version from its galaxy.yml: the version of gse as a whole."""
    with open(os.path.join(find_collection(), "galaxy.yml"), encoding="utf-8") as f:
        return str(yaml.safe_load(f)["version"])


def collections_path():
    """The directory to put in ANSIBLE_COLLECTIONS_PATH (holds ansible_collections/gse/stateless)."""
    root = find_collection()
    # Checkout: the committed .collections link; shipped: three levels up.
    link = os.path.join(root, ".collections")
    if os.path.isdir(os.path.join(link, "ansible_collections", "gse", "stateless")):
        return link
    return os.path.dirname(os.path.dirname(os.path.dirname(root)))


def _module_utils(name):
    """Load one of the collection's Ansible-free tables by file path.

    They are loaded as modules of one package (``gse_tables``) whose path is
    the collection's plugins/module_utils, so that their relative imports
    (settings.py reads configd.py) find each other.
    """
    package = "gse_tables"
    if package not in sys.modules:
        pkg = types.ModuleType(package)
        pkg.__path__ = [os.path.join(find_collection(), "plugins", "module_utils")]
        sys.modules[package] = pkg
    return importlib.import_module("%s.%s" % (package, name))


@functools.lru_cache(maxsize=None)
def hooks():
    """The hook table (parts, hooks, quiet-mode lines)."""
    return _module_utils("hooks")


@functools.lru_cache(maxsize=None)
def mountguard():
    """The mount guard (it loads the build unit, ``buildunit``, beside it)."""
    return _module_utils("mountguard")


@functools.lru_cache(maxsize=None)
def configd():
    """The config.d table (categories, their titles and variables, the flag variables)."""
    return _module_utils("configd")


@functools.lru_cache(maxsize=None)
def settings():
    """The schema of every setting (the roles' argument specs) and the checked reading of config.d."""
    return _module_utils("settings")


@functools.lru_cache(maxsize=None)
def schema():
    """{variable: Setting} from the roles' argument specs."""
    return settings().load_schema(os.path.join(find_collection(), "roles"))


def playbook_dir():
    """Playbooks of the collection; GSE_PLAYBOOK_DIR points elsewhere for development and tests."""
    return os.environ.get("GSE_PLAYBOOK_DIR") or os.path.join(find_collection(), "playbooks")


def playbook(name):
    return os.path.join(playbook_dir(), name)


@functools.lru_cache(maxsize=None)
def build_defaults():
    """The plain (untemplated) values of roles/common/defaults/main.yml."""
    path = os.path.join(find_collection(), "roles", "common", "defaults", "main.yml")
    with open(path, encoding="utf-8") as f:
        data = yaml.safe_load(f) or {}
    return {k: v for k, v in data.items() if not (isinstance(v, str) and "{{" in v)}


def installed_configd():
    """The installed defaults: /usr/lib64/gse/config.d, or the collection's config.d."""
    system = "/usr/lib64/gse/config.d"
    if os.path.isdir(system):
        return system
    return os.path.join(find_collection(), "config.d")


def configd_dirs():
    """config.d directories, later ones win.  GSE_CONFIGD (colon-separated) replaces the default."""
    env = os.environ.get("GSE_CONFIGD")
    if env:
        dirs = [d for d in env.split(":") if d]
        for d in dirs:
            if not os.path.isabs(d):
                raise UsageError("GSE_CONFIGD: %s is not an absolute path" % settings().shown(d))
        return dirs
    return [installed_configd(), "/etc/gse/config.d"]


def admin_configd():
    """Where the menu writes the administrator's edits: the last config.d directory."""
    return configd_dirs()[-1]
