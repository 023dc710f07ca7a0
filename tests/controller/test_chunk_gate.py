"""gse-chunk-gate (controller_dracut/92gse-net/gse-chunk-gate.c) on crafted
streams and chunk lists: only checked chunks go out, in order; nothing
after the last chunk is read; every refusal names its class and where.

The installs through it (nginx, stalls, floods, a truncated or forged
tarball) are in test_shell_ranges.py; the boot in test_boot_ranges.py."""
import hashlib
import os
import random
import resource
import subprocess

import pytest

from chunkgate import gate_path
from test_shell_lib import sh


def chunks_of(data, lengths):
    """The list lines (FIRST LAST SHA256) of data cut into lengths."""
    lines, pos = [], 0
    for n in lengths:
        lines.append(f"{pos} {pos + n - 1} {hashlib.sha256(data[pos:pos + n]).hexdigest()}")
        pos += n
    assert pos == len(data)
    return lines


def run_gate(tmp_path, lines, stream, preexec_fn=None, stdout=subprocess.PIPE):
    """Runs the gate with the list lines and stream (bytes, read from a file
    so that its offset afterwards shows how much the gate read); returns
    (rc, stdout bytes, verdict, reason, bytes read)."""
    (tmp_path / "list").write_text("".join(line + "\n" for line in lines))
    (tmp_path / "in").write_bytes(stream)
    d = tmp_path / "d"
    d.mkdir(exist_ok=True)
    with open(tmp_path / "in", "rb") as inp:
        r = subprocess.run([gate_path(), str(tmp_path / "list"), str(d)], stdin=inp, stdout=stdout,
                           stderr=subprocess.PIPE, preexec_fn=preexec_fn, timeout=60)
        read = os.lseek(inp.fileno(), 0, os.SEEK_CUR)
    verdict = (d / "verdict").read_text().strip() if (d / "verdict").exists() else None
    reason = (d / "reason").read_text().strip() if (d / "reason").exists() else None
    return r.returncode, r.stdout, verdict, reason, read


DATA = random.Random(3).randbytes(5 << 20)
LENGTHS = [1 << 20, 3 << 20, 1 << 20]


def test_every_chunk_goes_out_and_nothing_after_the_last_is_read(tmp_path):
    rc, out, verdict, reason, read = run_gate(tmp_path, chunks_of(DATA, LENGTHS), DATA + b"MORE" * 4096)
    assert (rc, verdict, reason) == (0, None, None)
    assert out == DATA
    assert read == len(DATA)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_a_forged_chunk_stops_the_stream_before_it(tmp_path, k):
    forged = bytearray(DATA)
    at = sum(LENGTHS[:k]) + LENGTHS[k] // 2
    forged[at] ^= 1
    rc, out, verdict, reason, read = run_gate(tmp_path, chunks_of(DATA, LENGTHS), bytes(forged))
    first, last = sum(LENGTHS[:k]), sum(LENGTHS[:k + 1]) - 1
    got = hashlib.sha256(bytes(forged[first:last + 1])).hexdigest()
    want = hashlib.sha256(DATA[first:last + 1]).hexdigest()
    assert (rc, verdict) == (2, "digest")
    assert reason == (f"chunk {k + 1} of 3 (bytes {first}-{last}): received {LENGTHS[k]} bytes with SHA256 {got}, "
                      f"the signed index says {want}")
    # Exactly the chunks before it went out; not a byte of the forged one.
    assert out == DATA[:first]


@pytest.mark.parametrize("cut, says", [
    (len(DATA) - 1, "chunk 3 of 3 (bytes 4194304-5242879): the stream ended after 5242879 bytes"),
    ((1 << 20) + 10, "chunk 2 of 3 (bytes 1048576-4194303): the stream ended after 1048586 bytes"),
    (1 << 20, "chunk 2 of 3 (bytes 1048576-4194303): the stream ended before it"),
    (0, "chunk 1 of 3 (bytes 0-1048575): the stream ended before it"),
])
def test_a_short_stream_is_named_where_it_ended(tmp_path, cut, says):
    rc, out, verdict, reason, read = run_gate(tmp_path, chunks_of(DATA, LENGTHS), DATA[:cut])
    assert (rc, verdict, reason) == (2, "short", says)
    done = max((sum(LENGTHS[:i]) for i in range(4) if sum(LENGTHS[:i]) <= cut), default=0)
    assert out == DATA[:done]


@pytest.mark.parametrize("lines", [
    [],
    ["0 99 " + "0" * 64, "101 199 " + "0" * 64],           # a gap
    ["1 99 " + "0" * 64],                                   # not from byte 0
    ["0 99 " + "0" * 63],                                   # a short digest
    ["0 99 " + "A" * 64],                                   # not lower-case hex
    ["0 99"],                                               # no digest
    ["0 " + str(64 << 20) + " " + "0" * 64],               # more than 64 MiB
    ["99 0 " + "0" * 64],                                   # backwards
    ["0 18446744073709551615 " + "0" * 64],                # a length that overflows to 0
])
def test_a_malformed_list_is_refused_before_anything_is_read(tmp_path, lines):
    rc, out, verdict, reason, read = run_gate(tmp_path, lines, DATA)
    assert (rc, verdict, out, read) == (2, "list", b"", 0)
    assert reason.startswith("the chunk list ") and reason.endswith(" is malformed")


def test_a_closed_output_is_the_unpackings_verdict(tmp_path):
    r, w = os.pipe()
    os.close(r)
    try:
        rc, out, verdict, reason, read = run_gate(tmp_path, chunks_of(DATA, LENGTHS), DATA, stdout=w)
    finally:
        os.close(w)
    assert (rc, verdict, reason) == (2, "unpack", "the unpacking stopped reading")


def test_the_gate_that_cannot_hold_three_chunks_says_so(tmp_path):
    """Three buffers of the largest chunk (32 MiB here; chunks are limited to
    64 MiB): an address space too small for them (64 MiB: RLIMIT_AS stands
    for a client out of memory) is refused before anything is read."""
    big = random.Random(4).randbytes(96 << 20)

    def small():
        resource.setrlimit(resource.RLIMIT_AS, (64 << 20, 64 << 20))
    rc, out, verdict, reason, read = run_gate(tmp_path, chunks_of(big, [32 << 20] * 3), big, preexec_fn=small)
    assert (rc, verdict, read) == (2, "space", 0), reason
    assert reason == "chunk 1 of 3: could not be held in RAM: 3 buffers of 33554432 bytes could not be allocated"


def test_a_gate_that_fails_without_a_verdict_is_never_success(tmp_path):
    """A gate that ends badly without a verdict (here: one that passes every
    byte unchecked, then exits 1, so that tar itself succeeds) fails the
    install: only the gate's success lets the unpacking's result stand."""
    data = DATA[:300000]
    (tmp_path / "tree").mkdir()
    (tmp_path / "tree" / "f").write_bytes(data)
    subprocess.run(f"tar -C {tmp_path}/tree -cf - . | zstd -q -o {tmp_path}/img.tar.zst", shell=True, check=True)
    tarball = (tmp_path / "img.tar.zst").read_bytes()
    (tmp_path / "list").write_text("\n".join(chunks_of(tarball, [len(tarball)])) + "\n")
    fake = tmp_path / "fake-gate"
    fake.write_text("#!/bin/sh\ncat\nexit 1\n")
    fake.chmod(0o755)
    (tmp_path / "dest").mkdir()
    r = sh(f"""mkdir -p $GSE_RUN; GSE_SERVER=file://{tmp_path}; GSE_CHUNK_GATE={fake}
gse_ranges_image img.tar.zst {len(tarball)} $T/list $T/dest zstd; echo rc=$?; echo "why=$GSE_VERIFY_REASON"
cat $GSE_RUN/stream/verdict""", tmp_path, timeout=60)
    assert r.stdout.splitlines() == ["rc=2", "why=gse-chunk-gate ended with status 1 and no verdict", "unpack"], \
        (r.stdout, r.stderr)
    log = (tmp_path / "run" / "log").read_text()
    assert "image not installed: gse-chunk-gate ended with status 1 and no verdict" in log
