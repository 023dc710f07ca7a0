"""The enforced filter reads the hook table as the roles see it."""
import pytest
from ansible.errors import AnsibleFilterError

from ansible_collections.gse.stateless.plugins.filter.enforced import enforced


def test_enforced_through_part():
    assert enforced(["gpartc"], "gupdate") is True
    assert enforced(["gpartc"], "gupdate", ["gupdate"]) is False
    assert enforced([], "gupdate") is False


def test_unknown_hook_is_an_error():
    with pytest.raises(AnsibleFilterError):
        enforced([], "gbogus")
