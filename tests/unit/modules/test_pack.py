"""pack: the exact tar/zstd/xz argv, streaming hash, SHA512SUMS, idempotency, refusals.

The pipeline's processes are replaced by stand-ins (printf for tar, cat or
false for the compressor) that record the argv the module asked for; the
integration test runs the real tar and zstd.
"""
import hashlib
import json
import os
import subprocess

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gse.stateless.plugins.module_utils import root_manifest, safe_paths, tar_stream
from ansible_collections.gse.stateless.plugins.modules import pack

PAYLOAD = b"compressed-bytes" * 1000


def run_module(capsys, args, check=False):
    if check:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args), pytest.raises(SystemExit):
        pack.main()
    return json.loads(capsys.readouterr().out)


class FakePopen:
    """Records argv; runs printf for tar and ``cat`` (or ``false``) for the compressor."""

    def __init__(self, fail=None):
        self.calls = []
        self.fail = fail

    def __call__(self, argv, **kw):
        self.calls.append(argv)
        if argv[0] == self.fail:
            return subprocess.Popen(["sh", "-c", "cat >/dev/null; echo boom >&2; exit 2"], **kw)
        if argv[0] == "tar":
            return subprocess.Popen(["printf", "%s", PAYLOAD.decode()], **kw)
        return subprocess.Popen(["cat"], **kw)


@pytest.fixture
def env(tmp_path, monkeypatch):
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    out = tmp_path / "out"
    info = tmp_path / "mountinfo"
    info.write_text("22 1 0:21 / / rw - ext4 /dev/vda rw\n")
    monkeypatch.setattr(safe_paths, "MOUNTINFO", str(info))
    fake = FakePopen()
    monkeypatch.setattr(tar_stream, "POPEN", fake)
    return root, out, fake, info


def expected_tar(root, excludes, epoch=None):
    return ["tar", "--create", "--file=-", "--directory=%s" % root,
            "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls", "--one-file-system",
            "--sort=name", "--format=posix",
            # No atime, ctime or tar's pid (the default header name %d/PaxHeaders.%p/%f) in the stream.
            "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime"] + (
        ["--mtime=@%d" % epoch, "--clamp-mtime"] if epoch is not None else []) + [
        "--anchored", "--wildcards"] + ["--exclude=%s" % e for e in excludes] + ["."]


def test_argv_lists():
    assert tar_stream.tar_argv("/w", ["/var/tmp/*", "./usr/share/doc/", "tmp"]) == expected_tar(
        "/w", ["./var/tmp/*", "./usr/share/doc", "./tmp"])
    assert tar_stream.compressor_argv("zstd") == ["zstd", "-T0", "-3", "-q", "-c"]
    assert tar_stream.compressor_argv("zstd", 19) == ["zstd", "-T0", "-19", "-q", "-c"]
    assert tar_stream.compressor_argv("xz") == ["xz", "-T0", "-6", "-q", "-c"]
    with pytest.raises(ValueError):
        tar_stream.compressor_argv("zstd", 22)


def test_source_date_epoch_clamps_and_is_an_input(capsys, env):
    root, out, fake, _info = env
    args = dict(root=str(root), dest=str(out / "image.tar.zst"), source_date_epoch=1764000000)
    assert run_module(capsys, args)["changed"]
    assert fake.calls[0] == expected_tar(root, [], epoch=1764000000)
    assert not run_module(capsys, args)["changed"] and len(fake.calls) == 2
    # Another date is another tarball: packed again.
    assert run_module(capsys, dict(args, source_date_epoch=1764000001))["packed"] and len(fake.calls) == 4


def test_packs_hashes_while_streaming_then_not_changed(capsys, env):
    root, out, fake, _info = env
    (out).mkdir()
    (out / "build-report.json").write_text("{}")
    args = dict(root=str(root), dest=str(out / "image.tar.zst"), excludes=["var/tmp/*"],
                checksum_files=["build-report.json"])
    first = run_module(capsys, args)
    assert fake.calls == [expected_tar(root, ["./var/tmp/*"]), ["zstd", "-T0", "-3", "-q", "-c"]]
    sha = hashlib.sha512(PAYLOAD).hexdigest()
    assert first["changed"] and first["packed"] and first["sha512"] == sha and first["size"] == len(PAYLOAD)
    assert (out / "image.tar.zst").read_bytes() == PAYLOAD
    report_sha = hashlib.sha512(b"{}").hexdigest()
    assert (out / "SHA512SUMS").read_text() == "%s  build-report.json\n%s  image.tar.zst\n" % (report_sha, sha)
    assert not [n for n in os.listdir(out) if n.endswith(".partial")]

    second = run_module(capsys, args)
    assert not second["changed"] and not second["packed"] and second["sha512"] == sha
    assert len(fake.calls) == 2  # nothing ran

    # Other excludes are other inputs: packed again.
    third = run_module(capsys, dict(args, excludes=[]))
    assert third["changed"] and third["packed"] and len(fake.calls) == 4

    forced = run_module(capsys, dict(args, excludes=[], force=True))
    assert forced["changed"] and forced["packed"] and len(fake.calls) == 6


def test_only_sums_rewritten_when_report_changes(capsys, env):
    root, out, fake, _info = env
    out.mkdir()
    (out / "build-report.json").write_text("{}")
    args = dict(root=str(root), dest=str(out / "image.tar.zst"), checksum_files=["build-report.json"])
    run_module(capsys, args)
    (out / "build-report.json").write_text('{"timings": 1}')
    res = run_module(capsys, args)
    assert res["changed"] and not res["packed"] and len(fake.calls) == 2
    assert hashlib.sha512(b'{"timings": 1}').hexdigest() in (out / "SHA512SUMS").read_text()


def test_xz(capsys, env):
    root, out, fake, _info = env
    res = run_module(capsys, dict(root=str(root), dest=str(out / "image.tar.xz"), compression="xz", level=9))
    assert res["changed"] and fake.calls[1] == ["xz", "-T0", "-9", "-q", "-c"]


def test_failed_compressor_leaves_nothing(capsys, env, monkeypatch):
    root, out, _fake, _info = env
    failing = FakePopen(fail="zstd")
    monkeypatch.setattr(tar_stream, "POPEN", failing)
    res = run_module(capsys, dict(root=str(root), dest=str(out / "image.tar.zst")))
    assert res["failed"] and res["rc"] == 2 and res["cmd"] == ["zstd", "-T0", "-3", "-q", "-c"]
    assert "boom" in res["stderr"]
    assert os.listdir(out) == []


def test_check_mode_writes_nothing(capsys, env):
    root, out, fake, _info = env
    res = run_module(capsys, dict(root=str(root), dest=str(out / "image.tar.zst")), check=True)
    assert res["changed"] and res["packed"] and fake.calls == [] and not out.exists()


@pytest.mark.parametrize("case", ["mounted", "dest_inside", "suffix"])
def test_refusals(capsys, env, case):
    root, out, fake, info = env
    dest = out / "image.tar.zst"
    if case == "mounted":
        info.write_text("22 1 0:21 / %s/proc rw - proc proc rw\n" % root)
    elif case == "dest_inside":
        dest = root / "image.tar.zst"
    else:
        dest = out / "image.tar.gz"
    res = run_module(capsys, dict(root=str(root), dest=str(dest)))
    assert res["failed"] and fake.calls == [] and not dest.exists()


def test_listed_files_stay_covered_until_they_disappear(capsys, env):
    root, out, _fake, _info = env
    out.mkdir()
    (out / "build-report.json").write_text("{}")
    args = dict(root=str(root), dest=str(out / "image.tar.zst"))
    run_module(capsys, dict(args, checksum_files=["build-report.json"]))
    # A later call without checksum_files keeps the report covered: not changed.
    assert not run_module(capsys, args)["changed"]
    assert "build-report.json" in (out / "SHA512SUMS").read_text()
    os.unlink(out / "build-report.json")
    res = run_module(capsys, args)
    assert res["changed"] and "build-report.json" not in (out / "SHA512SUMS").read_text()


# Signing in the same pass: gpg is a stand-in that copies what it reads on stdin
# into the --output file (so the test sees exactly which bytes it was given) and
# prints the SIG_CREATED status line gpg prints; its list-secret-keys and the
# SHA512SUMS signature go through run_command, recorded the same way.
FPR = "A" * 40
SUBKEY = "B" * 40
COLONS = ("sec:u:255:22:%s:1:::u:::cC:::+:::ed25519:::0:\nfpr:::::::::%s:\n"
          "ssb:u:255:22:%s:1::::::s:::+:::ed25519::\nfpr:::::::::%s:\n" % (FPR[-16:], FPR, SUBKEY[-16:], SUBKEY))


class SigningPopen(FakePopen):
    def __init__(self, gpg="sign", signer=SUBKEY):
        super().__init__()
        self.gpg, self.signer = gpg, signer

    def __call__(self, argv, **kw):
        if argv[0] != "gpg":
            return super().__call__(argv, **kw)
        self.calls.append(argv)
        out = argv[argv.index("--output") + 1]
        if self.gpg == "fail":  # a key gpg cannot use: it reads, then refuses to sign
            script = 'cat >/dev/null; echo "gpg: signing failed: No passphrase given" >&2; exit 2'
        elif self.gpg == "hang":  # never finishes on its own: only the module's kill ends it
            script = 'cat > "$1"; sleep 60'
        else:
            script = 'cat > "$1"; echo "[GNUPG:] SIG_CREATED D 22 8 00 1795000000 $2"'
        return subprocess.Popen(["sh", "-c", script, "sh", out, self.signer], **kw)


class RecordingRun:
    def __init__(self):
        self.calls = []

    def __call__(self, module, argv, data=None, binary_data=False, **kw):
        self.calls.append(argv)
        if "--list-secret-keys" in argv:
            return 0, COLONS, ""
        if "--detach-sign" in argv:
            with open(argv[-1], "rb") as src, open(argv[argv.index("--output") + 1], "wb") as out:
                out.write(src.read())
            return 0, "[GNUPG:] SIG_CREATED D 22 8 00 1795000000 %s\n" % SUBKEY, ""
        raise AssertionError(argv)


def signer_argv(home, out, tail=()):
    return ["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--homedir", home, "--local-user", "KEY",
            "--status-fd", "1", "--armor", "--detach-sign", "--output", out] + list(tail)


# signing_key is the name the three signing modules share; sign_key, pack's
# former name, stays an alias.
@pytest.fixture(params=["signing_key", "sign_key"])
def signing(env, monkeypatch, tmp_path, request):
    root, out, _fake, _info = env
    popen = SigningPopen()
    monkeypatch.setattr(tar_stream, "POPEN", popen)
    run = RecordingRun()
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, *a, **kw: run(self, *a, **kw))
    home = str(tmp_path / "gnupg")
    args = {"root": str(root), "dest": str(out / "image.tar.zst"), request.param: "KEY", "gnupghome": home}
    return args, out, popen, run, home


def test_signs_in_the_same_pass_then_not_changed(capsys, signing):
    args, out, popen, run, home = signing
    res = run_module(capsys, args)
    tarball, sums = str(out / "image.tar.zst"), str(out / "SHA512SUMS")
    assert popen.calls == [expected_tar(args["root"], []), ["zstd", "-T0", "-3", "-q", "-c"],
                           signer_argv(home, str(out / ".image.tar.zst.asc.partial"))]
    assert run.calls == [
        ["gpg", "--batch", "--homedir", home, "--with-colons", "--with-keygrip", "--list-secret-keys", "--", "KEY"],
        signer_argv(home, str(out / ".SHA512SUMS.asc.partial"), [sums]),
    ]
    # gpg was given exactly the bytes that were written and hashed.
    assert (out / "image.tar.zst.asc").read_bytes() == PAYLOAD == (out / "image.tar.zst").read_bytes()
    assert (out / "SHA512SUMS.asc").read_bytes() == (out / "SHA512SUMS").read_bytes()
    assert res["changed"] and res["signed"] == [tarball, sums] and res["fingerprint"] == FPR
    assert sorted(os.listdir(out)) == [".image.tar.zst.pack.json", "SHA512SUMS", "SHA512SUMS.asc",
                                       "image.tar.zst", "image.tar.zst.asc"]

    again = run_module(capsys, args)
    assert not again["changed"] and again["signed"] == [] and len(popen.calls) == 3
    assert len(run.calls) == 3  # the key lookup only


def test_check_mode_says_it_would_sign(capsys, signing):
    args, out, popen, run, _home = signing
    res = run_module(capsys, args, check=True)
    assert res["changed"] and res["signed"] == [str(out / "image.tar.zst")]
    assert popen.calls == [] and run.calls == [] and not out.exists()


@pytest.mark.parametrize("gpg", ["fail", "other_key"])
def test_signer_failure_leaves_no_tarball_and_no_signature(capsys, signing, monkeypatch, gpg):
    args, out, _popen, _run, home = signing
    (out).mkdir()
    (out / "image.tar.zst").write_bytes(b"previous")
    (out / "image.tar.zst.asc").write_bytes(b"signature of previous")
    popen = SigningPopen(gpg="fail") if gpg == "fail" else SigningPopen(signer="C" * 40)
    monkeypatch.setattr(tar_stream, "POPEN", popen)
    res = run_module(capsys, dict(args, force=True))
    assert res["failed"] and res["cmd"] == signer_argv(home, str(out / ".image.tar.zst.asc.partial"))
    if gpg == "fail":
        assert res["rc"] == 2 and "No passphrase" in res["stderr"]
    # The previous pair is untouched; nothing new claims success.
    assert sorted(os.listdir(out)) == ["image.tar.zst", "image.tar.zst.asc"]
    assert (out / "image.tar.zst").read_bytes() == b"previous"


def test_interrupted_pack_leaves_no_signature(capsys, signing, monkeypatch):
    args, out, _popen, _run, _home = signing
    popen = SigningPopen(gpg="hang")
    monkeypatch.setattr(tar_stream, "POPEN", popen)
    started = []
    real_popen = subprocess.Popen

    def remember(argv, **kw):
        started.append(real_popen(argv, **kw))
        return started[-1]

    monkeypatch.setattr(subprocess, "Popen", remember)

    def interrupt(*a, **kw):
        raise KeyboardInterrupt  # as SIGINT does in the middle of the stream

    monkeypatch.setattr(tar_stream, "_write_all", interrupt)
    with patch_module_args(args), pytest.raises(KeyboardInterrupt):
        pack.main()
    started = [p for p in started if p.args[0] != "find"]  # the root's listing (root_manifest), before the stream
    assert [p.args[0] for p in started] == ["printf", "cat", "sh"]
    assert all(p.returncode is not None for p in started)  # killed and reaped, gpg's stand-in included
    assert sorted(os.listdir(out)) == []  # no tarball, no signature, no partial file


def test_repacking_without_key_drops_the_old_signature(capsys, env):
    root, out, _fake, _info = env
    out.mkdir()
    (out / "image.tar.zst.asc").write_text("covers the previous tarball")
    (out / "SHA512SUMS.asc").write_text("covers the previous sums")
    res = run_module(capsys, dict(root=str(root), dest=str(out / "image.tar.zst")))
    assert res["changed"] and res["signed"] == []
    assert sorted(os.listdir(out)) == [".image.tar.zst.pack.json", "SHA512SUMS", "image.tar.zst"]


# A rebuild with nothing changed: the root's last tarball is taken over, not packed again.

def test_unchanged_root_takes_the_last_tarball_over(capsys, env):
    root, out, fake, _info = env
    (root / "etc/hostname").write_text("lab\n")
    first = run_module(capsys, dict(root=str(root), source_date_epoch=1_700_000_000, dest=str(out / "v1/image.tar.zst")))
    assert first["packed"] and len(fake.calls) == 2
    # The build made and removed a temporary file in a directory: with its time clamped to the
    # stage's date, the directory is what it was.
    (root / "etc/resolv.conf").write_text("nameserver 127.0.0.1\n")
    os.unlink(root / "etc/resolv.conf")
    second = run_module(capsys, dict(root=str(root), source_date_epoch=1_700_000_000, dest=str(out / "v2/image.tar.zst")))
    assert second["changed"] and not second["packed"] and second["reused"] == str(out / "v1/image.tar.zst")
    assert len(fake.calls) == 2  # neither tar nor the compressor ran
    assert second["sha512"] == first["sha512"] and second["size"] == first["size"]
    assert os.path.samefile(out / "v1/image.tar.zst", out / "v2/image.tar.zst")
    assert (out / "v2/SHA512SUMS").read_text() == (out / "v1/SHA512SUMS").read_text()
    assert not run_module(capsys, dict(root=str(root), source_date_epoch=1_700_000_000, dest=str(out / "v2/image.tar.zst")))["changed"]

    # A file written again (even with the same content) is a change: packed, never a stale image.
    (root / "etc/hostname").write_text("lab\n")
    third = run_module(capsys, dict(root=str(root), source_date_epoch=1_700_000_000, dest=str(out / "v3/image.tar.zst")))
    assert third["packed"] and "reused" not in third and len(fake.calls) == 4
    # The same destination is packed again too once the root changed.
    (root / "etc/hostname").write_text("lab2\n")
    assert run_module(capsys, dict(root=str(root), source_date_epoch=1_700_000_000, dest=str(out / "v3/image.tar.zst")))["packed"]
    assert len(fake.calls) == 6


def test_touched_tarball_or_other_inputs_are_not_taken_over(capsys, env):
    root, out, fake, _info = env
    args = dict(root=str(root), dest=str(out / "v1/image.tar.zst"))
    run_module(capsys, args)
    assert run_module(capsys, dict(args, dest=str(out / "v2/image.tar.zst"), level=5))["packed"]
    with open(out / "v2/image.tar.zst", "r+b") as f:  # the recorded tarball changed afterwards
        f.write(b"X")
    assert run_module(capsys, dict(args, dest=str(out / "v3/image.tar.zst"), level=5))["packed"]
    assert run_module(capsys, dict(args, dest=str(out / "v4/image.tar.zst"), level=5, force=True))["packed"]
    planned = run_module(capsys, dict(args, dest=str(out / "v5/image.tar.zst"), level=5), check=True)
    assert planned["changed"] and planned["reused"] == str(out / "v4/image.tar.zst") and not (out / "v5").exists()
    assert len(fake.calls) == 8


def test_signed_tarball_taken_over_with_its_signature(capsys, signing, monkeypatch):
    args, out, popen, run, _home = signing
    first = run_module(capsys, dict(args, dest=str(out / "v1/image.tar.zst")))
    assert first["signed"] == [str(out / "v1/image.tar.zst"), str(out / "v1/SHA512SUMS")]
    second = run_module(capsys, dict(args, dest=str(out / "v2/image.tar.zst")))
    assert second["reused"] == str(out / "v1/image.tar.zst") and second["signatures_reused"] == [
        str(out / "v2/image.tar.zst")]
    assert second["signed"] == [str(out / "v2/SHA512SUMS")] and len(popen.calls) == 3
    assert os.path.samefile(out / "v1/image.tar.zst.asc", out / "v2/image.tar.zst.asc")
    # Another signing key: the old signature is not the one asked for.
    other = COLONS.replace("A" * 40, "D" * 40).replace(SUBKEY, "E" * 40)

    def other_key(self, argv, **kw):
        if "--list-secret-keys" in argv:
            return 0, other, ""
        rc, out, err = run(self, argv, **kw)
        return rc, out.replace(SUBKEY, "E" * 40), err

    monkeypatch.setattr(basic.AnsibleModule, "run_command", other_key)
    monkeypatch.setattr(tar_stream, "POPEN", SigningPopen(signer="E" * 40))
    third = run_module(capsys, dict(args, dest=str(out / "v3/image.tar.zst")))
    assert third["packed"] and "reused" not in third


# The root's listing runs beside tar when packing is certain (root_manifest.Listing).

class LateListing(root_manifest.Listing):
    """Lists the root only when its digest is asked for, after tar has started.

    The real find races tar and may reach an entry before or after tar does;
    this double makes it always after, the order the change time check exists for.
    """

    def __init__(self, root, preexec_fn=None):
        self.root, self.argv, self.proc = root, root_manifest.find_argv(root), None

    def digest(self, source_date_epoch=None, exclude_patterns=(), since=None):
        return root_manifest.digest(self.root, source_date_epoch, exclude_patterns, since)

    def close(self):
        pass


class ChangingPopen(FakePopen):
    """tar's stand-in changes the root as it starts: the build still writing into it."""

    def __call__(self, argv, **kw):
        if argv[0] == "tar":
            with open(os.path.join(argv[3].split("=", 1)[1], "etc/late"), "w") as f:
                f.write("x")
        return super().__call__(argv, **kw)


def test_root_changed_while_packing_is_packed_again(capsys, env, monkeypatch):
    root, out, _fake, _info = env
    monkeypatch.setattr(root_manifest, "Listing", LateListing)
    changing = ChangingPopen()
    monkeypatch.setattr(tar_stream, "POPEN", changing)
    args = dict(root=str(root), dest=str(out / "image.tar.zst"))
    assert run_module(capsys, args)["packed"]
    assert json.loads((out / ".image.tar.zst.pack.json").read_text())["manifest"] is None
    fake = FakePopen()
    monkeypatch.setattr(tar_stream, "POPEN", fake)
    # The listing saw the new file, but tar may not have: nothing recorded can stand for this root.
    assert run_module(capsys, args)["packed"] and len(fake.calls) == 2
    assert not run_module(capsys, args)["changed"] and len(fake.calls) == 2


def test_failed_listing_beside_tar_leaves_nothing(capsys, env, monkeypatch):
    root, out, fake, _info = env

    class Failing(LateListing):
        def digest(self, *a, **kw):
            raise root_manifest.ManifestError("listing %s failed" % self.root, self.argv, 1, "find: boom")

    monkeypatch.setattr(root_manifest, "Listing", Failing)
    res = run_module(capsys, dict(root=str(root), dest=str(out / "image.tar.zst")))
    assert res["failed"] and res["cmd"][0] == "find" and res["rc"] == 1 and "boom" in res["stderr"]
    assert len(fake.calls) == 2 and os.listdir(out) == []


def test_hashes_every_byte_the_compressor_writes_late(capsys, env, monkeypatch):
    root, out, _fake, _info = env

    class SlowPopen(FakePopen):
        """The compressor writes, pauses longer than the reader waits, and writes the rest before it ends."""

        def __call__(self, argv, **kw):
            if argv[0] == "zstd":
                self.calls.append(argv)
                return subprocess.Popen(["sh", "-c", "cat; sleep 0.2; printf tail; sleep 0.1; printf end"], **kw)
            return super().__call__(argv, **kw)

    monkeypatch.setattr(tar_stream, "POPEN", SlowPopen())
    res = run_module(capsys, dict(root=str(root), dest=str(out / "image.tar.zst")))
    written = (out / "image.tar.zst").read_bytes()
    assert written == PAYLOAD + b"tailend"
    assert res["sha512"] == hashlib.sha512(written).hexdigest() and res["size"] == len(written)


def _priorities_around_a_stream(tmp, conn):
    """In a forked child (this test process keeps its priority): tar's, the reader's and afterwards."""
    seen = {}

    def beside():
        seen["reader"] = os.getpriority(os.PRIO_PROCESS, 0)
        seen["listing"] = subprocess.run(["nice"], preexec_fn=tar_stream.beside_stream(), capture_output=True,
                                         text=True, check=True).stdout.strip()
    out = os.path.join(tmp, "image")
    # tar and the compressor each write their niceness into the stream.
    tar_stream.stream_to_file(["sh", "-c", "nice"], ["sh", "-c", "cat; nice"], out, while_streaming=beside)
    with open(out) as f:
        seen["tar"], seen["compressor"] = f.read().split()
    seen["after"] = os.getpriority(os.PRIO_PROCESS, 0)
    seen["root"] = os.geteuid() == 0
    conn.send(seen)


def test_work_beside_the_stream_yields_to_tar_and_the_compressor(tmp_path):
    # The reader (hash) and the listing run BESIDE_NICE nicer than tar and the
    # compressor, which keep the caller's priority; the reader gets it back
    # once the compressor has ended.  What this cannot show: that it helps;
    # bench/run measures that.
    import multiprocessing
    base = os.getpriority(os.PRIO_PROCESS, 0)
    ctx = multiprocessing.get_context("fork")
    parent, child = ctx.Pipe()
    proc = ctx.Process(target=_priorities_around_a_stream, args=(str(tmp_path), child))
    proc.start()
    # Bounded: a child that failed before sending ends with an error, not a hang.
    proc.join(120)
    assert proc.exitcode == 0 and parent.poll(), proc.exitcode
    seen = parent.recv()
    aside = min(19, base + tar_stream.BESIDE_NICE)
    assert seen["tar"] == seen["compressor"] == str(base)
    assert seen["reader"] == aside and seen["listing"] == str(min(19, aside + tar_stream.BESIDE_NICE))
    # Raising the priority again needs CAP_SYS_NICE: as root (CI) it comes back.
    assert seen["after"] == (base if seen["root"] else aside)
    assert os.getpriority(os.PRIO_PROCESS, 0) == base


def test_the_listing_beside_tar_runs_nicer(capsys, env, monkeypatch):
    root, out, _fake, _info = env
    started = []

    class Recording(root_manifest.Listing):
        def __init__(self, root, preexec_fn=None):
            started.append(subprocess.run(["nice"], preexec_fn=preexec_fn, capture_output=True, text=True,
                                          check=True).stdout.strip())
            super().__init__(root, preexec_fn=preexec_fn)

    monkeypatch.setattr(root_manifest, "Listing", Recording)
    res = run_module(capsys, dict(root=str(root), dest=str(out / "image.tar.zst")))
    assert res["changed"] and started == [str(min(19, os.getpriority(os.PRIO_PROCESS, 0) + tar_stream.BESIDE_NICE))]
