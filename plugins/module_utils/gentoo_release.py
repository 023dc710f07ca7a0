# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Gentoo's autobuild release files: the latest-stage3 pointer and the DIGESTS lists.

Layout under a mirror's ``releases/<arch>/autobuilds/``:
- ``latest-stage3-<variant>.txt``, clearsigned; its body has comment lines
  (``# Latest as of <date>``, ``# ts=<epoch>``) and one line
  ``<build>/<tarball> <size>`` where <build> is the build's timestamp.
- ``<build>/<tarball>.asc`` (detached signature), ``.DIGESTS`` (clearsigned;
  ``# <ALGO> HASH`` headers each followed by ``<hex>  <file>`` lines) and
  ``.sha256`` (clearsigned ``# SHA256 HASH`` list).
"""

from __future__ import annotations

import hashlib
import re

_HEX = re.compile(r"^[0-9a-fA-F]+$")
# The algorithms checked when a DIGESTS file lists them, hashlib names.
ALGORITHMS = {"SHA512": "sha512", "SHA256": "sha256", "BLAKE2B": "blake2b"}


class ReleaseError(Exception):
    pass


def parse_pointer(body):
    """{"path", "size", "date", "latest_as_of", "ts"} from a pointer's signed body."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    entries = []
    latest_as_of = ts = None
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        if line.startswith("#"):
            comment = line.lstrip("#").strip()
            if comment.startswith("Latest as of"):
                latest_as_of = comment[len("Latest as of"):].strip()
            elif comment.startswith("ts="):
                ts = comment[3:].strip()
            continue
        fields = line.split()
        if len(fields) != 2 or not fields[1].isdigit():
            raise ReleaseError("pointer line not understood: %r" % line)
        entries.append((fields[0], int(fields[1])))
    if len(entries) != 1:
        raise ReleaseError("pointer names %d tarballs, expected exactly one" % len(entries))
    path, size = entries[0]
    if path.startswith("/") or ".." in path.split("/"):
        raise ReleaseError("pointer path %r leaves the autobuilds tree" % path)
    date = path.split("/")[0] if "/" in path else None
    return {"path": path, "size": size, "date": date, "latest_as_of": latest_as_of, "ts": ts}


def parse_digests(body, default_algo=None):
    """{ALGO: {filename: hexdigest}} from a DIGESTS or .sha256 body.

    Lines before any ``# <ALGO> HASH`` header count as ``default_algo`` (a
    plain ``sha256sum`` style file), or are an error without one.
    """
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    out = {}
    algo = default_algo
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        match = re.match(r"^#\s*(\S+)\s+HASH\s*$", line, re.IGNORECASE)
        if match:
            algo = match.group(1).upper()
            continue
        if line.startswith("#"):
            continue
        fields = line.split(None, 1)
        if len(fields) != 2 or not _HEX.match(fields[0]):
            raise ReleaseError("digest line not understood: %r" % line)
        if algo is None:
            raise ReleaseError("digest line before any '# <ALGO> HASH' header: %r" % line)
        name = fields[1].strip().lstrip("*")
        out.setdefault(algo, {})[name.split("/")[-1]] = fields[0].lower()
    return out


def file_hashes(path, algos=("sha512", "sha256", "blake2b")):
    """Hex digests of ``path`` for each hashlib algorithm name, reading it once."""
    hashers = {a: hashlib.new(a) for a in algos}
    with open(path, "rb") as f:
        while True:
            chunk = f.read(1024 * 1024)
            if not chunk:
                break
            for h in hashers.values():
                h.update(chunk)
    return {a: h.hexdigest() for a, h in hashers.items()}


def check_digests(listed, filename, actual):
    """Compare the digests ``listed`` for ``filename`` with ``actual`` ({hashlib name: hex}).

    Returns the algorithms that matched; raises ReleaseError on a mismatch
    or when no algorithm we can check is listed for the file.
    """
    matched = []
    for algo, files in listed.items():
        name = ALGORITHMS.get(algo)
        if name is None or filename not in files:
            continue
        if files[filename] != actual[name]:
            raise ReleaseError("%s of %s does not match the signed digest" % (algo, filename))
        matched.append(algo)
    if not matched:
        raise ReleaseError("no checkable digest is listed for %s" % filename)
    return matched
