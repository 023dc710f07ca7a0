"""The benchmark's input: a generated root of mixed files, built once and cached by its parameters' hash.

The tree is generated (not copied from the host) so that every machine packs
the same bytes: text-like files (highly compressible), binary-like files
(partly compressible), random files (already compressed data) and many
small files in deep directories (tar's per-file cost), plus symlinks.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import shutil

GENERATOR = 1  # bump when the generated content changes
CACHE = "/var/cache/gse-tests"


def _text_pool(rng, count=2048):
    words = ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(2, 11)))
             for _ in range(3000)]
    pool = []
    for _ in range(count):
        lines = [" ".join(rng.choices(words, k=rng.randint(4, 14))) for _ in range(rng.randint(20, 80))]
        pool.append(("\n".join(lines) + "\n").encode())
    return pool


def _text(rng, pool, size):
    out, n = [], 0
    while n < size:
        chunk = rng.choice(pool)
        out.append(chunk)
        n += len(chunk)
    return b"".join(out)[:size]


def _binary(rng, size):
    """Blocks that are random, zeros, or repeats of an earlier block: roughly 2:1 with zstd -3."""
    blocks, n = [], 0
    while n < size:
        kind = rng.random()
        if kind < 0.45 or not blocks:
            b = rng.randbytes(4096)
        elif kind < 0.6:
            b = bytes(4096)
        else:
            b = rng.choice(blocks[-64:])
        blocks.append(b)
        n += len(b)
    return b"".join(blocks)[:size]


def _write(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "wb") as f:
        f.write(data)


def generate(dest, size_mb, seed):
    rng = random.Random(seed)
    pool = _text_pool(rng)
    total = size_mb << 20
    shares = (("usr/share", 0.35, "text"), ("usr/lib", 0.35, "binary"), ("var/lib/blobs", 0.20, "random"),
              ("etc", 0.10, "small"))
    for top, share, kind in shares:
        budget, written, i = int(total * share), 0, 0
        while written < budget:
            if kind == "small":
                size = rng.randint(200, 4096)
                path = os.path.join(dest, top, "d%02d" % (i % 97), "s%03d" % (i % 31), "f%06d.conf" % i)
            else:
                size = min(budget - written, int(rng.lognormvariate(11, 1.5)) + 1)
                path = os.path.join(dest, top, "pkg%03d" % (i % 211), "file%06d.%s" % (i, kind[:3]))
            if kind in ("text", "small"):
                data = _text(rng, pool, size)
            elif kind == "binary":
                data = _binary(rng, size)
            else:
                data = rng.randbytes(size)
            _write(path, data)
            written += size
            i += 1
    os.symlink("usr/lib", os.path.join(dest, "lib"))
    os.makedirs(os.path.join(dest, "var/tmp"), exist_ok=True)
    os.symlink("/tmp", os.path.join(dest, "var/tmp/host-tmp"))


def tree(size_mb, seed=1):
    """Path of the cached tree for these parameters, generating it under a lock when missing."""
    key = hashlib.sha256(json.dumps([GENERATOR, size_mb, seed]).encode()).hexdigest()[:16]
    os.makedirs(CACHE, exist_ok=True)
    path = os.path.join(CACHE, "bench-tree-%s" % key)
    with open(os.path.join(CACHE, "bench-tree.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.isdir(path):
            partial = path + ".partial"
            shutil.rmtree(partial, ignore_errors=True)
            os.makedirs(partial)
            generate(partial, size_mb, seed)
            os.rename(partial, path)
    return path


def tree_bytes(path):
    total = 0
    for dirpath, _dirs, files in os.walk(path):
        for name in files:
            st = os.lstat(os.path.join(dirpath, name))
            total += st.st_size
    return total
