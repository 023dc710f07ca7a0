# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""OpenPGP verification with gpgv: clearsigned documents and detached signatures.

gpgv is used rather than gpg because it trusts exactly the keys in the
keyring it is given and nothing else (no trust database, no agent).  Gentoo
ships its release key armored (/usr/share/openpgp-keys/gentoo-release.asc);
gpgv 2.2 reads only binary keyrings, so an armored key is dearmored into a
temporary keyring first.

The body of a clearsigned document is taken from what gpgv writes with
``--output``: text outside the signed part (or a second, unsigned message
glued to it) never reaches the caller.
"""

from __future__ import annotations

import base64
import os

from ansible_collections.gse.stateless.plugins.module_utils.command_error import VerifyError

ARMOR_BEGIN = b"-----BEGIN PGP PUBLIC KEY BLOCK-----"
CLEARSIGN_BEGIN = b"-----BEGIN PGP SIGNED MESSAGE-----"


def dearmor(data):
    """Binary OpenPGP packets from ASCII armor (RFC 4880 section 6.2).

    Every armored block in ``data`` is decoded and concatenated, so a file
    holding several keys yields a keyring with all of them.
    """
    out = b""
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    i = 0
    found = False
    while i < len(lines):
        if lines[i].strip().startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK"):
            found = True
            i += 1
            # Armor headers end at the first empty line.
            while i < len(lines) and lines[i].strip():
                if b":" not in lines[i]:
                    break
                i += 1
            body = []
            while i < len(lines) and not lines[i].startswith(b"-----END PGP"):
                line = lines[i].strip()
                # The checksum line (=XXXX) is not part of the data.
                if line and not line.startswith(b"="):
                    body.append(line)
                i += 1
            out += base64.b64decode(b"".join(body), validate=True)
        i += 1
    if not found:
        raise ValueError("no armored public key block found")
    return out


def _crc24(data):
    crc = 0xB704CE
    for byte in data:
        crc ^= byte << 16
        for _bit in range(8):
            crc <<= 1
            if crc & 0x1000000:
                crc ^= 0x1864CFB
    return crc & 0xFFFFFF


def armor(packets, block="PUBLIC KEY BLOCK"):
    """ASCII armor (RFC 4880 section 6.2) of binary packets: the inverse of ``dearmor``.

    ``block`` names the armor's kind: ``PUBLIC KEY BLOCK`` (a keyring) or
    ``SIGNATURE`` (a detached signature)."""
    body = base64.b64encode(packets).decode("ascii")
    lines = [body[i:i + 64] for i in range(0, len(body), 64)]
    crc = base64.b64encode(_crc24(packets).to_bytes(3, "big")).decode("ascii")
    return ("-----BEGIN PGP %s-----\n\n" % block + "".join(line + "\n" for line in lines) + "=" + crc + "\n"
            + "-----END PGP %s-----\n" % block)


def is_armored(path):
    with open(path, "rb") as f:
        head = f.read(4096)
    return ARMOR_BEGIN in head


def prepare_keyring(keyring, workdir):
    """Return a keyring path gpgv can read: ``keyring`` itself, or a dearmored copy in ``workdir``."""
    if not os.path.isfile(keyring):
        raise VerifyError("keyring %s does not exist (is sec-keys/openpgp-keys-gentoo-release installed?)"
                          % keyring)
    if not is_armored(keyring):
        return os.path.abspath(keyring)
    with open(keyring, "rb") as f:
        try:
            packets = dearmor(f.read())
        except ValueError as exc:
            raise VerifyError("keyring %s: %s" % (keyring, exc))
    path = os.path.join(workdir, "keyring.gpg")
    with open(path, "wb") as f:
        f.write(packets)
    return path


def gpgv_argv(gpgv, keyring, homedir, files, output=None):
    """The gpgv command line; status lines go to stdout (fd 1)."""
    argv = [gpgv, "--homedir", homedir, "--keyring", keyring, "--status-fd", "1"]
    if output:
        argv += ["--output", output]
    return argv + list(files)


def _signer(status):
    """Fingerprint from gpgv's VALIDSIG status line, or None."""
    for line in status.splitlines():
        parts = line.split()
        if len(parts) >= 3 and parts[0] == "[GNUPG:]" and parts[1] == "VALIDSIG":
            return parts[2]
    return None


def _run(run, argv, what):
    rc, out, err = run(argv)
    signer = _signer(out)
    if rc != 0 or signer is None:
        raise VerifyError("%s: OpenPGP signature did not verify" % what,
                          cmd=argv, rc=rc, stdout=out, stderr=err)
    return signer


def verify_clearsigned(run, gpgv, keyring, homedir, path, what=None):
    """Verify a clearsigned file; return (body bytes, signer fingerprint).

    Raises VerifyError when the file is not clearsigned or does not verify.
    """
    what = what or os.path.basename(path)
    with open(path, "rb") as f:
        if not f.read(len(CLEARSIGN_BEGIN) + 3).lstrip().startswith(CLEARSIGN_BEGIN):
            raise VerifyError("%s is not a clearsigned document" % what)
    out_path = os.path.join(homedir, "body-%s" % os.path.basename(path))
    if os.path.exists(out_path):
        os.unlink(out_path)
    signer = _run(run, gpgv_argv(gpgv, keyring, homedir, [path], output=out_path), what)
    with open(out_path, "rb") as f:
        body = f.read()
    os.unlink(out_path)
    return body, signer


def verify_detached(run, gpgv, keyring, homedir, signature, data, what=None):
    """Verify ``data`` against the detached ``signature``; return the signer fingerprint."""
    what = what or os.path.basename(data)
    return _run(run, gpgv_argv(gpgv, keyring, homedir, [signature, data]), what)
