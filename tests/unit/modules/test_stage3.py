"""gse.stateless.stage3: the exact gpgv commands, what is fetched, and the release parsers."""
import base64
import hashlib
import os

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gse.stateless.plugins.module_utils import download as dl
from ansible_collections.gse.stateless.plugins.module_utils import gentoo_release as rel
from ansible_collections.gse.stateless.plugins.module_utils import openpgp
from ansible_collections.gse.stateless.plugins.modules import stage3

NAME = "stage3-amd64-openrc-20261125T170321Z.tar.xz"
DATA = b"tarball bytes" * 100
FPR = "0123456789ABCDEF0123456789ABCDEF01234567"
KEY = b"\x99\x00\x33fake key packet"
ARMORED = (b"-----BEGIN PGP PUBLIC KEY BLOCK-----\nComment: test\n\n"
           + base64.b64encode(KEY) + b"\n=abcd\n-----END PGP PUBLIC KEY BLOCK-----\n")
BASE = "http://127.0.0.1:1/mirror"
AUTO = BASE + "/releases/amd64/autobuilds"


def clearsigned(body):
    return (b"-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n" + body
            + b"-----BEGIN PGP SIGNATURE-----\nxx\n-----END PGP SIGNATURE-----\n")


def bodies():
    return {
        "latest-stage3-amd64-openrc.txt":
            b"# Latest as of Tue, 25 Nov 2026\n# ts=1\n20261125T170321Z/%s %d\n" % (NAME.encode(), len(DATA)),
        NAME + ".DIGESTS": b"# SHA512 HASH\n%s  %s\n" % (hashlib.sha512(DATA).hexdigest().encode(),
                                                       NAME.encode()),
        NAME + ".sha256": b"# SHA256 HASH\n%s  %s\n" % (hashlib.sha256(DATA).hexdigest().encode(),
                                                      NAME.encode()),
    }


class Exit(Exception):
    def __init__(self, result):
        super().__init__(result)
        self.result = result


@pytest.fixture
def harness(monkeypatch, tmp_path):
    """Module with fetches and gpgv faked; gpgv 'verifies' a signature unless it is in ``bad``."""
    work = tmp_path / "work"
    calls, fetched, bad = [], [], set()
    signed = bodies()

    def run_command(self, argv, **kwargs):
        calls.append(list(argv))
        if os.path.basename(argv[-1]) in bad:
            return 1, "[GNUPG:] BADSIG 1234 test\n", "gpgv: BAD signature"
        if "--output" in argv:
            with open(argv[argv.index("--output") + 1], "wb") as f:
                f.write(signed[os.path.basename(argv[-1])])
        return 0, "[GNUPG:] VALIDSIG %s 2026-11-25 0 4 0 22 10 00 %s\n" % (FPR, FPR), ""

    def fetch_bytes(url, limit=None, timeout=None):
        fetched.append(url)
        name = url.rsplit("/", 1)[-1]
        if name.endswith(".asc"):
            return b"-----BEGIN PGP SIGNATURE-----\n"
        return clearsigned(signed[name])

    def fetch_to_part(url, part, timeout=None):
        fetched.append(url)
        with open(part, "wb") as f:
            f.write(DATA)
        return {"resumed_from": 0, "received": len(DATA)}

    def mkdtemp(prefix=None):
        work.mkdir()
        return str(work)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "get_bin_path", lambda self, name, required=False: "/usr/bin/gpgv")
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", lambda self, **r: (_ for _ in ()).throw(Exit(r)))
    monkeypatch.setattr(basic.AnsibleModule, "fail_json",
                        lambda self, **r: (_ for _ in ()).throw(Exit(dict(r, failed=True))))
    monkeypatch.setattr(dl, "fetch_bytes", fetch_bytes)
    monkeypatch.setattr(dl, "fetch_to_part", fetch_to_part)
    monkeypatch.setattr(stage3.tempfile, "mkdtemp", mkdtemp)

    keyring = tmp_path / "gentoo-release.asc"
    keyring.write_bytes(ARMORED)
    dest = tmp_path / "dest"

    def run(check=False, **args):
        calls.clear()
        fetched.clear()
        params = dict(base_url=BASE, variant="amd64-openrc", dest=str(dest), keyring=str(keyring), **args)
        if check:
            params["_ansible_check_mode"] = True
        with patch_module_args(params):
            with pytest.raises(Exit) as exc:
                stage3.main()
        return exc.value.result, list(calls), list(fetched)

    run.work, run.dest, run.bad = str(work), dest, bad
    return run


def gpgv(work, *rest):
    return ["/usr/bin/gpgv", "--homedir", work, "--keyring", work + "/keyring.gpg", "--status-fd", "1"] + list(rest)


def test_download_and_verify(harness):
    result, calls, fetched = harness()
    w, d = harness.work, str(harness.dest)
    assert calls == [
        gpgv(w, "--output", w + "/body-latest-stage3-amd64-openrc.txt", w + "/latest-stage3-amd64-openrc.txt"),
        gpgv(w, w + "/" + NAME + ".asc", d + "/" + NAME + ".part"),
        gpgv(w, "--output", w + "/body-" + NAME + ".DIGESTS", w + "/" + NAME + ".DIGESTS"),
        gpgv(w, "--output", w + "/body-" + NAME + ".sha256", w + "/" + NAME + ".sha256"),
    ]
    url = AUTO + "/20261125T170321Z/" + NAME
    assert fetched == [AUTO + "/latest-stage3-amd64-openrc.txt", url + ".asc", url + ".DIGESTS",
                       url + ".sha256", url]
    assert result["changed"] is True
    assert result["sha512"] == hashlib.sha512(DATA).hexdigest()
    assert result["date"] == "20261125T170321Z"
    assert result["verified"]["pointer"] == FPR
    assert (harness.dest / NAME).read_bytes() == DATA


def test_rerun_verifies_locally_and_is_not_changed(harness):
    harness()
    result, calls, fetched = harness()
    d = str(harness.dest)
    assert result["changed"] is False
    assert fetched == [AUTO + "/latest-stage3-amd64-openrc.txt"]
    assert calls[1] == gpgv(harness.work, d + "/" + NAME + ".asc", d + "/" + NAME)


def test_check_mode_fetches_the_pointer_only(harness):
    result, calls, fetched = harness(check=True)
    assert fetched == [AUTO + "/latest-stage3-amd64-openrc.txt"]
    assert len(calls) == 1
    assert result["changed"] is True
    assert not harness.dest.exists()


def test_bad_signature_removes_the_part(harness):
    harness.bad.add(NAME + ".part")
    result, calls, fetched = harness()
    assert result["failed"] is True
    assert "OpenPGP signature did not verify" in result["msg"]
    assert result["cmd"] == calls[-1] and result["rc"] == 1
    assert sorted(os.listdir(harness.dest)) == []


def test_bad_pointer_signature_fetches_nothing_else(harness):
    harness.bad.add("latest-stage3-amd64-openrc.txt")
    result, calls, fetched = harness()
    assert result["failed"] is True
    assert fetched == [AUTO + "/latest-stage3-amd64-openrc.txt"]


def test_dearmor():
    assert openpgp.dearmor(ARMORED) == KEY
    with pytest.raises(ValueError):
        openpgp.dearmor(b"not a key")


def test_pointer_parsing():
    info = rel.parse_pointer(bodies()["latest-stage3-amd64-openrc.txt"])
    assert info == {"path": "20261125T170321Z/" + NAME, "size": len(DATA), "date": "20261125T170321Z",
                    "latest_as_of": "Tue, 25 Nov 2026", "ts": "1"}
    with pytest.raises(rel.ReleaseError):
        rel.parse_pointer(b"a/b 1\nc/d 2\n")
    with pytest.raises(rel.ReleaseError):
        rel.parse_pointer(b"../../etc/passwd 1\n")


def test_digest_checks():
    listed = rel.parse_digests(bodies()[NAME + ".DIGESTS"])
    actual = {"sha512": hashlib.sha512(DATA).hexdigest(), "sha256": "", "blake2b": ""}
    assert rel.check_digests(listed, NAME, actual) == ["SHA512"]
    with pytest.raises(rel.ReleaseError):
        rel.check_digests(listed, NAME, dict(actual, sha512="00"))
    with pytest.raises(rel.ReleaseError):
        rel.check_digests(listed, "other.tar.xz", actual)
    assert rel.parse_digests(b"abcd  x.tar\n", "SHA256") == {"SHA256": {"x.tar": "abcd"}}


def test_force_keeps_the_verified_copy_when_the_new_one_fails(harness):
    harness()
    harness.bad.add(NAME + ".part")
    result, calls, fetched = harness(force=True)
    assert result["failed"] is True
    # The local copy was verified before it was kept, and the bad download left nothing.
    assert calls[1] == gpgv(harness.work, str(harness.dest) + "/" + NAME + ".asc", str(harness.dest) + "/" + NAME)
    assert sorted(os.listdir(harness.dest)) == sorted([NAME, NAME + ".asc", NAME + ".DIGESTS", NAME + ".sha256"])
    assert (harness.dest / NAME).read_bytes() == DATA
