"""A private Ethernet segment for Wake-on-LAN tests: two network namespaces the
test creates, joined by a veth pair: the sender's (w0, 10.201.7.1) and the
room's (w1, 10.201.7.2).  Packets sent through w0 reach a listener in the room
and nothing else: no real network ever sees them.  (Two namespaces, because a
host drops a packet arriving with one of its own addresses as source.)

`inside()` moves the calling thread into the sender's namespace for a block
(setns); sockets created there stay in the namespace after the thread comes
back, so the code under test runs in-process, with its real socket code.
"""
import contextlib
import os
import secrets
import shutil
import socket
import subprocess

import pytest

SUBNET = "10.201.7"
BROADCAST = SUBNET + ".255"


def _ip(*args):
    subprocess.run(["ip"] + list(args), check=True, capture_output=True, timeout=30)


class Segment:
    def __init__(self):
        self.name = "gse-wol-" + secrets.token_hex(4)

    @property
    def room(self):
        return self.name + "-room"

    def create(self):
        try:
            _ip("netns", "add", self.name)
            _ip("netns", "add", self.room)
            _ip("-n", self.name, "link", "add", "w0", "type", "veth", "peer", "name", "w1", "netns", self.room)
            _ip("-n", self.name, "addr", "add", SUBNET + ".1/24", "dev", "w0")
            _ip("-n", self.room, "addr", "add", SUBNET + ".2/24", "dev", "w1")
            for ns, devs in ((self.name, ("lo", "w0")), (self.room, ("lo", "w1"))):
                for dev in devs:
                    _ip("-n", ns, "link", "set", dev, "up")
            # Like a real host's: 255.255.255.255 without --interface leaves by the default route.
            _ip("-n", self.name, "route", "add", "default", "dev", "w0")
        except BaseException:
            self.delete()
            raise
        return self

    def delete(self):
        for ns in (self.name, self.room):
            subprocess.run(["ip", "netns", "delete", ns], capture_output=True, timeout=30)

    @contextlib.contextmanager
    def inside(self, ns=None):
        home = os.open("/proc/thread-self/ns/net", os.O_RDONLY)
        there = os.open("/run/netns/" + (ns or self.name), os.O_RDONLY)
        try:
            os.setns(there, os.CLONE_NEWNET)
            try:
                yield
            finally:
                os.setns(home, os.CLONE_NEWNET)
        finally:
            os.close(there)
            os.close(home)

    def listener(self, port=9):
        """A UDP socket in the room, on w1."""
        with self.inside(self.room):
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"w1")
            s.bind(("", port))
        s.settimeout(5)  # every wait bounded: a lost packet fails, it never hangs
        return s


def received(sock, count):
    """count datagrams, or fewer when none comes for 5 seconds."""
    got = []
    try:
        while len(got) < count:
            got.append(sock.recvfrom(2048))
    except socket.timeout:
        pass
    return got


def nothing_more(sock):
    """No further datagram is waiting (the ones sent are all read by now)."""
    sock.setblocking(False)
    try:
        sock.recvfrom(2048)
        return False
    except BlockingIOError:
        return True
    finally:
        sock.settimeout(5)


@pytest.fixture
def segment():
    if os.geteuid() != 0 or not shutil.which("ip", path=os.environ.get("PATH", "") + ":/usr/sbin:/sbin"):
        pytest.skip("needs root and ip(8) for a network namespace")
    seg = Segment().create()
    try:
        yield seg
    finally:
        seg.delete()


def magic(mac):
    return b"\xff" * 6 + bytes.fromhex(mac.replace(":", "")) * 16
