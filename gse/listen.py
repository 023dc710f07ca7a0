"""HOST:PORT values of the commands that listen (gse serve --listen, gse fleet --receive)."""
import ipaddress
import re

_HOST = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*")


class ListenError(ValueError):
    """A bad HOST:PORT: one line naming the flag."""


def shown(value, limit=60):
    """A value in a message: quoted, non-printable characters escaped, cut after ``limit``."""
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(value))
    return "'%s'" % (text if len(text) <= limit else text[:limit] + "...")


def parse(text, flag):
    """(host, port) of a HOST:PORT value given with ``flag``; raises ListenError."""
    host, sep, port = text.rpartition(":")
    if not sep:
        host, port = "", text
    if host.startswith("[") and host.endswith("]"):
        try:
            ipaddress.IPv6Address(host[1:-1])
        except ValueError:
            raise ListenError("%s=%s: %s is not an IPv6 address" % (flag, shown(text), shown(host))) from None
        host = host[1:-1]
    elif host and not _HOST.fullmatch(host):
        raise ListenError("%s=%s: expected HOST:PORT (an IPv4 address, [IPv6] or a host name)"
                          % (flag, shown(text)))
    if not (port.isascii() and port.isdigit() and len(port) <= 5 and 1 <= int(port) <= 65535):
        raise ListenError("%s=%s: the port must be a number from 1 to 65535" % (flag, shown(text)))
    return host or "127.0.0.1", int(port)
