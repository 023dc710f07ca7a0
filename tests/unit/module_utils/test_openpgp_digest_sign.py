"""openpgp_digest_sign: key choice, the Assuan exchange with a stand-in agent, the packet and its armor.

gpgv's verdict on real keys (RSA, EdDSA, a subkey) is in
tests/integration/test_archive_publish.py; here the parts are checked one by one.
"""
import base64
import hashlib
import os
import socket
import struct
import threading

import pytest

from ansible_collections.gse.stateless.plugins.module_utils import openpgp
from ansible_collections.gse.stateless.plugins.module_utils import openpgp_digest_sign as ds

P, S1, S2 = "A" * 40, "B" * 40, "C" * 40


def colons(*keys):
    """Listing lines: (kind, validity, algo, created, caps, secret, fpr, grip)."""
    out = []
    for kind, validity, algo, created, caps, secret, fpr, grip in keys:
        out.append("%s:%s:255:%d:%s:%d::::::%s:::%s:::ed25519::" % (kind, validity, algo, fpr[-16:], created, caps,
                                                                     secret))
        out.append("fpr:::::::::%s:" % fpr)
        out.append("grp:::::::::%s:" % grip)
    return "\n".join(out) + "\n"


def test_choose_key_like_gpg():
    primary = ("sec", "u", 22, 100, "scSC", "+", P, "G" * 40)
    assert ds.choose_key(colons(primary)).fingerprint == P
    newer, older = ("ssb", "u", 22, 300, "s", "+", S2, "H" * 40), ("ssb", "u", 1, 200, "s", "+", S1, "I" * 40)
    chosen = ds.choose_key(colons(primary, older, newer))
    assert (chosen.fingerprint, chosen.keygrip, chosen.algo) == (S2, "H" * 40, 22)
    assert chosen.keyid == bytes.fromhex(S2[-16:])
    expired = ("ssb", "e", 22, 400, "s", "+", S2, "H" * 40)
    assert ds.choose_key(colons(primary, older, expired)).fingerprint == S1
    offline = ("ssb", "u", 22, 400, "s", "#", S2, "H" * 40)  # a stub: the secret part is elsewhere
    assert ds.choose_key(colons(primary, offline)).fingerprint == P
    assert ds.choose_key(colons(("sec", "u", 19, 100, "scSC", "+", P, "G" * 40))) is None  # ECDSA: gpg signs
    assert ds.choose_key(colons(("sec", "u", 22, 100, "scSCD", "+", P, "G" * 40))) is None  # disabled
    assert ds.choose_key(colons(("sec", "u", 22, 100, "cC", "+", P, "G" * 40))) is None  # cannot sign


def test_sexp_and_values():
    sexp = ds.parse_sexp(b"(7:sig-val(5:eddsa(1:r3:\x00ab)(1:s2:cd)))")
    assert sexp == [[b"sig-val", [b"eddsa", [b"r", b"\x00ab"], [b"s", b"cd"]]]]
    assert ds.sig_values(sexp, ds.EDDSA) == [b"\x00ab", b"cd"]
    assert ds.sig_values(ds.parse_sexp(b"(7:sig-val(3:rsa(1:s2:xy)))"), ds.RSA) == [b"xy"]
    with pytest.raises(ds.AgentError):
        ds.sig_values(ds.parse_sexp(b"(7:sig-val(3:rsa(1:s2:xy)))"), ds.EDDSA)


def test_mpi_and_armor():
    assert ds._mpi(b"\x00\x01\xff") == b"\x00\x09\x01\xff"
    text = ds.armor(b"\x88\x01\x04")
    body = text.splitlines()
    assert body[0] == "-----BEGIN PGP SIGNATURE-----" and body[-1] == "-----END PGP SIGNATURE-----"
    assert base64.b64decode(body[2]) == b"\x88\x01\x04"
    assert body[3] == "=" + base64.b64encode(struct.pack(">I", openpgp._crc24(b"\x88\x01\x04"))[1:]).decode()
    assert openpgp._crc24(b"") == 0xB704CE  # RFC 4880 6.1: CRC24_INIT
    # The one armor writer: a signature and a keyring differ only in the block name.
    assert text == openpgp.armor(b"\x88\x01\x04", "SIGNATURE")


class FakeAgent(threading.Thread):
    """Answers like gpg-agent on a UNIX socket; PKSIGN returns a fixed EdDSA sig-val, %-escaped as Assuan does."""

    def __init__(self, path, refuse=None, keyinfo="S KEYINFO GRIP D - - - C - - -"):
        super().__init__(daemon=True)
        self.srv = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.srv.bind(path)
        self.srv.listen(1)
        self.lines, self.refuse, self.keyinfo = [], refuse, keyinfo
        self.start()

    def run(self):
        try:
            self.serve()
        except BrokenPipeError:
            pass  # the client closes after BYE without waiting for the answer
        finally:
            self.srv.close()

    def serve(self):
        conn, _ = self.srv.accept()
        f = conn.makefile("rwb")
        f.write(b"OK Pleased to meet you\n")
        f.flush()
        for raw in f:
            line = raw.decode().rstrip("\n")
            self.lines.append(line)
            cmd = line.split(" ", 1)[0]
            if cmd == "BYE":
                f.write(b"OK closing connection\n")
                f.flush()
                break
            if cmd == self.refuse:
                f.write(b"ERR 67108963 Operation cancelled <GPG Agent>\n")
            elif cmd == "PKSIGN":
                sexp = b"(7:sig-val(5:eddsa(1:r32:" + b"\n" * 32 + b")(1:s32:" + b"%" * 32 + b")))"
                f.write(b"D " + sexp.replace(b"%", b"%25").replace(b"\n", b"%0A") + b"\nOK\n")
            elif cmd == "KEYINFO":
                f.write(self.keyinfo.encode() + b"\nOK\n")
            else:
                f.write(b"OK\n")
            f.flush()
        conn.close()


def test_sign_state_sends_the_finished_digest_and_builds_the_packet(tmp_path):
    path = str(tmp_path / "S.gpg-agent")
    agent = FakeAgent(path)
    key = ds.Key(S1, "GRIP", ds.EDDSA)
    data = os.urandom(1000)
    text = ds.sign_state(path, key, hashlib.sha512(data), created=1_700_000_000)
    agent.join(10)
    header = bytes([4, 0, 22, 10]) + struct.pack(">H", 29) + b"\x05\x02" + struct.pack(">I", 1_700_000_000) + \
        b"\x16\x21\x04" + bytes.fromhex(S1)
    digest = hashlib.sha512(data + header + b"\x04\xff" + struct.pack(">I", len(header))).digest()
    assert agent.lines == ["OPTION pinentry-mode=cancel", "SIGKEY GRIP", "SETHASH 10 " + digest.hex().upper(),
                           "PKSIGN", "BYE"]
    packet = base64.b64decode("".join(text.splitlines()[2:-2]))
    body = header + b"\x00\x0a\x09\x10" + bytes.fromhex(S1[-16:]) + digest[:2] + \
        b"\x00\xfc" + b"\n" * 32 + b"\x00\xfe" + b"%" * 32  # bit counts: 31 * 8 + 4, 31 * 8 + 6
    assert packet == bytes([0x88, len(body)]) + body


def test_refusals_and_passphrase(tmp_path):
    key = ds.Key(S1, "GRIP", ds.EDDSA)
    FakeAgent(str(tmp_path / "a"), refuse="PKSIGN")
    with pytest.raises(ds.AgentError) as e:
        ds.sign_state(str(tmp_path / "a"), key, hashlib.sha512(b""))
    assert "Operation cancelled" in e.value.msg and "PKSIGN" in e.value.stdout
    FakeAgent(str(tmp_path / "b"), keyinfo="S KEYINFO GRIP D - - - P - - -")
    assert ds.needs_passphrase(str(tmp_path / "b"), key)
    FakeAgent(str(tmp_path / "c"), keyinfo="S KEYINFO GRIP D - - 1 P - - -")  # cached
    assert not ds.needs_passphrase(str(tmp_path / "c"), key)
    FakeAgent(str(tmp_path / "d"))
    assert not ds.needs_passphrase(str(tmp_path / "d"), key)
    with pytest.raises(ds.AgentError):
        ds.sign_state(str(tmp_path / "nowhere"), key, hashlib.sha512(b""))
