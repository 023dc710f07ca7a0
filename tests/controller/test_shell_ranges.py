"""The tarball in verified chunks (gse-ranges-lib.sh) on this host with dash:
the blob index's table read from real (casync) and crafted indexes, and
installs from nginx (the server GSE serves with) and from a double for what
nginx does not do: stall in the middle of a chunk, send more or fewer bytes
than signed, announce more.

Every install runs twice: through gse-chunk-gate (built as the initramfs
gets it) and through the shell's cut and check (dd, openssl, cat), which
the controller uses where the gate could not be built.

What the double cannot show: a real server's buffering and keep-alive
behaviour under load (nginx covers the good path and the forged bytes)."""
import contextlib
import functools
import hashlib
import http.server
import os
import random
import struct
import subprocess
import threading

import pytest

import pubtree
from chunkgate import gate_path
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


def install(tmp_path, url, tarball, checker, extra="", timeout=120, compression="zstd", own_ram=True):
    """gse_caibx_ranges and gse_ranges_image as the version check runs them,
    the chunks checked by ``checker`` (the fixture: the gate's path, or
    "shell"); own_ram: with the largest chunk, so that the shell's chunks
    are held in a tmpfs of their own; without, in GSE_RUN.  Returns
    (output lines, verdict, log, dest).  Every way out leaves no mount
    under tmp_path."""
    dest = tmp_path / "dest"
    dest.mkdir(exist_ok=True)
    size = os.path.getsize(tarball)
    largest = '"${_s#* }"' if own_ram else ""
    gate = "/nonexistent/gse-chunk-gate" if checker == "shell" else checker
    r = sh(f"""mkdir -p $GSE_RUN; GSE_SERVER={url}; GSE_CHUNK_GATE={gate}; {extra}
_s=$(gse_caibx_ranges {tarball}.caibx {size} $GSE_RUN/list) || exit 9
gse_ranges_image {tarball.name} {size} $GSE_RUN/list {dest} {compression} {largest}; echo rc=$?
echo "why=$GSE_VERIFY_REASON"
""", tmp_path, timeout=timeout)
    out = r.stdout.splitlines()
    verdict = tmp_path / "run" / "stream" / "verdict"
    log = (tmp_path / "run" / "log").read_text() if (tmp_path / "run" / "log").exists() else ""
    assert mounts_below(tmp_path / "run") == [], log
    return out, verdict.read_text().strip() if verdict.exists() else None, log, dest


@pytest.fixture(params=["gate", "shell"])
def checker(request):
    """What checks the chunks: gse-chunk-gate's path, or "shell"."""
    return gate_path() if request.param == "gate" else "shell"


def mounts_below(path):
    """Mount points under path (/proc/mounts)."""
    prefix = os.path.realpath(path).rstrip("/") + "/"
    with open("/proc/mounts") as fh:
        return [f.split()[1] for f in fh if f.split()[1].startswith(prefix)]


def chunk_list(tmp_path, tarball):
    """[(first, last)] of the tarball's chunks, read by the controller."""
    r = sh(f"gse_caibx_ranges {tarball}.caibx {os.path.getsize(tarball)} $T/list", tmp_path)
    assert r.returncode == 0, r.stderr
    return [tuple(map(int, line.split()[:2])) for line in (tmp_path / "list").read_text().splitlines()]


def no_curl_left(url):
    return not subprocess.run(["pgrep", "-f", f"curl.*{url}"], capture_output=True).stdout


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


@pytest.mark.parametrize("avail_kib, percent, fits", [
    # Their tmpfs: three chunks of 600 000 bytes, each in a 2 MiB page, and
    # two pages for the verdict: 10 MiB.
    (20480, "50", 0),    # 10 MiB usable: they fit
    (20476, "50", 1),    # 4 KiB less: they do not
    (20480, "x", 1),     # a malformed percentage counts as 0
])
def test_three_chunks_must_fit_in_ram_or_the_stream_is_the_way(tmp_path, avail_kib, percent, fits):
    r = sh(f"""mkdir -p $GSE_RUN; gse_mem_available() {{ echo $(({avail_kib} * 1024)); }}
GSE_STAGING_RAM_PERCENT={percent}; gse_ranges_fit 600000; echo rc=$?""", tmp_path)
    assert r.stdout.split() == [f"rc={fits}"], r.stderr
    log = (tmp_path / "run" / "log").read_text() if (tmp_path / "run" / "log").exists() else ""
    said = "version: 3 chunks of up to 600000 bytes do not fit in RAM: the verified tarball is streamed"
    assert (said in log) == bool(fits), log


def test_the_chunks_tmpfs_holds_three_chunks_in_huge_pages_and_is_released(tmp_path):
    """gse_ranges_ram mounts a tmpfs sized for the chunks held at once (each
    rounded up to a 2 MiB page, and two pages for the verdict), with huge
    pages where the kernel has them; gse_ranges_ram_release unmounts and
    removes it, and leaves a plain directory's removal to rm alone."""
    r = sh("""mkdir -p $GSE_RUN/c; gse_ranges_ram_bytes 4194304; gse_ranges_ram_bytes 4194305
gse_ranges_ram $GSE_RUN/c 4194304; echo rc=$?
grep " $GSE_RUN/c " /proc/mounts
gse_ranges_ram_release $GSE_RUN/c; echo rc=$?
[ -e $GSE_RUN/c ] || echo gone
mkdir $GSE_RUN/d; gse_ranges_ram_release $GSE_RUN/d; echo rc=$?; [ -e $GSE_RUN/d ] || echo gone""", tmp_path)
    lines = r.stdout.splitlines()
    assert lines[:3] == [str((3 * 2 + 2) << 21), str((3 * 3 + 2) << 21), "rc=0"], (lines, r.stderr)
    fields = lines[3].split()
    assert fields[2] == "tmpfs", lines
    options = fields[3].split(",")
    assert "size=16384k" in options, options
    thp = open("/sys/kernel/mm/transparent_hugepage/shmem_enabled").read() \
        if os.path.exists("/sys/kernel/mm/transparent_hugepage/shmem_enabled") else ""
    if "within_size" in thp:
        assert "huge=within_size" in options, options
    assert lines[4:] == ["rc=0", "gone", "rc=0", "gone"], lines
    assert mounts_below(tmp_path) == []


# ---- installs ---------------------------------------------------------------

def test_install_from_nginx_equals_the_tarball(tmp_path, checker):
    need_casync()
    www, tarball, tree = make_tarball(tmp_path)
    with Server(str(www)) as srv:
        out, verdict, log, dest = install(tmp_path, srv.url, tarball, checker)
    assert out == ["rc=0", "why="], (out, log)
    assert verdict is None
    n = len((tmp_path / "run" / "list").read_text().splitlines())
    assert n >= 4
    by = "" if checker == "shell" else " (gse-chunk-gate)"
    assert f"gse: fetching img.tar.zst into {dest}, cut into {n} chunks each checked before it is unpacked{by}\n" \
        in log
    assert tree_of(dest) == tree_of(tree)
    # Nothing is left in RAM (the chunks' tmpfs: install() looks for mounts).
    assert not (tmp_path / "run" / "stream" / "chunks").exists()
    assert "cannot mount a tmpfs for the chunks" not in log


def test_a_server_without_range_support_is_enough(tmp_path, checker):
    """One request for the whole tarball: a server that ignores Range (as
    Python's http.server does) serves the verified chunks too."""
    need_casync()
    www, tarball, tree = make_tarball(tmp_path, mib=2)
    with stream_double(tarball) as (url, seen):
        out, verdict, log, dest = install(tmp_path, url, tarball, checker)
    assert out == ["rc=0", "why="], (out, log)
    assert tree_of(dest) == tree_of(tree)
    assert seen == [("/img.tar.zst", None)]


@pytest.mark.parametrize("which", ["first", "middle"])
def test_forged_chunk_is_refused_before_tar_reads_it(tmp_path, which, checker):
    """The served tarball differs from the signed index in one byte: the
    chunk holding it is refused with the digest received, and no byte of it
    or after it reaches tar (forged in the first chunk: the target stays
    empty)."""
    need_casync()
    www, tarball, tree = make_tarball(tmp_path)
    chunks = chunk_list(tmp_path, tarball)
    k = 0 if which == "first" else len(chunks) // 2
    a, b = chunks[k]
    data = bytearray(tarball.read_bytes())
    data[(a + b) // 2] ^= 0xFF
    tarball.write_bytes(bytes(data))
    with Server(str(www)) as srv:
        out, verdict, log, dest = install(tmp_path, srv.url, tarball, checker)
        assert no_curl_left(srv.url)
    assert out[0] == "rc=2", (out, log)
    assert verdict == "digest"
    got = hashlib.sha256(bytes(data[a:b + 1])).hexdigest()
    assert f"why=chunk {k + 1} of {len(chunks)} (bytes {a}-{b}): received {b - a + 1} bytes with SHA256 {got}" \
        in out[1], out
    assert "image refused: a chunk does not match the signed index: chunk" in log
    if which == "first":
        assert os.listdir(dest) == []


class StreamDouble(http.server.BaseHTTPRequestHandler):
    """Answers GET of one file (ignoring Range, as a plain static server
    may), or misbehaves as told: stall_at (an offset): send the bytes before
    it, then stay silent; flood: no length (chunked), the file, then endless
    bytes; announce: a Content-Length larger than the file; short: send only
    the bytes before it, with that length (a truncated file)."""
    protocol_version = "HTTP/1.1"
    path_file = stall_at = stop = seen = short = None
    flood = announce = False

    def do_GET(self):
        self.seen.append((self.path, self.headers.get("Range")))
        data = open(self.path_file, "rb").read()
        if self.short is not None:
            data = data[:self.short]
        self.send_response(200)
        if self.flood:
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                while not self.stop.is_set():
                    block = b"\0" * 65536
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(block), block))
            except OSError:
                self.close_connection = True
            return
        self.send_header("Content-Length", str(len(data) + (4096 if self.announce else 0)))
        self.end_headers()
        try:
            if self.stall_at is not None:
                self.wfile.write(data[:self.stall_at])
                self.wfile.flush()
                self.stop.wait(120)
                self.close_connection = True
                return
            self.wfile.write(data)
            if self.announce:
                self.stop.wait(120)
                self.close_connection = True
        except OSError:
            self.close_connection = True

    def log_message(self, *args):
        pass


@contextlib.contextmanager
def stream_double(path, **kw):
    stop = threading.Event()
    seen = []
    handler = type("H", (StreamDouble,), dict(path_file=str(path), stop=stop, seen=seen, **kw))
    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(handler))
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}", seen
    finally:
        stop.set()
        srv.shutdown()
        srv.server_close()


def test_stall_in_the_middle_of_a_chunk_is_given_up_within_the_bound(tmp_path, checker):
    need_casync()
    www, tarball, tree = make_tarball(tmp_path)
    chunks = chunk_list(tmp_path, tarball)
    a, b = chunks[1]
    with stream_double(tarball, stall_at=(a + b) // 2) as (url, seen):
        out, verdict, log, dest = install(tmp_path, url, tarball, checker, "GSE_STALL_TIME=2 GSE_STALL_SPEED=1024",
                                          timeout=60)
        assert no_curl_left(url)
    assert out[0] == "rc=2", (out, log)
    assert verdict == "stall"
    assert out[1].startswith(f"why=chunk 2 of {len(chunks)} (bytes {a}-{b}): the stream ended after "
                             f"{(a + b) // 2} bytes: "), out
    assert "image download stalled or timed out: chunk 2" in log


def test_more_bytes_than_signed_are_never_read(tmp_path, checker):
    """A server that sends the tarball, then endless bytes, with no length:
    every chunk is cut at its length (head) and judged by its digest; after
    the last one nothing is read, and the install completes with exactly the
    tarball's content."""
    need_casync()
    www, tarball, tree = make_tarball(tmp_path, mib=2)
    with stream_double(tarball, flood=True) as (url, seen):
        out, verdict, log, dest = install(tmp_path, url, tarball, checker, timeout=120)
        assert no_curl_left(url)
    assert out == ["rc=0", "why="], (out, log)
    assert tree_of(dest) == tree_of(tree)


def test_an_announced_larger_answer_is_refused_before_its_body(tmp_path, checker):
    need_casync()
    www, tarball, tree = make_tarball(tmp_path, mib=1)
    size = os.path.getsize(tarball)
    with stream_double(tarball, announce=True) as (url, seen):
        out, verdict, log, dest = install(tmp_path, url, tarball, checker, timeout=60)
    assert out == ["rc=2", f"why=the server announces {size + 4096} bytes"], (out, log)
    assert verdict == "digest"
    assert f"image refused: larger than the signed size {size}: the server announces" in log
    assert os.listdir(dest) == []


def test_a_truncated_tarball_is_refused_naming_where_it_ended(tmp_path, checker):
    need_casync()
    www, tarball, tree = make_tarball(tmp_path)
    chunks = chunk_list(tmp_path, tarball)
    a, b = chunks[-1]
    with stream_double(tarball, short=a + 10) as (url, seen):
        out, verdict, log, dest = install(tmp_path, url, tarball, checker)
    assert out == ["rc=2", f"why=chunk {len(chunks)} of {len(chunks)} (bytes {a}-{b}): "
                           f"the stream ended after {a + 10} bytes"], (out, log)
    assert verdict == "digest"
    assert "image refused: shorter than the signed size" in log


def test_a_missing_tarball_is_a_network_failure(tmp_path, checker):
    need_casync()
    www, tarball, tree = make_tarball(tmp_path, mib=1)
    # A server whose tree lacks the tarball.
    (tmp_path / "empty").mkdir()
    with Server(str(tmp_path / "empty")) as srv:
        out, verdict, log, dest = install(tmp_path, srv.url, tarball, checker)
    assert out[0] == "rc=2", (out, log)
    assert verdict == "network"
    assert "404" in out[1], out
    assert "image download failed: chunk 1 of " in log


def test_an_unpacking_that_stops_reading_stops_the_download(tmp_path, checker):
    """The decompressor fails at once (a zstd tarball named xz in the
    pointer): the chunk going out meets a closed pipe, nothing more is
    fetched, no curl is left, and the verdict is the unpacking's."""
    need_casync()
    www, tarball, tree = make_tarball(tmp_path, mib=3)
    with Server(str(www)) as srv:
        out, verdict, log, dest = install(tmp_path, srv.url, tarball, checker, compression="xz")
        assert no_curl_left(srv.url)
    assert out[0] == "rc=2", (out, log)
    assert verdict == "unpack"
    assert "image refused: unpacking failed:" in log


def test_a_chunk_that_ram_cannot_hold_is_named_as_such(tmp_path):
    """(The shell's cut and check: the gate holds its chunks in its own
    memory, test_the_gate_that_cannot_hold_three_chunks... below.)  The
    controller's RAM (GSE_RUN) is full despite the check before: the
    chunk that cannot be written is named with the bytes written, the
    verdict is space (the client's, not the image's: not a digest), the RAM
    it took is given back, what was verified before it stays, and no curl
    is left.  A tmpfs that holds the first two chunks (and the controller's
    small files) but not a third stands for the full RAM.  That the failed
    chunk's RAM is given back shows in the verdict itself: it is written
    into that RAM afterwards, and without the emptying it cannot be (the
    install then reads as an unpacking failure).  The chunks are held in
    GSE_RUN here (no largest chunk given, as when their own tmpfs cannot be
    mounted): their own tmpfs is sized to hold them, and what this shows of
    a write that fails there is a machine out of memory, which a test
    cannot make safely."""
    need_casync()
    www, tarball, tree = make_tarball(tmp_path, mib=3)
    chunks = chunk_list(tmp_path, tarball)
    pages = [-(-(b - a + 1) // 4096) for a, b in chunks]
    margin = 24  # pages for the list, the log, curl's and the decoder's files, the digests
    assert len(chunks) >= 4 and pages[2] > margin, chunks
    run = tmp_path / "run"
    run.mkdir(exist_ok=True)
    size = (pages[0] + pages[1] + margin) * 4
    subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}k", "gse-test-ram", str(run)], check=True)
    try:
        with Server(str(www)) as srv:
            out, verdict, log, dest = install(tmp_path, srv.url, tarball, "shell", own_ram=False)
            assert no_curl_left(srv.url)
    finally:
        subprocess.run(["umount", str(run)], check=True)
    a, b = chunks[2]
    assert out[0] == "rc=2", (out, log)
    assert verdict == "space", (out, log)
    assert out[1].startswith(f"why=chunk 3 of {len(chunks)} (bytes {a}-{b}): could not be held in RAM ("), out
    assert "writing it failed after " in out[1]
    assert "image not installed: chunk 3 of" in log
    # The chunks before it were verified and unpacked.
    assert os.listdir(dest)
