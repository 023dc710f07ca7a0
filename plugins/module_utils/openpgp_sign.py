# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenPGP signing and verification through gpg and gpgv.

Commands are built here as argv lists and run by the caller's
``module.run_command`` so that modules fail with the command, rc and stderr.
Verification always goes through ``gpgv`` with an explicit keyring file: it
trusts exactly the keys of that file, and nothing in a GnuPG home (trust
database, other keys) can make a signature count.  A signature counts only
when gpgv reports ``VALIDSIG`` for the expected primary key fingerprint.

A signature gpg has just made is proved differently, by gpg's own
``SIG_CREATED`` status line (see ``created_by``): gpg-agent checks every
signature it creates against the digest before handing it out (libgcrypt does
so for RSA), the status line names the key that signed, and the caller checks
that key against the one it asked for.  Re-reading the file with gpgv right
after would only hash the same bytes again; found signatures, whose origin is
unknown, are always verified with gpgv, and publication verifies every
signature with gpgv before anything becomes visible.
"""

from __future__ import annotations

import os

from ansible_collections.gse.stateless.plugins.module_utils.command_error import SignError

STATUS = "[GNUPG:] "


def _gpg(homedir):
    return ["gpg", "--batch", "--homedir", homedir]


def _signer(homedir, key, passphrase):
    argv = ["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--homedir", homedir, "--local-user", key]
    if passphrase is not None:
        argv += ["--passphrase-fd", "0"]
    return argv


def list_secret_key_argv(homedir, key):
    return _gpg(homedir) + ["--with-colons", "--list-secret-keys", "--", key]


def export_public_argv(homedir, fingerprint, out):
    return _gpg(homedir) + ["--yes", "--output", out, "--export", fingerprint]


def detach_sign_argv(homedir, key, path, passphrase=None):
    """The brief's exact form: armored detached signature written to ``path``.asc."""
    return _signer(homedir, key, passphrase) + ["--armor", "--detach-sign", "--output", path + ".asc", path]


def detach_sign_status_argv(homedir, key, path, out, passphrase=None):
    """Armored detached signature of ``path`` written to ``out``; gpg's status lines on stdout."""
    return _signer(homedir, key, passphrase) + ["--status-fd", "1", "--armor", "--detach-sign", "--output", out,
                                                path]


def stream_sign_argv(homedir, key, out):
    """gpg signing what it reads on stdin (armored, detached) into ``out``; status lines on stdout.

    stdin carries the data, so a passphrase cannot be given here: keys used
    unattended have none (``sign`` takes a passphrase).
    """
    return _signer(homedir, key, None) + ["--status-fd", "1", "--armor", "--detach-sign", "--output", out]


def clearsign_argv(homedir, key, src, out, passphrase=None):
    return _signer(homedir, key, passphrase) + ["--clearsign", "--output", out, src]


def gpgv_argv(keyring, signature, data=None):
    """Verify a detached signature (``data`` given) or a clearsigned file; status lines go to stdout."""
    argv = ["gpgv", "--status-fd", "1", "--keyring", keyring, signature]
    return argv + [data] if data else argv


def gpgv_clearsigned_argv(keyring, path, out):
    """Verify a clearsigned file and write only its verified body to ``out``."""
    return ["gpgv", "--status-fd", "1", "--keyring", keyring, "--output", out, path]


def key_fingerprints(colons):
    """(primary fingerprint, fingerprints of the primary key and its subkeys) from ``--with-colons
    --list-secret-keys``; exactly one secret key must match."""
    keys = []
    kind = None
    for line in colons.splitlines():
        fields = line.split(":")
        if fields[0] in ("sec", "ssb", "sub"):
            kind = fields[0]
        elif fields[0] == "fpr" and kind:
            if kind == "sec":
                keys.append((fields[9], {fields[9]}))
            elif keys:
                keys[-1][1].add(fields[9])
            kind = None
    if len(keys) != 1:
        raise ValueError("%d secret keys match" % len(keys))
    return keys[0]


def primary_fingerprint(colons):
    """The primary key fingerprint from ``--with-colons --list-secret-keys``; one key must match."""
    return key_fingerprints(colons)[0]


def created_by(status, fingerprints):
    """True when gpg's status output reports exactly one detached signature, made by one of ``fingerprints``.

    ``SIG_CREATED <type> <pk algo> <hash algo> <class> <time> <key fingerprint>``;
    type ``D`` is a detached signature.  gpg prints it only after the signature
    was made (and checked by gpg-agent); the fingerprint is that of the key
    (or subkey) that signed.
    """
    created = []
    for line in status.splitlines():
        if line.startswith(STATUS):
            fields = line[len(STATUS):].split()
            if fields and fields[0] == "SIG_CREATED":
                created.append(fields)
    return (len(created) == 1 and len(created[0]) >= 7 and created[0][1] == "D"
            and created[0][6] in fingerprints)


def valid_signers(status):
    """Primary key fingerprints with a good signature in gpgv's status output."""
    signers = set()
    for line in status.splitlines():
        if not line.startswith(STATUS):
            continue
        fields = line[len(STATUS):].split()
        if fields and fields[0] == "VALIDSIG" and len(fields) >= 2:
            # The primary key's fingerprint is the last field; without it the signing key is the primary.
            signers.add(fields[10] if len(fields) >= 11 else fields[1])
    return signers


def signing_key(run, homedir, key):
    """(primary fingerprint, fingerprints of the key and its subkeys) of the signing key.

    SignError when the key is not in the secret keyring or matches more than one key.
    """
    cmd = list_secret_key_argv(homedir, key)
    rc, out, err = run(cmd)
    try:
        if rc != 0:
            raise ValueError("not found")
        return key_fingerprints(out)
    except ValueError as e:
        raise SignError("signing key %r: %s in the secret keyring of %s" % (key, e, homedir),
                        cmd, rc, out, err) from None


def secret_key(run, homedir, key):
    """Primary fingerprint of the signing key; SignError when the key is not in the secret keyring."""
    return signing_key(run, homedir, key)[0]


def export_keyring(run, homedir, fingerprint, out):
    cmd = export_public_argv(homedir, fingerprint, out)
    rc, so, se = run(cmd)
    if rc != 0:
        raise SignError("cannot export the public key %s" % fingerprint, cmd, rc, so, se)


def signed_by(run, keyring, fingerprint, signature, data=None):
    """True when gpgv finds a good signature by ``fingerprint`` (primary key)."""
    rc, out, _err = run(gpgv_argv(keyring, signature, data))
    return rc == 0 and fingerprint in valid_signers(out)


def sign_file(run, homedir, key, path, fingerprints, passphrase=None):
    """Write ``path``.asc: gpg signs into a temporary file, renamed once SIG_CREATED proves the signature.

    ``fingerprints`` are those of the signing key (``signing_key``).  Nothing
    is left behind when gpg fails or reports no signature by that key.
    """
    asc = path + ".asc"
    tmp = os.path.join(os.path.dirname(asc), ".%s.partial" % os.path.basename(asc))
    argv = detach_sign_status_argv(homedir, key, path, tmp, passphrase)
    try:
        rc, out, err = run(argv, passphrase)
        if rc != 0 or not created_by(out, fingerprints):
            raise SignError("gpg made no signature of %s by the signing key" % path, argv, rc, out, err)
        os.rename(tmp, asc)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)
