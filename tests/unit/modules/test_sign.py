"""sign: the exact gpg/gpgv argv, skip when a valid signature exists, no unsigned success.

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
COLONS = ("sec:u:255:22:%s:1:::u:::scESC:::+:::ed25519:::0:\nfpr:::::::::%s:\n"
          "uid:u::::1::X::GSE Test <t@gse.invalid>::::::::::0:\n" % (FPR[-16:], FPR))


def validsig(primary=FPR):
    return ("[GNUPG:] NEWSIG\n[GNUPG:] GOODSIG %s GSE\n[GNUPG:] VALIDSIG %s 2026-11-25 1 0 4 0 22 10 00 %s\n"
            % (FPR[-16:], SUBKEY, primary))


class FakeGpg:
    def __init__(self, known_key=True, bad_after_sign=False):
        self.calls = []
        self.known_key = known_key
        self.bad_after_sign = bad_after_sign

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
                f.write("BAD" if self.bad_after_sign else "sig by " + FPR)
            return 0, "", ""
        if argv[0] == "gpgv":
            with open(argv[-2]) as f:
                good = f.read() == "sig by " + FPR
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
            "--armor", "--detach-sign", "--output", path + ".asc", path]


@pytest.fixture
def files(tmp_path):
    a, b = tmp_path / "image.tar.zst", tmp_path / "SHA512SUMS"
    a.write_text("image")
    b.write_text("sums")
    return str(tmp_path / "home"), [str(a), str(b)]


def keyring_of(calls):
    return calls[1][calls[1].index("--output") + 1]


def test_signs_verifies_then_not_changed(capsys, monkeypatch, files):
    home, paths = files
    fake = FakeGpg()
    args = dict(files=paths, gnupghome=home, key="KEY")
    res = run_module(capsys, monkeypatch, fake, args)
    ring = keyring_of(fake.calls)
    assert fake.calls == [
        ["gpg", "--batch", "--homedir", home, "--with-colons", "--list-secret-keys", "--", "KEY"],
        ["gpg", "--batch", "--homedir", home, "--yes", "--output", ring, "--export", FPR],
        sign_argv(home, paths[0]),
        ["gpgv", "--status-fd", "1", "--keyring", ring, paths[0] + ".asc", paths[0]],
        sign_argv(home, paths[1]),
        ["gpgv", "--status-fd", "1", "--keyring", ring, paths[1] + ".asc", paths[1]],
    ]
    assert res["changed"] and res["signed"] == paths and res["fingerprint"] == FPR
    assert not os.path.exists(ring)  # the temporary keyring is gone

    fake2 = FakeGpg()
    again = run_module(capsys, monkeypatch, fake2, args)
    assert not again["changed"] and again["signed"] == []
    assert [c[0] for c in fake2.calls] == ["gpg", "gpg", "gpgv", "gpgv"]


def test_invalid_existing_signature_is_replaced(capsys, monkeypatch, files):
    home, paths = files
    with open(paths[0] + ".asc", "w") as f:
        f.write("sig by someone else")
    fake = FakeGpg()
    res = run_module(capsys, monkeypatch, fake, dict(files=paths[:1], gnupghome=home, key="KEY"))
    assert res["changed"] and sign_argv(home, paths[0]) in fake.calls


def test_missing_key_fails_without_signing(capsys, monkeypatch, files):
    home, paths = files
    fake = FakeGpg(known_key=False)
    res = run_module(capsys, monkeypatch, fake, dict(files=paths, gnupghome=home, key="KEY"))
    assert res["failed"] and "not found" in res["msg"] and res["rc"] == 2
    assert len(fake.calls) == 1 and not os.path.exists(paths[0] + ".asc")


def test_signature_that_does_not_verify_fails_and_is_removed(capsys, monkeypatch, files):
    home, paths = files
    res = run_module(capsys, monkeypatch, FakeGpg(bad_after_sign=True), dict(files=paths, gnupghome=home, key="KEY"))
    assert res["failed"] and "does not verify" in res["msg"]
    assert not os.path.exists(paths[0] + ".asc")


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


def test_valid_signers_reads_primary_fingerprint():
    assert openpgp_sign.valid_signers(validsig()) == {FPR}
    assert openpgp_sign.valid_signers("[GNUPG:] BADSIG x\n") == set()
