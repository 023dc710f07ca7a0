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


def test_lawful_good_covers_a_part_and_its_sub_parts():
    from ansible_collections.gse.stateless.plugins.filter.lawful_good import lawful_good
    assert lawful_good(["gpartl"], "gmark") is True
    assert lawful_good(["gpartl"], "gpartl") is True
    assert lawful_good(["gmark"], "gsign") is False
    assert lawful_good([], "gker") is False
    with pytest.raises(AnsibleFilterError):
        lawful_good(["gbogus"], "gker")
