"""The hook table: expansion, enforcement and the lawful-good precedence."""
import importlib.util
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
spec = importlib.util.spec_from_file_location("hooks", os.path.join(ROOT, "plugins/module_utils/hooks.py"))
hooks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(hooks)


def test_part_covers_its_subparts():
    assert hooks.expand(["gparta"]) == {"gparta", "gseed", "gcat", "gextr"}


def test_unknown_hook_lists_valid_ones():
    with pytest.raises(ValueError) as err:
        hooks.expand(["gnope"])
    assert "gnope" in str(err.value) and "gcat" in str(err.value)


def test_lawful_good_wins_over_enforce():
    assert hooks.is_enforced("gcat", ["gparta"]) is True
    assert hooks.is_enforced("gcat", ["gparta"], ["gparta"]) is False
    assert hooks.is_enforced("gcat", ["gcat"], ["gparta"]) is False
    assert hooks.is_enforced("gseed", ["gcat"]) is False


def test_hook_names_are_unique():
    assert len(set(hooks.ALL_HOOKS)) == len(hooks.ALL_HOOKS)
