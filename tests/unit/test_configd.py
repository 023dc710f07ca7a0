"""config.d is the roles' documented defaults, by category, and stays in step."""
import importlib.util
import os

import yaml

from ansible_collections.gse.stateless.plugins.module_utils import configd

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load_generator():
    import importlib.machinery
    loader = importlib.machinery.SourceFileLoader("gen_configd", os.path.join(ROOT, "scripts", "gen-configd"))
    mod = importlib.util.module_from_spec(importlib.util.spec_from_loader("gen_configd", loader))
    loader.exec_module(mod)
    return mod


def all_role_defaults():
    """The defaults of the build sequence's roles (the controller and server have their own)."""
    from ansible_collections.gse.stateless.plugins.module_utils import hooks
    out = {}
    for role in ["common"] + [p.role for p in hooks.PARTS]:
        path = os.path.join(ROOT, "roles", role, "defaults", "main.yml")
        if os.path.isfile(path):
            with open(path, encoding="utf-8") as fh:
                out.update(yaml.safe_load(fh) or {})
    return out


def test_every_default_has_one_home():
    defaults = set(all_role_defaults())
    placed = [v for _c, _t, names in configd.CATEGORIES for v in names]
    assert len(placed) == len(set(placed)), "a variable is in two categories"
    assert set(placed) <= defaults
    # What config.d does not hold is the run's own: roles/common's variables
    # (the gse command's flags, the build id, the config.d directories).
    with open(os.path.join(ROOT, "roles", "common", "defaults", "main.yml"), encoding="utf-8") as fh:
        common = set(yaml.safe_load(fh))
    assert defaults - set(placed) <= common


def test_configd_files_are_up_to_date():
    files = load_generator().render()
    for name, text in files.items():
        with open(os.path.join(ROOT, "config.d", name), encoding="utf-8") as fh:
            assert fh.read() == text, "config.d/%s is stale: run scripts/gen-configd" % name
    assert sorted(os.listdir(os.path.join(ROOT, "config.d"))) == sorted(files)


def test_configd_values_equal_the_role_defaults():
    defaults = all_role_defaults()
    for name in os.listdir(os.path.join(ROOT, "config.d")):
        with open(os.path.join(ROOT, "config.d", name), encoding="utf-8") as fh:
            for key, value in (yaml.safe_load(fh) or {}).items():
                assert defaults[key] == value, key
