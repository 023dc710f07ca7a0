"""One family of errors carries a failed command: the verifiers and the signer raise its members."""
import pytest

from ansible_collections.gse.stateless.plugins.module_utils import (
    command_error, image_verify, openpgp, openpgp_sign)


def test_one_verify_error_and_a_sign_error_of_the_family():
    assert openpgp.VerifyError is image_verify.VerifyError is command_error.VerifyError
    assert openpgp_sign.SignError is command_error.SignError
    assert issubclass(command_error.VerifyError, command_error.CommandError)
    assert issubclass(command_error.SignError, command_error.CommandError)
    assert not issubclass(command_error.SignError, command_error.VerifyError)


@pytest.mark.parametrize("cls", [command_error.VerifyError, command_error.SignError])
def test_fail_args_carry_the_command(cls):
    e = cls("gpgv refused x", ["gpgv", "x"], 2, "out", "err")
    assert str(e) == "gpgv refused x"
    assert e.fail_args() == dict(msg="gpgv refused x", cmd=["gpgv", "x"], rc=2, stdout="out", stderr="err")
    assert cls("no command").fail_args() == dict(msg="no command", cmd=None, rc=None, stdout="", stderr="")


def test_a_real_verification_failure_is_caught_by_the_family(tmp_path):
    # A pointer that is not clearsigned is refused before gpgv runs.
    f = tmp_path / "pointer"
    f.write_text("not signed\n")

    def run(argv):
        raise AssertionError("gpgv must not run: %r" % argv)

    with pytest.raises(command_error.CommandError) as err:
        openpgp.verify_clearsigned(run, "gpgv", str(tmp_path / "keyring"), str(tmp_path), str(f))
    assert isinstance(err.value, image_verify.VerifyError)
