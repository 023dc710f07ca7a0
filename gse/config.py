"""Read and check the configuration files of config.d.

Each directory holds ``<category>.yml`` files, YAML mappings of ``gse_*``
variables.  Directories are read in order and later ones win per variable,
as the playbook's include_vars does.
"""
import os
import re
from dataclasses import dataclass, field

import yaml

from . import layout
from .errors import UsageError



def categories():
    """(category, title) in menu order, from the collection's config.d table."""
    return tuple((c[0], c[1]) for c in layout.configd().CATEGORIES)


_FILE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.yml$")
_VAR_NAME = re.compile(r"^gse_[a-z0-9_]+$")


@dataclass
class ConfigFile:
    directory: str
    name: str        # e.g. users.yml
    data: dict

    @property
    def category(self):
        return self.name[:-4]

    @property
    def path(self):
        return os.path.join(self.directory, self.name)


@dataclass
class Config:
    dirs: list
    files: list = field(default_factory=list)

    @property
    def merged(self):
        out = {}
        for f in self.files:
            out.update(f.data)
        return out

    def category(self, name):
        """The merged variables of one category."""
        out = {}
        for f in self.files:
            if f.category == name:
                out.update(f.data)
        return out


def _one_line(exc):
    text = str(exc).strip().splitlines()
    return text[0] if text else exc.__class__.__name__


def check_data(path, data):
    """Check one parsed file; return it as a dict or raise UsageError."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UsageError("%s: expected a mapping of gse_* variables, found %s"
                         % (path, type(data).__name__))
    for key in data:
        if not isinstance(key, str) or not _VAR_NAME.match(key):
            raise UsageError("%s: %r is not a gse_* variable name" % (path, key))
    table = layout.configd()
    category = os.path.basename(path)[:-4]
    for key in data:
        if key in table.FLAG_VARIABLES:
            raise UsageError("%s: %s is set by the gse command's flags, not by config.d" % (path, key))
        home = table.CATEGORY_OF.get(key)
        if home is not None and home != category:
            raise UsageError("%s: %s belongs in %s.yml" % (path, key, home))
    if category == "users":
        _check_users(path, data)
    return data


def _check_users(path, data):
    for key, value in data.items():
        if not isinstance(value, list):
            continue
        for entry in value:
            if not isinstance(entry, dict):
                raise UsageError("%s: %s: each user is a mapping (name, password or password_hash)"
                                 % (path, key))
            for secret in ("password", "password_hash"):
                if secret in entry and not isinstance(entry[secret], str):
                    raise UsageError("%s: %s: %s must be a string" % (path, key, secret))


def parse_text(path, text):
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise UsageError("%s: not valid YAML: %s" % (path, _one_line(exc))) from None
    return check_data(path, data)


def read_file(path):
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except OSError as exc:
        raise UsageError("%s: cannot read: %s" % (path, exc.strerror)) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise UsageError("%s: not UTF-8 text" % path) from None
    return parse_text(path, text)


def load(dirs):
    """Read every ``*.yml`` of the config.d directories (missing directories are skipped)."""
    cfg = Config(dirs=list(dirs))
    for d in dirs:
        if not os.path.isdir(d):
            continue
        for name in sorted(os.listdir(d)):
            path = os.path.join(d, name)
            if not name.endswith(".yml") or not os.path.isfile(path):
                continue
            if not _FILE_NAME.match(name):
                raise UsageError("%s: configuration files are named <category>.yml" % path)
            cfg.files.append(ConfigFile(d, name, read_file(path)))
    return cfg
