# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A detached OpenPGP signature over a SHA-512 state that has already hashed the data.

An OpenPGP (RFC 4880, version 4) signature of a binary document signs
``SHA512(data || signature header || trailer)``.  The pack streams the
compressed image through one SHA-512 anyway (for SHA512SUMS); a copy of that
state, finished with the header and trailer, is the digest to sign.  So the
tarball is hashed once, not a second time inside gpg.

The private key never leaves gpg-agent: the digest goes to the agent of the
GnuPG home over its Assuan socket (``SIGKEY``, ``SETHASH``, ``PKSIGN``, as gpg
itself does it), with ``pinentry-mode=cancel`` so that a key with a passphrase
fails at once instead of waiting for a pinentry.  This file builds the
signature packet around the agent's answer and armors it.

The signing key is the one gpg would choose for ``--local-user``: the newest
usable key or subkey of the matching secret key that may sign and whose secret
part is present.  RSA and EdDSA (ed25519) keys are signed this way; for any
other algorithm ``choose_key`` returns None and the caller lets gpg read the
stream itself.

No signature made here is trusted on its own word: the pack's caller has gpgv
verify every signature (part L, before anything is published).
"""

from __future__ import annotations

import hashlib
import socket
import struct
import time

from ansible_collections.gse.stateless.plugins.module_utils.openpgp import armor as _armor

SHA512 = 10  # OpenPGP's (and libgcrypt's) number for SHA-512
RSA, EDDSA = 1, 22
SIGNABLE = (RSA, EDDSA)


class AgentError(Exception):
    def __init__(self, msg, cmd=None, stdout=""):
        super().__init__(msg)
        self.msg, self.cmd, self.stdout = msg, cmd, stdout


class Key:
    """The key (or subkey) that signs: fingerprint, keygrip and public key algorithm."""

    def __init__(self, fingerprint, keygrip, algo):
        self.fingerprint, self.keygrip, self.algo = fingerprint, keygrip, algo

    @property
    def keyid(self):
        return bytes.fromhex(self.fingerprint[-16:])


def choose_key(colons):
    """The signing key from ``gpg --with-colons --with-keygrip --list-secret-keys`` of exactly one key.

    Usable: not revoked, expired or disabled, may sign (``s`` in its
    capabilities), secret part present (``+``).
    None when no usable key has an algorithm signed here.
    """
    keys, cur = [], None
    for line in colons.splitlines():
        f = line.split(":")
        if f[0] in ("sec", "ssb"):
            cur = dict(validity=f[1], algo=int(f[3] or 0), created=int(f[5] or 0), caps=f[11],
                       secret=f[14] if len(f) > 14 else "", fpr=None, grip=None)
            keys.append(cur)
        elif f[0] in ("pub", "sub", "uid"):
            cur = None
        elif cur is not None and f[0] == "fpr" and cur["fpr"] is None:
            cur["fpr"] = f[9]
        elif cur is not None and f[0] == "grp" and cur["grip"] is None:
            cur["grip"] = f[9]
    if keys and "D" in keys[0]["caps"]:
        return None  # the whole key is disabled
    usable = [k for k in keys if k["validity"] not in ("r", "e", "d", "i") and "s" in k["caps"]
              and k["secret"] == "+" and k["fpr"] and k["grip"]]
    # As gpg chooses: a usable subkey before the primary key, the newest
    # subkey (the first listed of equally new ones).
    subkeys = [k for k in usable if k is not keys[0]]
    if subkeys:
        best = subkeys[0]
        for k in subkeys[1:]:
            if k["created"] > best["created"]:
                best = k
    elif usable:
        best = usable[0]
    else:
        return None
    return Key(best["fpr"], best["grip"], best["algo"]) if best["algo"] in SIGNABLE else None


def list_key_argv(homedir, key):
    return ["gpg", "--batch", "--homedir", homedir, "--with-colons", "--with-keygrip", "--list-secret-keys", "--",
            key]


def agent_socket_argv(homedir):
    return ["gpgconf", "--homedir", homedir, "--list-dirs", "agent-socket"]


def _subpacket(kind, data):
    body = bytes([kind]) + data
    if len(body) >= 192:
        raise ValueError("subpacket too long")
    return bytes([len(body)]) + body


def signature_header(key, created):
    """Version 4, binary document, the key's algorithm, SHA-512; hashed: creation time, issuer fingerprint."""
    hashed = _subpacket(2, struct.pack(">I", created)) + _subpacket(33, b"\x04" + bytes.fromhex(key.fingerprint))
    return bytes([4, 0x00, key.algo, SHA512]) + struct.pack(">H", len(hashed)) + hashed


def digest_to_sign(state, header):
    """Finish a copy of ``state`` (a hashlib SHA-512 over the data) with the header and the v4 trailer."""
    h = state.copy()
    h.update(header + b"\x04\xff" + struct.pack(">I", len(header)))
    return h.digest()


def _mpi(value):
    value = value.lstrip(b"\0")
    bits = (len(value) - 1) * 8 + value[0].bit_length() if value else 0
    return struct.pack(">H", bits) + value


def signature_packet(key, header, digest, values):
    """The signature packet: header, unhashed issuer key id, the digest's first two bytes, the MPIs."""
    unhashed = _subpacket(16, key.keyid)
    body = header + struct.pack(">H", len(unhashed)) + unhashed + digest[:2] + b"".join(_mpi(v) for v in values)
    if len(body) < 256:
        return bytes([0x88, len(body)]) + body  # old format, tag 2, one length byte
    return bytes([0x89]) + struct.pack(">H", len(body)) + body


def armor(packet):
    """The ASCII armor of a signature packet."""
    return _armor(packet, "SIGNATURE")


def parse_sexp(data):
    """A canonical S-expression (``(3:abc(1:x2:yz))``) as nested lists of bytes."""
    def parse(i):
        out = []
        while i < len(data):
            c = data[i:i + 1]
            if c == b"(":
                sub, i = parse(i + 1)
                out.append(sub)
            elif c == b")":
                return out, i + 1
            else:
                colon = data.index(b":", i)
                n = int(data[i:colon])
                out.append(data[colon + 1:colon + 1 + n])
                i = colon + 1 + n
        return out, i
    return parse(0)[0]


def sig_values(sexp, algo):
    """The signature's numbers from the agent's ``(sig-val (<algo> (r ..)(s ..)))``, in packet order."""
    try:
        (sig,) = sexp
        if sig[0] != b"sig-val":
            raise ValueError(sig[0])
        params = {p[0]: p[1] for p in sig[1][1:]}
        return [params[b"s"]] if algo == RSA else [params[b"r"], params[b"s"]]
    except (ValueError, KeyError, IndexError, TypeError):
        raise AgentError("gpg-agent gave no %s signature: %r" % ("RSA" if algo == RSA else "EdDSA", sexp)) from None


def _unescape(line):
    out, i = bytearray(), 0
    while i < len(line):
        if line[i:i + 1] == b"%":
            out.append(int(line[i + 1:i + 3], 16))
            i += 3
        else:
            out.append(line[i])
            i += 1
    return bytes(out)


class Agent:
    """One Assuan connection to gpg-agent, bounded by ``timeout`` seconds per reply."""

    def __init__(self, path, timeout=60):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.transcript = []
        self.status = None  # a list collects the status lines of the next commands
        try:
            self.sock.connect(path)
        except OSError as e:
            self.sock.close()
            raise AgentError("cannot reach gpg-agent at %s: %s" % (path, e)) from None
        self._reply("(connect)")

    def _line(self):
        while b"\n" not in self.buf:
            try:
                chunk = self.sock.recv(65536)
            except socket.timeout:
                raise AgentError("gpg-agent did not answer", stdout="\n".join(self.transcript)) from None
            if not chunk:
                raise AgentError("gpg-agent closed the connection", stdout="\n".join(self.transcript))
            self.buf += chunk
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def _reply(self, command):
        data = b""
        while True:
            line = self._line()
            if line.startswith(b"D "):
                data += _unescape(line[2:])
            elif line == b"OK" or line.startswith(b"OK "):
                return data
            elif line.startswith(b"ERR"):
                self.transcript.append(line.decode("utf-8", "replace"))
                raise AgentError("gpg-agent refused %s: %s" % (command, line.decode("utf-8", "replace")),
                                 stdout="\n".join(self.transcript))
            elif line.startswith(b"INQUIRE"):
                self.sock.sendall(b"CAN\n")  # nothing to give (a passphrase would be asked here)
            elif line.startswith(b"S ") and self.status is not None:
                self.status.append(line[2:].decode("utf-8", "replace"))
            # Other status and comment (#) lines carry nothing needed here.

    def command(self, line):
        self.transcript.append(line.split(" ", 1)[0] if line.startswith("SETHASH") else line)
        self.sock.sendall(line.encode() + b"\n")
        return self._reply(line.split(" ", 1)[0])

    def close(self):
        try:
            self.sock.sendall(b"BYE\n")
        except OSError:
            pass
        self.sock.close()


def needs_passphrase(socket_path, key):
    """True when the agent holds the key protected by a passphrase it has not cached.

    ``KEYINFO`` answers ``S KEYINFO <grip> <type> <serial> <idstr> <cached> <protection> ...``;
    protection ``P`` means a passphrase, ``cached`` ``1`` that the agent has it.
    """
    agent = Agent(socket_path)
    try:
        agent.status = []
        agent.command("KEYINFO %s" % key.keygrip)
        info = [line.split() for line in agent.status if line.startswith("KEYINFO ")]
    finally:
        agent.close()
    if not info or len(info[0]) < 7:
        raise AgentError("gpg-agent does not hold the secret key %s" % key.keygrip, stdout=repr(info))
    return info[0][6] == "P" and info[0][5] != "1"


def sign_state(socket_path, key, state, created=None):
    """The armored detached signature over the data ``state`` (hashlib SHA-512) has hashed."""
    created = int(time.time()) if created is None else created
    header = signature_header(key, created)
    digest = digest_to_sign(state, header)
    agent = Agent(socket_path)
    try:
        agent.command("OPTION pinentry-mode=cancel")
        agent.command("SIGKEY %s" % key.keygrip)
        agent.command("SETHASH %d %s" % (SHA512, digest.hex().upper()))
        sexp = parse_sexp(agent.command("PKSIGN"))
    finally:
        agent.close()
    return armor(signature_packet(key, header, digest, sig_values(sexp, key.algo)))


def sha512_of(data):
    h = hashlib.sha512()
    h.update(data)
    return h
