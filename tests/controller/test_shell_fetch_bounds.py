"""Every download of the controller stops at its byte bound, also when the
server announces no size: Debian's curl (7.88) applies --max-filesize only
to an answer with a Content-Length, not to a chunked one.  The controller's
shell functions run with dash on this host against chunked_http, a double of
a lying server (nginx sends a file's Content-Length: it cannot send more
than the file, or send forever); what the double cannot show is a real
server's buffering, which changes how much more than the bound crosses the
network before curl stops, not what reaches a file.

Each test's shell runs under a file size limit (ulimit -f) a little above
the bound: had more bytes than that been written to any file, the kernel
would have stopped the writer (SIGXFSZ) and the expected refusal would not
be the one seen.  The time bounds are set far beyond the tests' deadlines:
only the byte bound can end an endless answer."""
import hashlib
import itertools
import os
import re
import subprocess
import time

import pytest

from client import chunked_http, loopback_http
from test_shell_lib import LIB, sh

BOUND = 100000
SLACK = 64 << 10  # what the file size limit allows beyond the bound


def blocks(data, size=1 << 16):
    return [data[i:i + size] for i in range(0, len(data), size)]


def endless():
    return itertools.repeat(b"x" * (1 << 16))


def limited(bound):
    """The test shell's file size limit (512-byte blocks): bound + SLACK."""
    return f"ulimit -f {(bound + SLACK) // 512};"


def ended(sent, path, deadline=60):
    """Wait until the server's answer to path ended (the body ended or the
    client closed the connection); the bytes it sent."""
    end = time.monotonic() + deadline
    while time.monotonic() < end:
        for p, n in sent:
            if p == path:
                return n
        time.sleep(0.05)
    raise AssertionError(f"the server still sends {path}: the client did not close the connection")


FETCH = ("mkdir -p $GSE_RUN; GSE_SERVER=http://127.0.0.1:{port}; GSE_FETCH_TIMEOUT=3600; GSE_STALL_TIME=3600;"
         "{limit} {setup} gse_fetch obj $T/out; echo \"rc=$? curl=$GSE_FETCH_RC code=$GSE_FETCH_CODE\"")


@pytest.mark.parametrize("how", ["more", "endless"])
def test_fetch_cuts_an_unannounced_answer_beyond_its_bound(tmp_path, how):
    """A server that sends more than the bound, or never stops, without a
    Content-Length: refused, the file removed, curl stopped (the server's
    answer ends: the connection was closed)."""
    data = os.urandom(BOUND + 300000)
    with chunked_http(lambda path, stop: blocks(data) if how == "more" else endless()) as (port, sent):
        r = sh(FETCH.format(port=port, limit=limited(BOUND), setup=f"GSE_FETCH_MAXSIZE={BOUND};"),
               tmp_path, timeout=120)
        ended(sent, "/obj")
    assert r.stdout.split() == ["rc=2", "curl=63", "code=200"], r.stdout + r.stderr
    assert not (tmp_path / "out").exists()
    log = (tmp_path / "run" / "log").read_text()
    assert f"fetch obj: larger than allowed: more than {BOUND} bytes without an announced size, cut off" in log, log


@pytest.mark.parametrize("extra, ok", [(-1, True), (0, True), (1, False)])
def test_an_unannounced_answer_within_the_bound_is_taken_whole(tmp_path, extra, ok):
    data = os.urandom(BOUND + extra)
    with chunked_http(lambda path, stop: blocks(data)) as (port, sent):
        r = sh(FETCH.format(port=port, limit=limited(BOUND), setup=f"GSE_FETCH_MAXSIZE={BOUND};"), tmp_path)
    if ok:
        assert r.stdout.split() == ["rc=0", "curl=0", "code=200"], r.stdout + r.stderr
        assert (tmp_path / "out").read_bytes() == data
    else:
        assert r.stdout.split() == ["rc=2", "curl=63", "code=200"], r.stdout + r.stderr
        assert not (tmp_path / "out").exists()


def test_an_announced_size_beyond_the_bound_is_refused_before_the_body(tmp_path):
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "obj").write_bytes(os.urandom(BOUND + 1))
    with loopback_http(tmp_path / "www", served=[]) as port:
        r = sh(FETCH.format(port=port, limit=limited(BOUND), setup=f"GSE_FETCH_MAXSIZE={BOUND};"), tmp_path)
    assert r.stdout.split() == ["rc=2", "curl=63", "code=200"], r.stdout + r.stderr
    assert not (tmp_path / "out").exists()
    log = (tmp_path / "run" / "log").read_text()
    assert f"fetch obj: larger than allowed: the server announces {BOUND + 1} bytes, at most {BOUND} accepted" in log


@pytest.mark.parametrize("announced", [True, False])
def test_an_error_page_larger_than_the_bound_is_judged_by_its_status(tmp_path, announced):
    """The bound is the object's: a 404 page of more bytes than a small
    bound, its size announced or not, still says "nothing published"."""
    (tmp_path / "www").mkdir()
    if announced:
        server = loopback_http(tmp_path / "www")
    else:
        server = chunked_http(lambda path, stop: (404, [b"<html>not found</html>\n" * 100]))
    with server as port:
        port = port if announced else port[0]
        r = sh(FETCH.format(port=port, limit="", setup="GSE_FETCH_MAXSIZE=10;"), tmp_path)
    assert r.stdout.split() == ["rc=1", "curl=0", "code=404"], r.stdout + r.stderr
    assert not (tmp_path / "out").exists()


def test_a_bound_that_is_no_number_is_refused_before_any_request(tmp_path):
    with chunked_http(lambda path, stop: [b"x"]) as (port, sent):
        r = sh(FETCH.format(port=port, limit="", setup="GSE_FETCH_MAXSIZE=12x;"), tmp_path)
    assert r.stdout.split() == ["rc=2", "curl=2", "code=000"], r.stdout + r.stderr
    assert sent == []
    assert "fetch obj: bad size bound '12x'" in (tmp_path / "run" / "log").read_text()


def test_a_pointer_is_bounded_without_a_signed_size(tmp_path):
    """version.txt is fetched before anything says its size: the fixed small
    bound (GSE_SMALL_MAXSIZE) cuts an endless answer; the version check is
    left the reason."""
    with chunked_http(lambda path, stop: endless()) as (port, sent):
        r = sh(f"mkdir -p $GSE_RUN; GSE_SERVER=http://127.0.0.1:{port}; GSE_CONNECT_TIMEOUT=1800;"
               f"ulimit -f $(((GSE_SMALL_MAXSIZE + {SLACK}) / 512)); gse_fetch_pointer version.txt; echo rc=$?;"
               "echo $GSE_SMALL_MAXSIZE; gse_result version_fetch", tmp_path, timeout=120)
        ended(sent, "/version.txt")
    rc, small, result = r.stdout.splitlines()
    assert rc == "rc=2", r.stdout + r.stderr
    assert result == f"2 200 large larger than allowed: more than {small} bytes without an announced size, cut off"
    assert not (tmp_path / "run" / "version.txt").exists()


# ---- the image stream -------------------------------------------------------

@pytest.fixture
def image(tmp_path):
    """A tar.zst of a small tree: (bytes, SHA512, the tree)."""
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "f").write_bytes(os.urandom(300 << 10))
    (root / "small").write_text("small\n")
    img = tmp_path / "image.tar.zst"
    subprocess.run(f"tar -C {root} -cf - . | zstd -q -o {img}", shell=True, check=True)
    data = img.read_bytes()
    return data, hashlib.sha512(data).hexdigest(), root


STREAM = ("mkdir -p $GSE_RUN {dest}; GSE_SERVER=http://127.0.0.1:{port}; GSE_IMAGE_TIMEOUT=3600; GSE_STALL_TIME=3600;"
          "gse_stream_image image.tar.zst {dest} {sha} {size} zstd; echo rc=$?; cat $GSE_RUN/stream/verdict 2>/dev/null")


@pytest.mark.parametrize("how", ["honest", "more", "endless"])
def test_the_image_stream_stops_at_the_signed_size(tmp_path, image, how):
    """Served without a Content-Length: the signed image as it is unpacks;
    the image followed by more bytes, or by bytes without end, is refused
    as larger than the signed size, and the download stops there."""
    import vm
    data, sha, root = image
    tail = {"honest": [], "more": [bytes(1 << 20)], "endless": endless()}[how]
    dest = tmp_path / "dest"
    with chunked_http(lambda path, stop: itertools.chain(blocks(data), tail)) as (port, sent):
        r = sh(STREAM.format(port=port, dest=dest, sha=sha, size=len(data)), tmp_path, timeout=120)
        ended(sent, "/image.tar.zst")
    if how == "honest":
        assert r.stdout.split() == ["rc=0"], r.stdout + r.stderr
        assert vm.tree_digest(str(dest)) == vm.tree_digest(str(root))
        return
    assert r.stdout.split() == ["rc=2", "digest"], r.stdout + r.stderr
    log = (tmp_path / "run" / "log").read_text()
    assert (f"image refused: larger than the signed size {len(data)}: more than {len(data)} bytes sent "
            "without an announced size, cut off") in log, log


def test_the_image_stream_refuses_an_announced_size_beyond_the_signed_one(tmp_path, image):
    data, sha, root = image
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "image.tar.zst").write_bytes(data + b"\0")
    served = []
    with loopback_http(tmp_path / "www", served=served) as port:
        r = sh(STREAM.format(port=port, dest=tmp_path / "dest", sha=sha, size=len(data)), tmp_path, timeout=120)
    assert r.stdout.split() == ["rc=2", "digest"], r.stdout + r.stderr
    log = (tmp_path / "run" / "log").read_text()
    assert f"image refused: larger than the signed size {len(data)}: the server announces {len(data) + 1} bytes" in log


# ---- the report's answer ------------------------------------------------------

def test_the_reports_answer_is_kept_to_its_bound(tmp_path):
    """The server's answer to a report is only quoted in the log: an
    endless one is cut (the report counts as sent: the status was 200)."""
    (tmp_path / "report.json").write_text("{}\n")
    with chunked_http(lambda path, stop: endless()) as (port, sent):
        r = sh(f". {LIB}/95gse-report/gse-report-lib.sh\n"
               f"mkdir -p $GSE_RUN; GSE_SERVER=http://127.0.0.1:{port}; GSE_REPORT_TIMEOUT=1800; _gse_token=t;"
               f"ulimit -f $(((GSE_REPORT_ANSWER_BYTES + {SLACK}) / 512)); gse_report_send $T/report.json; echo rc=$?;"
               "echo $GSE_REPORT_ANSWER_BYTES", tmp_path, timeout=120)
        ended(sent, "/report")
    rc, bound = r.stdout.split()
    assert rc == "rc=0", r.stdout + r.stderr
    assert (tmp_path / "run" / "report.answer").stat().st_size == int(bound)
    assert "report: sent (xxxx" in (tmp_path / "run" / "log").read_text()


# ---- the staged chunks ------------------------------------------------------

STAGE = ("mkdir -p $GSE_RUN; GSE_SERVER=http://127.0.0.1:{port}; GSE_STORE_PATH=store;"
         "GSE_FETCH_TIMEOUT=3600; GSE_IMAGE_TIMEOUT=3600; GSE_STALL_TIME=3600; ulimit -f 8192;"
         "gse_caidx_chunks {idx} $GSE_RUN/chunks.list > /dev/null || echo listrc=$?;"
         "gse_chunks_stage $GSE_RUN/chunks.list {dest}/.gse-chunks; echo stage=$?")


def staged_store(tmp_path):
    from test_shell_chunks import need_casync, real_index
    need_casync()
    root, www, idx = real_index(tmp_path)
    return www, idx


def store_file(www, path):
    p = www / path.lstrip("/")
    return p.read_bytes() if path.startswith("/store/") and p.is_file() else None


def bounds(log):
    """The staging's bounds as its log line names them: (a chunk, in all)."""
    m = re.search(r"at most (\d+) bytes a chunk and (\d+) in all", log)
    assert m, log
    return int(m.group(1)), int(m.group(2))


def test_an_unannounced_chunk_larger_than_any_chunk_is_not_staged(tmp_path):
    """One chunk answered with 2 MiB more than its bytes, without a
    Content-Length: the kernel stops curl at the largest chunk's bound (its
    file size limit), the staging gives the fetching to casync."""
    www, idx = staged_store(tmp_path)
    victim = "/" + str(sorted((www / "store").rglob("*.cacnk"))[0].relative_to(www))

    def answer(path, stop):
        data = store_file(www, path)
        if data is None:
            return None
        return blocks(data + bytes(2 << 20)) if path == victim else blocks(data)

    (tmp_path / "dest").mkdir()
    with chunked_http(answer) as (port, sent):
        r = sh(STAGE.format(port=port, idx=idx, dest=tmp_path / "dest"), tmp_path, timeout=300)
    assert r.stdout.split() == ["stage=1"], r.stdout + r.stderr
    log = (tmp_path / "run" / "log").read_text()
    big, _ = bounds(log)
    assert f"staging the chunks failed (larger than allowed: a chunk of more than {big} bytes)" in log, log
    assert not (tmp_path / "dest" / ".gse-chunks").exists()


def test_unannounced_chunks_beyond_the_stores_bound_are_not_staged(tmp_path):
    """Every chunk answered padded to the largest chunk's bound (each file
    within it), one then held silent so that curl cannot end: what curl
    wrote passes the store's bound (the sum the fit check counted), and the
    watch stops it there.  The stall and time bounds are far beyond the
    test's deadline."""
    www, idx = staged_store(tmp_path)
    listed = subprocess.run(["dash", "-c", f". {LIB}/90gse-base/gse-lib.sh; . {LIB}/92gse-net/gse-chunks-lib.sh;"
                             f"GSE_RUN={tmp_path}; gse_caidx_chunks {idx} {tmp_path}/list"],
                            capture_output=True, text=True, check=True).stdout.split()
    sizes = [int(line.split()[1]) for line in (tmp_path / "list").read_text().splitlines()]
    big = max(sizes) + 4096
    chunk_files = sorted((www / "store").rglob("*.cacnk"))
    held = "/" + str(chunk_files[0].relative_to(www))
    all_bound = int(subprocess.run(["dash", "-c", f". {LIB}/92gse-net/gse-chunks-lib.sh; gse_staging_bytes "
                                    f"{listed[0]} {listed[1]}"], capture_output=True, text=True).stdout)
    # The padded chunks but the held one pass the store's bound.
    assert (len(chunk_files) - 1) * big > all_bound, (len(chunk_files), big, all_bound)

    def answer(path, stop):
        data = store_file(www, path)
        if data is None:
            return None
        padded = data + bytes(big - len(data))
        if path == held:
            return itertools.chain(blocks(padded[:100]), (stop.wait(600) and b"" for _ in range(1)))
        return blocks(padded)

    (tmp_path / "dest").mkdir()
    with chunked_http(answer) as (port, sent):
        r = sh(STAGE.format(port=port, idx=idx, dest=tmp_path / "dest"), tmp_path, timeout=300)
    assert r.stdout.split() == ["stage=1"], r.stdout + r.stderr
    log = (tmp_path / "run" / "log").read_text()
    assert bounds(log) == (big, all_bound)
    assert f"staging the chunks failed (larger than allowed: wrote more than {all_bound} bytes)" in log, log
    assert not (tmp_path / "dest" / ".gse-chunks").exists()


# ---- the client config.d ------------------------------------------------------

def fetch_config_function():
    """gse-fetch-config.sh without its library lines and its call: the function alone."""
    with open(os.path.join(LIB, "92gse-net", "gse-fetch-config.sh")) as f:
        text = f.read()
    text = re.sub(r"^\. /lib/gse/.*$|^gse_env_load$", "", text, flags=re.MULTILINE)
    return text[:text.index('if [ "$(gse_result network)" = 0 ]')]


@pytest.mark.parametrize("size, says", [
    (5000, "fetch config/1/config.d.tar.gz: larger than allowed: more than 5000 bytes without an announced size, "
           "cut off"),
    ("5k", "config.d refused: bad size '5k'"),
])
def test_the_config_tarball_is_bounded_by_its_signed_size(tmp_path, signing, size, says):
    """config.txt verifies and names the tarball's size: a server that then
    sends the tarball without end is cut at that size (a size that is no
    number is refused before the download)."""
    import pubtree
    home, ring = signing
    pubtree.clearsign_pointer(home, str(tmp_path / "config.txt"), {
        "format": 1, "serial": 1, "path": "config/1/config.d.tar.gz", "sha512": "a" * 128, "size": size})
    signed = (tmp_path / "config.txt").read_bytes()

    def answer(path, stop):
        return {"/config.txt": [signed], "/config/1/config.d.tar.gz": endless()}.get(path)

    with chunked_http(answer) as (port, sent):
        r = sh(f"{fetch_config_function()}\n"
               f"mkdir -p $GSE_RUN; GSE_SERVER=http://127.0.0.1:{port}; GSE_KEYRING={ring};"
               "GSE_FETCH_TIMEOUT=3600; GSE_STALL_TIME=3600; ulimit -f 1024;"
               "( gse_fetch_config ); echo rc=$?", tmp_path, timeout=120)
        if size == 5000:
            ended(sent, "/config/1/config.d.tar.gz")
    assert r.stdout.split() == ["rc=2"], r.stdout + r.stderr
    log = (tmp_path / "run" / "log").read_text()
    assert says in log, log
    assert not (tmp_path / "run" / "config.d.tar.gz").exists()
