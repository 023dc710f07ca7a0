"""The tarball in verified chunks (gse-ranges-lib.sh) on this host with dash:
the blob index's table read from real (casync) and crafted indexes, the
Range probe, and installs from nginx (the server GSE serves with) and from
range-answering doubles for what nginx does not do: stall in the middle of a
chunk, send more than the range asked for.

What the doubles cannot show: a real server's buffering and keep-alive
behaviour under load (nginx covers the good path and the forged bytes)."""
import contextlib
import functools
import hashlib
import http.server
import os
import random
import re
import struct
import subprocess
import threading

import pytest

import pubtree
from gse.serve import Server
from test_shell_chunks import INDEX_TYPE, TABLE_TYPE, TAIL_MARKER, need_casync
from test_shell_lib import sh

SHA512_256 = 0x2000000000000000


def caibx(ends_ids, flags=0x9000000000000000, cmax=1 << 20):
    """A blob index in casync's layout from (end offset, chunk id) items."""
    out = struct.pack("<6Q", 48, INDEX_TYPE, flags, 1 << 16, 1 << 18, cmax)
    out += struct.pack("<2Q", 2**64 - 1, TABLE_TYPE)
    for off, cid in ends_ids:
        out += struct.pack("<Q", off) + cid
    out += struct.pack("<5Q", 0, 0, 48, 16 + 40 * len(ends_ids) + 40, TAIL_MARKER)
    return out


def make_tarball(tmp_path, mib=3):
    """www/img.tar.zst of a small tree (random files: several chunks) and
    its blob index made by casync; returns (www, tarball path, tree)."""
    tree = tmp_path / "tree"
    (tree / "d").mkdir(parents=True)
    r = random.Random(7)
    for i in range(mib):
        (tree / "d" / f"f{i}").write_bytes(r.randbytes(1 << 20))
    (tree / "small").write_text("small\n")
    os.symlink("small", tree / "link")
    www = tmp_path / "www"
    www.mkdir()
    tarball = www / "img.tar.zst"
    subprocess.run(f"tar -C {tree} -cf - --numeric-owner . | zstd -q -o {tarball}", shell=True, check=True)
    pubtree.make_tarball_index(str(tarball))
    return www, tarball, tree


def ranges(tmp_path, idx, size):
    r = sh(f"mkdir -p $GSE_RUN; gse_caibx_ranges {idx} {size} $T/list; echo rc=$?; echo \"why=$GSE_VERIFY_REASON\"",
           tmp_path)
    listed = (tmp_path / "list").read_text().splitlines() if (tmp_path / "list").exists() else []
    return r.stdout.splitlines(), listed


def install(tmp_path, url, tarball, extra="", timeout=120):
    """gse_caibx_ranges, gse_ranges_probe and gse_ranges_image as the version
    check runs them; returns (rc, verdict, reason, log, dest)."""
    dest = tmp_path / "dest"
    dest.mkdir(exist_ok=True)
    size = os.path.getsize(tarball)
    r = sh(f"""mkdir -p $GSE_RUN; GSE_SERVER={url}; {extra}
gse_caibx_ranges {tarball}.caibx {size} $GSE_RUN/list > /dev/null || exit 9
gse_ranges_probe {tarball.name} {size}; echo probe=$?
gse_ranges_image {tarball.name} $GSE_RUN/list {dest} zstd; echo rc=$?
echo "why=$GSE_VERIFY_REASON"
""", tmp_path, timeout=timeout)
    out = r.stdout.splitlines()
    verdict = tmp_path / "run" / "stream" / "verdict"
    log = (tmp_path / "run" / "log").read_text() if (tmp_path / "run" / "log").exists() else ""
    return out, verdict.read_text().strip() if verdict.exists() else None, log, dest


def tree_of(d):
    """{relative path: file bytes or link target} of a directory."""
    out = {}
    for dp, dns, fns in os.walk(d):
        for n in dns + fns:
            p = os.path.join(dp, n)
            rel = os.path.relpath(p, d)
            if os.path.islink(p):
                out[rel] = "-> " + os.readlink(p)
            elif os.path.isfile(p):
                out[rel] = hashlib.sha256(open(p, "rb").read()).hexdigest()
            else:
                out[rel] = "dir"
    return out


# ---- the index table --------------------------------------------------------

def test_real_index_gives_every_byte_range_of_the_tarball_with_its_sha256(tmp_path):
    need_casync()
    www, tarball, tree = make_tarball(tmp_path)
    out, listed = ranges(tmp_path, f"{tarball}.caibx", os.path.getsize(tarball))
    assert out[-2:] == ["rc=0", "why="], out
    data = tarball.read_bytes()
    assert len(listed) >= 4, listed
    assert out[0] == f"{len(listed)} {max(int(b) - int(a) + 1 for a, b, _ in map(str.split, listed))}"
    pos = 0
    for line in listed:
        a, b, cid = line.split()
        assert int(a) == pos
        assert hashlib.sha256(data[int(a):int(b) + 1]).hexdigest() == cid
        pos = int(b) + 1
    assert pos == len(data)


@pytest.mark.parametrize("damage, says", [
    ("size", "malformed table (it covers 300 bytes, the signed tarball has 301)"),
    ("sha512_256", "its chunk ids are not SHA-256"),
    ("huge", "chunks of up to 134217728 bytes, at most 67108864 accepted"),
    ("order", "malformed table (bad offset 2)"),
    ("magic", "wrong magic (not a casync index)"),
])
def test_crafted_index_is_refused(tmp_path, damage, says):
    items = [(100, b"\x01" * 32), (300, b"\x02" * 32)]
    size, kw = 300, {}
    if damage == "size":
        size = 301
    elif damage == "sha512_256":
        kw["flags"] = 0x9000000000000000 | SHA512_256
    elif damage == "huge":
        kw["cmax"] = 128 << 20
    elif damage == "order":
        items = [(300, b"\x01" * 32), (100, b"\x02" * 32)]
    data = caibx(items, **kw)
    if damage == "magic":
        data = data[:8] + b"\0" * 8 + data[16:]
    (tmp_path / "x.caibx").write_bytes(data)
    out, listed = ranges(tmp_path, tmp_path / "x.caibx", size)
    assert out[-2] == "rc=2", out
    assert out[-1].startswith("why=") and says in out[-1], out


def test_crafted_layout_reads_as_casyncs(tmp_path):
    """The same two chunks through the crafted writer and through the
    parser give the ranges the items say (the writer matches casync's
    layout: test_real_index... reads a real one)."""
    (tmp_path / "x.caibx").write_bytes(caibx([(100, b"\x01" * 32), (300, b"\x02" * 32)]))
    out, listed = ranges(tmp_path, tmp_path / "x.caibx", 300)
    assert out[-2:] == ["rc=0", "why="], out
    assert listed == ["0 99 " + "01" * 32, "100 299 " + "02" * 32]


# ---- installs ---------------------------------------------------------------

def test_install_from_nginx_equals_the_tarball(tmp_path):
    need_casync()
    www, tarball, tree = make_tarball(tmp_path)
    with Server(str(www)) as srv:
        out, verdict, log, dest = install(tmp_path, srv.url, tarball, "GSE_RANGE_PARALLEL=3")
    assert out == ["probe=0", "rc=0", "why="], (out, log)
    assert verdict is None
    n = len((tmp_path / "run" / "list").read_text().splitlines())
    assert re.search(r"gse: fetching img.tar.zst in \d+ verified chunks \(3 in parallel\)", log), log
    assert tree_of(dest) == tree_of(tree)
    assert n and n >= 4
    # Nothing is left in RAM.
    assert not (tmp_path / "run" / "stream" / "chunks").exists()


@pytest.mark.parametrize("which", ["first", "middle"])
def test_forged_chunk_is_refused_before_tar_reads_it(tmp_path, which):
    """The served tarball differs from the signed index in one byte: the
    chunk holding it is refused with the digest received, and no byte of it
    or after it reaches tar (forged in the first chunk: the target stays
    empty)."""
    need_casync()
    www, tarball, tree = make_tarball(tmp_path)
    index = tarball.read_bytes()
    size = len(index)
    r = sh(f"gse_caibx_ranges {tarball}.caibx {size} $T/list", tmp_path)
    chunks = [tuple(map(int, line.split()[:2])) for line in (tmp_path / "list").read_text().splitlines()]
    k = 0 if which == "first" else len(chunks) // 2
    a, b = chunks[k]
    data = bytearray(index)
    data[(a + b) // 2] ^= 0xFF
    tarball.write_bytes(bytes(data))
    with Server(str(www)) as srv:
        out, verdict, log, dest = install(tmp_path, srv.url, tarball)
    assert out[:2] == ["probe=0", "rc=2"], (out, log, r.stderr)
    assert verdict == "digest"
    got = hashlib.sha256(bytes(data[a:b + 1])).hexdigest()
    assert f"why=chunk {k + 1} of {len(chunks)} (bytes {a}-{b}): received {b - a + 1} bytes with SHA256 {got}" \
        in out[2], out
    assert "image refused: a chunk does not match the signed index: chunk" in log
    if which == "first":
        assert os.listdir(dest) == []


class RangeDouble(http.server.BaseHTTPRequestHandler):
    """Answers GET with Range of one file as 206, or misbehaves as told:
    stall_at (a range start): send half the range, then stay silent;
    flood: answer every range without a length (chunked), sending the
    range, then endless bytes; ignore: a 200 of the whole file."""
    protocol_version = "HTTP/1.1"
    path_file = stall_at = stop = None
    flood = ignore = False

    def do_GET(self):
        data = open(self.path_file, "rb").read()
        m = re.fullmatch(r"bytes=(\d+)-(\d+)", self.headers.get("Range", ""))
        if self.ignore or not m:
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
            return
        a, b = int(m.group(1)), int(m.group(2))
        part = data[a:b + 1]
        self.send_response(206)
        self.send_header("Content-Range", f"bytes {a}-{b}/{len(data)}")
        if self.flood:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
                while not self.stop.is_set():
                    block = b"\0" * 65536
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
            except OSError:
                self.close_connection = True
            return
        self.send_header("Content-Length", str(len(part)))
        self.end_headers()
        if a == self.stall_at:
            self.wfile.write(part[:len(part) // 2])
            self.wfile.flush()
            self.stop.wait(120)
            self.close_connection = True
            return
        self.wfile.write(part)

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def range_double(path, **kw):
    stop = threading.Event()
    handler = type("H", (RangeDouble,), dict(path_file=str(path), stop=stop, **kw))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}"
    finally:
        stop.set()
        srv.shutdown()
        srv.server_close()


def test_stall_in_the_middle_of_a_chunk_is_given_up_within_the_bound(tmp_path):
    need_casync()
    www, tarball, tree = make_tarball(tmp_path)
    r = sh(f"gse_caibx_ranges {tarball}.caibx {os.path.getsize(tarball)} $T/list", tmp_path)
    second = int((tmp_path / "list").read_text().splitlines()[1].split()[0])
    with range_double(tarball, stall_at=second) as url:
        out, verdict, log, dest = install(tmp_path, url, tarball, "GSE_STALL_TIME=2 GSE_STALL_SPEED=1024", timeout=60)
    assert out[:2] == ["probe=0", "rc=2"], (out, log, r.stderr)
    assert verdict == "stall"
    assert out[2].startswith("why=chunk 2 of "), out
    assert "image download stalled or timed out: chunk 2" in log
    # No curl is left running for the chunks after the stalled one.
    assert not subprocess.run(["pgrep", "-f", f"curl.*{url}"], capture_output=True).stdout


def test_more_bytes_than_the_range_are_never_taken(tmp_path):
    """A server that answers every range with endless bytes and no length:
    each chunk is cut at its length (head), judged by its digest, and the
    install completes with exactly the tarball's content."""
    need_casync()
    www, tarball, tree = make_tarball(tmp_path, mib=2)
    with range_double(tarball, flood=True) as url:
        out, verdict, log, dest = install(tmp_path, url, tarball, timeout=120)
    assert out == ["probe=0", "rc=0", "why="], (out, log)
    assert tree_of(dest) == tree_of(tree)


def test_server_that_ignores_ranges_is_named_before_anything_is_written(tmp_path):
    need_casync()
    www, tarball, tree = make_tarball(tmp_path, mib=1)
    with range_double(tarball, ignore=True) as url:
        r = sh(f"""mkdir -p $GSE_RUN; GSE_SERVER={url}
gse_ranges_probe {tarball.name} {os.path.getsize(tarball)}; echo probe=$?""", tmp_path)
    assert r.stdout.splitlines() == ["probe=1"], r.stderr
    assert "the server answers a range of img.tar.zst with '200" in (tmp_path / "run" / "log").read_text()
    # Nothing listens: 2.
    r = sh(f"""mkdir -p $GSE_RUN; GSE_SERVER=http://127.0.0.1:9 GSE_CONNECT_TIMEOUT=1
gse_ranges_probe {tarball.name} {os.path.getsize(tarball)}; echo probe=$?""", tmp_path)
    assert r.stdout.splitlines() == ["probe=2"], r.stderr


@pytest.mark.parametrize("value, count", [("", "2"), ("1", "1"), ("7", "7"), ("0", "2"), ("x y", "2"),
                                          ("100", "2"), ("$(touch pwned)", "2"), ("08", "8")])
def test_chunks_in_flight_come_from_a_sane_number(tmp_path, value, count):
    r = sh(f"GSE_RANGE_PARALLEL='{value}'; gse_range_parallel", tmp_path)
    assert r.stdout.strip() == count, r.stderr
    assert not (tmp_path / "pwned").exists()
