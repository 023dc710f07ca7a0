"""git_verify: which of gpg's answers let a commit through.

The status lines are gpg's own format (DETAILS in GnuPG's doc); the
integration test tests/integration/test_catalyst_repo.py runs real git and gpg.
"""
from ansible_collections.gse.stateless.plugins.module_utils import git_verify

FPR = "A" * 40
SUB = "B" * 40

GOOD = f"""[GNUPG:] NEWSIG
[GNUPG:] KEY_CONSIDERED {FPR} 0
[GNUPG:] SIG_ID x 2026-11-30 1764460800
[GNUPG:] GOODSIG {FPR[-16:]} Test <t@gse.test>
[GNUPG:] VALIDSIG {SUB} 2026-11-30 1764460800 0 4 0 22 10 00 {FPR}
[GNUPG:] TRUST_UNDEFINED 0 pgp
"""


def test_good_signature_names_the_primary_key():
    assert git_verify.status_signer(GOOD) == (FPR, [])


def test_unknown_key_and_bad_signature_refuse():
    assert git_verify.status_signer(f"[GNUPG:] ERRSIG {FPR[-16:]} 22 10 00 1764460800 9 -\n"
                                    f"[GNUPG:] NO_PUBKEY {FPR[-16:]}\n") == (None, ["ERRSIG", "NO_PUBKEY"])
    assert git_verify.status_signer(f"[GNUPG:] BADSIG {FPR[-16:]} Test\n") == (None, ["BADSIG"])
    # A good signature next to a bad one is still refused.
    assert git_verify.status_signer(GOOD + f"[GNUPG:] BADSIG {FPR[-16:]} Test\n")[1] == ["BADSIG"]


def test_no_status_is_unsigned():
    assert git_verify.status_signer("") == (None, [])


def test_primary_fingerprints_skip_subkeys():
    colons = (f"pub:u:255:22:{FPR[-16:]}:1764460800:::u:::scSC:::::ed25519:::0:\nfpr:::::::::{FPR}:\n"
              f"uid:u::::1764460800::X::Test <t@gse.test>::::::::::0:\n"
              f"sub:u:255:18:{SUB[-16:]}:1764460800::::::e:::::cv25519::\nfpr:::::::::{SUB}:\n")
    assert git_verify.primary_fingerprints(colons) == [FPR]
