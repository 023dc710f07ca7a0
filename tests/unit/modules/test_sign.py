"""sign: the exact gpg/gpgv argv, gpgv for found signatures, SIG_CREATED proof for new ones, no unsigned success.

gpg and gpgv are replaced by a recorder that plays their documented
behaviour (status lines, files written); the integration test uses the real
programs with a generated key.
"""
import json
import os

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gse.stateless.plugins.module_utils import openpgp_sign
from ansible_collections.gse.stateless.plugins.modules import sign

FPR = "A" * 40
SUBKEY = "B" * 40
COLONS = ("sec:u:255:22:%s:1:::u:::cC:::+:::ed25519:::0:\nfpr:::::::::%s:\n"
          "uid:u::::1::X::GSE Test <t@gse.invalid>::::::::::0:\n"
          "ssb:u:255:22:%s:1::::::s:::+:::ed25519::\nfpr:::::::::%s:\n" % (FPR[-16:], FPR, SUBKEY[-16:], SUBKEY))


def validsig(primary=FPR):
    return ("[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG %s GSE\n[GNUPG:] VALIDSIG %s 2026-11-25 1 0 4 0 22 10 00 %s\n"
            % (FPR[-16:], SUBKEY, primary))


def sig_created(fpr=SUBKEY):
    return "[GNUPG:] KEY_CONSIDERED %s 0\n[GNUPG:] SIG_CREATED D 22 10 00 1795000000 %s\n" % (FPR, fpr)


class FakeGpg:
    """gpg and gpgv as documented: SIG_CREATED on the status fd when signing, VALIDSIG when verifying."""

    def __init__(self, known_key=True, signer=SUBKEY, sign_rc=0):
        self.calls = []
        self.known_key = known_key
        self.signer = signer
        self.sign_rc = sign_rc

    def __call__(self, module, argv, data=None, binary_data=False, **kw):
        self.calls.append(argv)
        if "--list-secret-keys" in argv:
            return (0, COLONS, "") if self.known_key else (2, "", "gpg: error reading key: No secret key\n")
        if "--export" in argv:
            with open(argv[argv.index("--output") + 1], "w") as f:
                f.write("pubkey")
            return 0, "", ""
        if "--detach-sign" in argv:
            with open(argv[argv.index("--output") + 1], "w") as f:
                f.write("sig by " + self.signer)
            if self.sign_rc:
                return self.sign_rc, "", "gpg: signing failed: Bad passphrase\n"
            return 0, sig_created(self.signer), ""
        if argv[0] == "gpgv":
            with open(argv[-2]) as f:
                good = f.read() == "sig by " + SUBKEY
            return (0, validsig(), "") if good else (1, "[GNUPG:] BADSIG x\n", "BAD signature")
        raise AssertionError(argv)


def run_module(capsys, monkeypatch, fake, args, check=False):
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, *a, **kw: fake(self, *a, **kw))
    if check:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args), pytest.raises(SystemExit):
        sign.main()
    return json.loads(capsys.readouterr().out)


def sign_argv(home, path):
    return ["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--homedir", home, "--local-user", "KEY",
            "--status-fd", "1", "--armor", "--detach-sign", "--output", partial(path), path]


def partial(path):
    return os.path.join(os.path.dirname(path), ".%s.asc.partial" % os.path.basename(path))


def list_argv(home):
    return ["gpg", "--batch", "--homedir", home, "--with-colons", "--list-secret-keys", "--", "KEY"]


@pytest.fixture
def files(tmp_path):
    a, b = tmp_path / "image.tar.zst", tmp_path / "SHA512SUMS"
    a.write_text("image")
    b.write_text("sums")
    return str(tmp_path / "home"), [str(a), str(b)]


def keyring_of(calls):
    return calls[1][calls[1].index("--output") + 1]


# signing_key is the name the three signing modules share; key, sign's former
# name, stays an alias.
@pytest.mark.parametrize("name", ["signing_key", "key"])
def test_signs_with_proof_then_verifies_found_signatures(capsys, monkeypatch, files, name):
    home, paths = files
    fake = FakeGpg()
    args = {"files": paths, "gnupghome": home, name: "KEY"}
    res = run_module(capsys, monkeypatch, fake, args)
    # Signatures made here are proved by gpg's SIG_CREATED line, not read back with gpgv.
    assert fake.calls == [list_argv(home), sign_argv(home, paths[0]), sign_argv(home, paths[1])]
    assert res["changed"] and res["signed"] == paths and res["fingerprint"] == FPR
    assert sorted(os.listdir(os.path.dirname(paths[0]))) == ["SHA512SUMS", "SHA512SUMS.asc", "image.tar.zst",
                                                             "image.tar.zst.asc"]

    # Found signatures (whoever made them) are verified with gpgv against the exported key.
    fake2 = FakeGpg()
    again = run_module(capsys, monkeypatch, fake2, args)
    ring = keyring_of(fake2.calls)
    assert fake2.calls == [
        list_argv(home),
        ["gpg", "--batch", "--homedir", home, "--yes", "--output", ring, "--export", FPR],
        ["gpgv", "--status-fd", "1", "--keyring", ring, paths[0] + ".asc", paths[0]],
        ["gpgv", "--status-fd", "1", "--keyring", ring, paths[1] + ".asc", paths[1]],
    ]
    assert not again["changed"] and again["signed"] == []
    assert not os.path.exists(ring)  # the temporary keyring is gone


def test_invalid_existing_signature_is_replaced(capsys, monkeypatch, files):
    home, paths = files
    with open(paths[0] + ".asc", "w") as f:
        f.write("sig by someone else")
    fake = FakeGpg()
    res = run_module(capsys, monkeypatch, fake, dict(files=paths[:1], gnupghome=home, key="KEY"))
    assert res["changed"] and fake.calls[-1] == sign_argv(home, paths[0])
    assert [c[0] for c in fake.calls] == ["gpg", "gpg", "gpgv", "gpg"]
    with open(paths[0] + ".asc") as f:
        assert f.read() == "sig by " + SUBKEY


def test_missing_key_fails_without_signing(capsys, monkeypatch, files):
    home, paths = files
    fake = FakeGpg(known_key=False)
    res = run_module(capsys, monkeypatch, fake, dict(files=paths, gnupghome=home, key="KEY"))
    assert res["failed"] and "not found" in res["msg"] and res["rc"] == 2
    assert len(fake.calls) == 1 and not os.path.exists(paths[0] + ".asc")


@pytest.mark.parametrize("fake", [FakeGpg(signer="C" * 40), FakeGpg(sign_rc=2)], ids=["other_key", "gpg_fails"])
def test_no_proof_fails_and_writes_no_signature(capsys, monkeypatch, files, fake):
    home, paths = files
    res = run_module(capsys, monkeypatch, fake, dict(files=paths, gnupghome=home, key="KEY"))
    assert res["failed"] and "no signature" in res["msg"] and res["cmd"] == sign_argv(home, paths[0])
    assert sorted(os.listdir(os.path.dirname(paths[0]))) == ["SHA512SUMS", "image.tar.zst"]


def test_check_mode_signs_nothing(capsys, monkeypatch, files):
    home, paths = files
    fake = FakeGpg()
    res = run_module(capsys, monkeypatch, fake, dict(files=paths, gnupghome=home, key="KEY"), check=True)
    assert res["changed"] and res["signed"] == paths
    assert not any("--detach-sign" in c for c in fake.calls)


def test_passphrase_goes_on_stdin():
    argv = openpgp_sign.detach_sign_argv("/h", "K", "/f", passphrase="secret")
    assert argv[:10] == ["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--homedir", "/h",
                         "--local-user", "K", "--passphrase-fd"] and "secret" not in argv


def test_created_by_needs_one_detached_signature_by_the_key():
    fprs = {FPR, SUBKEY}
    assert openpgp_sign.created_by(sig_created(SUBKEY), fprs)
    assert openpgp_sign.created_by(sig_created(FPR), fprs)
    assert not openpgp_sign.created_by(sig_created("C" * 40), fprs)
    assert not openpgp_sign.created_by("", fprs)
    assert not openpgp_sign.created_by(sig_created().replace(" D ", " S "), fprs)  # not detached
    assert not openpgp_sign.created_by(sig_created() + sig_created(), fprs)


def test_key_fingerprints_include_subkeys():
    assert openpgp_sign.key_fingerprints(COLONS) == (FPR, {FPR, SUBKEY})
    with pytest.raises(ValueError):
        openpgp_sign.key_fingerprints(COLONS + COLONS.replace("A", "D"))


def test_valid_signers_reads_primary_fingerprint():
    assert openpgp_sign.valid_signers(validsig()) == {FPR}
    assert openpgp_sign.valid_signers("[GNUPG:] BADSIG x\n") == set()
