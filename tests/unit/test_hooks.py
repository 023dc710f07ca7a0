"""The hook table: expansion, enforcement and the lawful-good precedence."""
import pytest

from ansible_collections.gse.stateless.plugins.module_utils import hooks


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
