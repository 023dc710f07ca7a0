"""keep_or_hash: an existing matching hash is kept; a new one has a random or a derived salt."""
from passlib.hash import sha512_crypt

from ansible_collections.gse.stateless.plugins.filter.keep_or_hash import keep_or_hash


def salt(h):
    return h.split("$")[3]


def test_a_matching_hash_is_kept():
    old = sha512_crypt.using(rounds=5000).hash("pw")
    assert keep_or_hash("pw", old, "student", "site") == old


def test_without_a_user_the_salt_is_random():
    a, b = keep_or_hash("pw"), keep_or_hash("pw")
    assert a != b and sha512_crypt.verify("pw", a) and sha512_crypt.verify("pw", b)


def test_the_derived_salt_repeats_for_the_same_inputs_only():
    a = keep_or_hash("pw", "", "student", "FPR1")
    assert sha512_crypt.verify("pw", a) and "rounds=656000" in a and len(salt(a)) == 16
    assert keep_or_hash("pw", "", "student", "FPR1") == a  # a fresh work directory: the same /etc/shadow
    others = {keep_or_hash("pw", "", "teacher", "FPR1"), keep_or_hash("pw", "", "student", "FPR2"),
              keep_or_hash("pw2", "", "student", "FPR1")}
    assert len({salt(h) for h in others} | {salt(a)}) == 4
