# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenPGP verification of a git commit or tag against exactly one keyring.

git verifies signatures by running gpg, which trusts whatever the caller's
GnuPG home holds.  Here the home is a fresh directory holding only the keys
of the given keyring (Gentoo's /usr/share/openpgp-keys/gentoo-release.asc
signs the ebuild repository's commits too), and the signature is accepted
only when gpg reports it good and made by one of those keys: the primary
key fingerprint of the VALIDSIG status line must be in the keyring.

``run(argv, env=None)`` is the caller's command runner returning
``(rc, stdout, stderr)``; every failure raises VerifyError with the command.
"""

from __future__ import annotations

import os
import shutil
import tempfile

from ansible_collections.gse.stateless.plugins.module_utils.command_error import VerifyError

# Status keywords that mean the signature must not be accepted, whatever else
# gpg printed (a second, bad signature next to a good one, for example).
REFUSING = ("BADSIG", "ERRSIG", "EXPSIG", "EXPKEYSIG", "REVKEYSIG", "NO_PUBKEY")


class CleanHome(object):
    """A temporary GnuPG home holding only ``keyring``'s keys; a context manager.

    ``fingerprints`` lists the primary key fingerprints it holds."""

    def __init__(self, run, gpg, keyring, parent=None):
        self.run = run
        self.gpg = gpg
        self.keyring = keyring
        self.parent = parent
        self.path = None
        self.fingerprints = []

    def _gpg(self, *args):
        return [self.gpg, "--batch", "--no-tty", "--homedir", self.path] + list(args)

    def __enter__(self):
        if not os.path.isfile(self.keyring):
            raise VerifyError("keyring %s does not exist (is sec-keys/openpgp-keys-gentoo-release installed?)"
                              % self.keyring)
        self.path = tempfile.mkdtemp(prefix="gse-gnupg-", dir=self.parent)
        os.chmod(self.path, 0o700)
        argv = self._gpg("--import", self.keyring)
        rc, out, err = self.run(argv)
        if rc != 0:
            raise VerifyError("could not import the keyring %s" % self.keyring, cmd=argv, rc=rc,
                              stdout=out, stderr=err)
        argv = self._gpg("--with-colons", "--list-keys")
        rc, out, err = self.run(argv)
        self.fingerprints = primary_fingerprints(out)
        if rc != 0 or not self.fingerprints:
            raise VerifyError("the keyring %s holds no public key" % self.keyring, cmd=argv, rc=rc,
                              stdout=out, stderr=err)
        return self

    def __exit__(self, *exc):
        if self.path:
            # gpg may have started an agent whose sockets live in the home.
            self.run(["gpgconf", "--homedir", self.path, "--kill", "all"])
            shutil.rmtree(self.path, ignore_errors=True)
        return False


def primary_fingerprints(colons):
    """Fingerprints of the primary keys in ``gpg --with-colons --list-keys`` output."""
    found = []
    primary = False
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] == "pub":
            primary = True
        elif fields[0] == "sub":
            primary = False
        elif fields[0] == "fpr" and primary and len(fields) > 9:
            found.append(fields[9])
            primary = False
    return found


def status_signer(status):
    """(primary fingerprint, refusing keywords) from gpg's status lines."""
    signer = None
    refused = []
    for line in status.splitlines():
        parts = line.split()
        if len(parts) < 2 or parts[0] != "[GNUPG:]":
            continue
        if parts[1] == "VALIDSIG" and len(parts) >= 3:
            # VALIDSIG <fpr> <date> <ts> <expire> <ver> <reserved> <pkalgo>
            # <hashalgo> <class> <primary-fpr>; older gpg omit the last.
            signer = parts[11] if len(parts) >= 12 else parts[2]
        elif parts[1] in REFUSING:
            refused.append(parts[1])
    return signer, refused


def object_type(run, git, gitdir, obj):
    argv = [git, "-C", gitdir, "cat-file", "-t", obj]
    rc, out, err = run(argv)
    if rc != 0:
        raise VerifyError("%s is not an object of %s" % (obj, gitdir), cmd=argv, rc=rc, stdout=out, stderr=err)
    return out.strip()


def verify(run, git, gpg, gitdir, obj, home):
    """Verify the signature of ``obj`` (a commit, or an annotated tag) in ``gitdir``.

    Returns ``dict(object=..., type=..., signer=...)``; raises VerifyError
    when it is unsigned, badly signed or signed by a key outside the home."""
    kind = object_type(run, git, gitdir, obj)
    if kind not in ("commit", "tag"):
        raise VerifyError("%s is a %s, not a commit or a tag" % (obj, kind))
    argv = [git, "-c", "gpg.program=%s" % gpg, "-C", gitdir,
            "verify-tag" if kind == "tag" else "verify-commit", "--raw", obj]
    rc, out, err = run(argv, env={"GNUPGHOME": home.path})
    # git writes gpg's status lines (--raw) to stderr.
    signer, refused = status_signer(err + "\n" + out)
    if rc != 0 or signer is None or refused:
        why = "has no good signature by a key of %s (%s)" % (
            home.keyring, ", ".join(refused) or ("unsigned" if signer is None else "rc=%d" % rc))
        raise VerifyError("%s %s of %s %s" % (kind, obj, gitdir, why), cmd=argv, rc=rc, stdout=out, stderr=err)
    if signer not in home.fingerprints:
        raise VerifyError("%s %s of %s is signed by %s, which is not in %s"
                          % (kind, obj, gitdir, signer, home.keyring), cmd=argv, rc=rc, stdout=out, stderr=err)
    return dict(object=obj, type=kind, signer=signer)
