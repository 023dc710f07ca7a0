"""A recorder standing in for gpg and gpgv, for the publication modules' unit tests.

Its signature format is transparent: a detached signature is the text
``good``; a clearsigned file is the body behind a ``FAKE-CLEARSIGNED`` line.
So a test can follow the module's decisions argv by argv.  It cannot show
that real OpenPGP signatures verify: the integration tests use real keys.
tar runs for real; casync is answered by ``casync_rc`` (0: the index reads
back).
"""
import hashlib
import subprocess

from ansible_collections.gse.stateless.plugins.module_utils.checksums import format_sums

FPR = "C" * 40
MARK = "FAKE-CLEARSIGNED\n"


class FakeGpg:
    def __init__(self, casync_rc=0):
        self.calls = []
        self.casync_rc = casync_rc

    def __call__(self, module, argv, data=None, binary_data=False, **kw):
        self.calls.append(argv)
        if argv[0] == "tar":
            p = subprocess.run(argv, capture_output=True, text=True)
            return p.returncode, p.stdout, p.stderr
        if argv[0] == "gpg" and "--clearsign" in argv:
            with open(argv[-1]) as src, open(argv[argv.index("--output") + 1], "w") as out:
                out.write(MARK + src.read())
            return 0, "", ""
        if argv[0] == "gpg" and "--detach-sign" in argv:
            with open(argv[argv.index("--output") + 1], "w") as out:
                out.write("good")
            return 0, "", ""
        if argv[0] == "gpgv" and "--output" in argv:
            with open(argv[-1]) as f:
                text = f.read()
            if not text.startswith(MARK):
                return 2, "[GNUPG:] NODATA 1\n", "no signature"
            with open(argv[argv.index("--output") + 1], "w") as out:
                out.write(text[len(MARK):])
            return 0, "[GNUPG:] VALIDSIG %s x x x x x x x x %s\n" % (FPR, FPR), ""
        if argv[0] == "casync":
            return self.casync_rc, "", "" if self.casync_rc == 0 else "chunk missing"
        if argv[0] == "gpgv":
            with open(argv[-2]) as f:
                good = f.read() == "good"
            return (0, "[GNUPG:] VALIDSIG %s x x x x x x x x %s\n" % (FPR, FPR), "") if good else (1, "", "BAD")
        raise AssertionError(argv)


def make_image(d, payload=b"image-bytes", sig="good"):
    d.mkdir(parents=True)
    (d / "image.tar.zst").write_bytes(payload)
    (d / "build-report.json").write_text('{"parts": []}')
    (d / ".image.tar.zst.pack.json").write_text("{}")  # pack's record stays behind
    sums = {n: hashlib.sha512((d / n).read_bytes()).hexdigest() for n in ("image.tar.zst", "build-report.json")}
    (d / "SHA512SUMS").write_text(format_sums(sums))
    (d / "image.tar.zst.asc").write_text(sig)
    (d / "SHA512SUMS.asc").write_text("good")
    return sums["image.tar.zst"]
