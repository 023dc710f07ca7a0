"""Read and check the configuration files of config.d.

The schema and the reading are the collection's (plugins/module_utils/settings.py,
from the roles' argument specs): the playbook checks the same way.
Each directory holds ``<category>.yml`` files, YAML mappings of ``gse_*``
variables.  Directories are read in order and later ones win per variable,
as the playbook's include_vars does.
"""
import os
from dataclasses import dataclass, field

from . import layout
from .errors import UsageError


def categories():
    """(category, title) in menu order, from the collection's config.d table."""
    return tuple((c[0], c[1]) for c in layout.configd().CATEGORIES)


@dataclass
class ConfigFile:
    directory: str
    name: str        # e.g. users.yml
    data: dict

    @property
    def category(self):
        return self.name.rsplit(".", 1)[0]

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


def flag_of():
    """{variable: the gse flag that sets it}, from the option table."""
    from .options import OPTIONS
    return {o.var: o.names[0] for o in OPTIONS if o.var}


def _checked(call, *args):
    settings = layout.settings()
    try:
        return call(*args, schema=layout.schema(), flag_of=flag_of())
    except settings.SettingsError as exc:
        raise UsageError(str(exc)) from None


def check_data(path, data):
    """Check one parsed file (a time state's snapshot); return it as a dict or raise UsageError."""
    return _checked(layout.settings().check_data, path, data)


def parse_text(path, text):
    settings = layout.settings()
    try:
        entries = settings.parse(path, text)
    except settings.SettingsError as exc:
        raise UsageError(str(exc)) from None
    return _checked(settings.check, path, entries)


def load(dirs):
    """Read and check every ``*.yml``/``*.yaml`` of the config.d directories (missing ones are skipped)."""
    cfg = Config(dirs=list(dirs))
    for d, name, data in _checked(layout.settings().read_dirs, list(dirs)):
        cfg.files.append(ConfigFile(d, name, data))
    return cfg


def read_file(path):
    """Read and check one config.d file (the menu's Validate)."""
    settings = layout.settings()
    try:
        return parse_text(path, settings.read_file(path))
    except settings.SettingsError as exc:
        raise UsageError(str(exc)) from None
