# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""SHA512 digests and ``SHA512SUMS`` files in sha512sum(1) format (``<hex>  <name>``)."""

from __future__ import annotations

import hashlib
import re

CHUNK = 1 << 20
_LINE = re.compile(r"^([0-9a-f]{128}) [ *](.+)$")


def sha512_file(path):
    digest = hashlib.sha512()
    with open(path, "rb", buffering=0) as f:
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        while True:
            n = f.readinto(view)
            if not n:
                break
            digest.update(view[:n])
    return digest.hexdigest()


def format_sums(entries):
    """SHA512SUMS text for {basename: hex}, sorted by name so the file is reproducible."""
    for name in entries:
        if "/" in name or "\n" in name:
            raise ValueError("SHA512SUMS names are plain basenames: %r" % name)
    return "".join("%s  %s\n" % (entries[n], n) for n in sorted(entries))


def parse_sums(text):
    """{name: hex} from SHA512SUMS text; raises ValueError on a malformed or duplicated line."""
    out = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        m = _LINE.match(line)
        if not m or "/" in m.group(2):
            raise ValueError("SHA512SUMS line %d is malformed: %r" % (number, line[:160]))
        if m.group(2) in out:
            raise ValueError("SHA512SUMS names %s twice" % m.group(2))
        out[m.group(2)] = m.group(1)
    return out
