"""The staged chunked install's shell functions (gse-chunks-lib.sh) on this
host with dash: the casync index table read from real and crafted indexes,
the chunks fetched in parallel into a staging store, and casync extracting
from it with every chunk checked (a forged chunk is refused, a missing one
named, a stall bounded)."""
import os
import random
import struct
import subprocess

import pytest

import pubtree
from client import loopback_http
from test_shell_lib import sh

INDEX_TYPE = 0x96824d9c7b129ff9
TABLE_TYPE = 0xe75b9e112f17417d
TAIL_MARKER = 0x4b4f050e5549ecd1


def need_casync():
    import shutil
    if not shutil.which("casync"):
        pytest.skip("missing: casync")


def caidx(items, cmax=262144, header=None, table=None, tail=None):
    """A .caidx in casync's layout (caformat.h) from (end offset, chunk id)
    items; header/table/tail replace those parts' fields (to craft damage).
    test_crafted_layout_is_casyncs checks it against a real index."""
    h = header or (48, INDEX_TYPE, 0, 16384, 65536, cmax)
    out = struct.pack("<6Q", *h)
    out += struct.pack("<2Q", *(table or (2**64 - 1, TABLE_TYPE)))
    for off, cid in items:
        out += struct.pack("<Q", off) + cid
    size = 16 + 40 * len(items) + 40
    out += struct.pack("<5Q", *(tail or (0, 0, 48, size, TAIL_MARKER)))
    return out


def ids(n, seed=0):
    r = random.Random(seed)
    return [r.randbytes(32) for _ in range(n)]


def chunks(tmp_path, data):
    """gse_caidx_chunks on data: (rc, summary line, listed lines, log)."""
    idx = tmp_path / "x.caidx"
    idx.write_bytes(data)
    r = sh(f"mkdir -p $GSE_RUN; gse_caidx_chunks {idx} $T/list; echo rc=$?; echo \"why=$GSE_VERIFY_REASON\"",
           tmp_path)
    out = r.stdout.splitlines()
    listed = (tmp_path / "list").read_text().splitlines() if (tmp_path / "list").exists() else []
    return out, listed, r.stderr


def real_index(tmp_path, size=3 << 20):
    root = tmp_path / "root"
    (root / "d").mkdir(parents=True)
    (root / "d" / "big").write_bytes(random.Random(1).randbytes(size))
    # The same 300 KiB twice: chunks that repeat in the index.
    same = random.Random(2).randbytes(300 << 10)
    (root / "a").write_bytes(same)
    (root / "b").write_bytes(same)
    (root / "small").write_text("small\n")
    www = tmp_path / "www"
    www.mkdir()
    return root, www, pubtree.make_index(str(www), "v1", str(root))


# ---- the index table --------------------------------------------------------

def test_real_index_lists_every_chunk_of_the_store_once(tmp_path):
    need_casync()
    root, www, idx = real_index(tmp_path)
    out, listed, err = chunks(tmp_path, open(idx, "rb").read())
    assert out[-2:] == ["rc=0", "why="], (out, err)
    store = {p.name[:-len(".cacnk")] for p in (www / "store").rglob("*.cacnk")}
    got = [line.split() for line in listed]
    assert [i for i, _ in got] and len({i for i, _ in got}) == len(got)
    assert {i for i, _ in got} == store
    # The summary: the distinct chunks and their uncompressed bytes, which
    # are each chunk's own size (casync's chunk id is the digest of it).
    count, total = map(int, out[0].split())
    assert count == len(store) and total == sum(int(s) for _, s in got)
    one = next(p for p in (www / "store").rglob("*.cacnk"))
    size = dict(got)[one.name[:-len(".cacnk")]]
    raw = subprocess.run(["zstd", "-dcq", str(one)], capture_output=True, check=True).stdout
    assert len(raw) == int(size)


def test_crafted_layout_is_casyncs(tmp_path):
    """caidx() writes casync's own layout: rebuilt from the
    items of a real index, it gives the same bytes."""
    need_casync()
    _, _, idx = real_index(tmp_path)
    data = open(idx, "rb").read()
    header = struct.unpack("<6Q", data[:48])
    items = [(struct.unpack("<Q", data[i:i + 8])[0], data[i + 8:i + 40]) for i in range(64, len(data) - 40, 40)]
    assert caidx(items, header=header) == data


def test_repeated_chunk_is_listed_once_in_index_order(tmp_path):
    a, b, c = ids(3)
    out, listed, err = chunks(tmp_path, caidx([(100, a), (250, b), (300, a), (1000, c)]))
    assert out[-2] == "rc=0", (out, err)
    assert listed == [f"{a.hex()} 100", f"{b.hex()} 150", f"{c.hex()} 700"]
    assert out[0] == "3 950"


@pytest.mark.parametrize("cut", [1, 39, 40, 41])
def test_truncated_index_is_refused(tmp_path, cut):
    data = caidx(list(zip([100, 200, 300], ids(3))))
    out, listed, err = chunks(tmp_path, data[:-cut])
    assert out[-2] == "rc=2", (out, err)
    assert out[-1].startswith("why=index: truncated or not a casync index") or \
        out[-1].startswith("why=index: its tail does not match its size"), out


def test_too_short_index_is_refused(tmp_path):
    out, listed, err = chunks(tmp_path, caidx([])[:100])
    assert out[-2:] == ["rc=2", "why=index: truncated or not a casync index (100 bytes)"], out


@pytest.mark.parametrize("part", ["header size", "header type", "table size", "table type"])
def test_wrong_magic_is_refused(tmp_path, part):
    kw = {"header size": {"header": (49, INDEX_TYPE, 0, 1, 2, 262144)},
          "header type": {"header": (48, INDEX_TYPE ^ 1, 0, 1, 2, 262144)},
          "table size": {"table": (2**64 - 2, TABLE_TYPE)},
          "table type": {"table": (2**64 - 1, TABLE_TYPE ^ (1 << 63))}}[part]
    out, listed, err = chunks(tmp_path, caidx(list(zip([100, 200], ids(2))), **kw))
    assert out[-2:] == ["rc=2", "why=index: wrong magic (not a casync index)"], out


@pytest.mark.parametrize("tail", [
    (0, 0, 48, 2**62, TAIL_MARKER),          # a huge table claimed
    (0, 0, 48, 2**64 - 1, TAIL_MARKER),      # beyond the shell's arithmetic
    (0, 0, 48, 16 + 40 * 3 + 40, TAIL_MARKER),  # one item more than present
    (0, 0, 48, 16 + 40 * 2 + 40, TAIL_MARKER ^ 1),
    (1, 0, 48, 16 + 40 * 2 + 40, TAIL_MARKER),
    (0, 0, 47, 16 + 40 * 2 + 40, TAIL_MARKER),
])
def test_tail_that_does_not_match_is_refused(tmp_path, tail):
    out, listed, err = chunks(tmp_path, caidx(list(zip([100, 200], ids(2))), tail=tail))
    assert out[-2] == "rc=2", out
    assert out[-1].startswith("why=index: its tail does not match its size"), out


@pytest.mark.parametrize("offsets, why", [
    ([100, 100, 300], "bad offset 2"),            # a chunk of 0 bytes
    ([300, 200], "bad offset 2"),                 # offsets going back
    ([100, 100 + 262145], "bad offset 2"),        # larger than the maximum chunk
    ([100, 2**53 + 100], "bad item 2"),           # beyond exact arithmetic
    ([100, 2**63 + 5], "bad item 2"),
])
def test_bad_offsets_are_refused(tmp_path, offsets, why):
    out, listed, err = chunks(tmp_path, caidx(list(zip(offsets, ids(len(offsets))))))
    assert out[-2:] == ["rc=2", f"why=index: malformed table ({why})"], out


def test_huge_maximum_chunk_size_is_refused(tmp_path):
    out, listed, err = chunks(tmp_path, caidx(list(zip([100], ids(1))), cmax=2**40))
    assert out[-2:] == ["rc=2", "why=index: bad maximum chunk size"], out


def test_empty_table_is_refused(tmp_path):
    out, listed, err = chunks(tmp_path, caidx([]))
    assert out[-2:] == ["rc=2", "why=index: malformed table (empty)"], out


@pytest.mark.parametrize("hexval, want", [
    ("3000000000000000", "48"), ("ffffffffffffff7f", str(2**63 - 1)), ("0100000000000000", "1"),
    ("ffffffffffffffff", "rc=2"), ("0000000000000080", "rc=2"), ("30000000000000", "rc=2"),
    ("3000000000000g00", "rc=2"),
])
def test_le64(tmp_path, hexval, want):
    r = sh(f"gse_le64 {hexval} || echo rc=$?", tmp_path)
    assert r.stdout.strip() == want


def test_staging_bound_covers_the_store(tmp_path):
    """What the fit check adds for the staging store is at least what the
    store of a real index takes on disk (du: blocks and directories)."""
    need_casync()
    _, www, idx = real_index(tmp_path, size=8 << 20)
    out, listed, err = chunks(tmp_path, open(idx, "rb").read())
    r = sh(f"gse_staging_bytes {out[0]}", tmp_path)
    du = int(subprocess.run(["du", "-sB1", str(www / "store")], capture_output=True, text=True,
                            check=True).stdout.split()[0])
    assert int(r.stdout) >= du, (r.stdout, du)


# ---- staging and extract ------------------------------------------------------

STAGE = ("mkdir -p $GSE_RUN; GSE_SERVER=http://127.0.0.1:{port}; GSE_STORE_PATH=store;"
         "gse_caidx_chunks {idx} $GSE_RUN/chunks.list > /dev/null || echo listrc=$?;"
         "GSE_CHUNK_STAGING={dest}/$GSE_STAGING_NAME;"
         "gse_chunks_stage $GSE_RUN/chunks.list $GSE_CHUNK_STAGING; echo stage=$?;"
         "[ -d $GSE_CHUNK_STAGING ] || GSE_CHUNK_STAGING=;"
         "gse_casync_extract {idx} {dest}; echo extract=$?; cat $GSE_RUN/stream/verdict 2>/dev/null;"
         "gse_chunks_unstage {dest}/$GSE_STAGING_NAME {dest}")


def test_staged_install_fetches_each_chunk_once_and_equals_the_image(tmp_path):
    need_casync()
    import vm
    root, www, idx = real_index(tmp_path)
    dest = tmp_path / "dest"
    dest.mkdir()
    served = []
    with loopback_http(www, served=served) as port:
        r = sh(STAGE.format(port=port, idx=idx, dest=dest), tmp_path)
    assert r.stdout.split() == ["stage=0", "extract=0"], r.stdout + r.stderr + (tmp_path / "run" / "log").read_text()
    assert vm.tree_digest(str(dest)) == vm.tree_digest(str(root))
    # Every chunk of the store once, by curl; casync fetched nothing itself.
    store = sorted("/" + str(p.relative_to(www)) for p in (www / "store").rglob("*.cacnk"))
    assert sorted(p for p, n in served) == store
    log = (tmp_path / "run" / "log").read_text()
    assert f"staging {len(store)} chunks into {dest}/.gse-chunks (8 in parallel)" in log


def test_forged_chunk_in_the_staging_store_is_refused(tmp_path):
    """The server hands out another chunk's valid bytes under a chunk's
    name: curl stages it, casync refuses it (Bad message) before writing the
    file it belongs to."""
    need_casync()
    root, www, idx = real_index(tmp_path)
    store = sorted((www / "store").rglob("*.cacnk"))
    # The index's first chunk: the archive's start, the root directory's
    # entry and the start of its first file, "a" (entries are sorted).
    first = open(idx, "rb").read()[72:104].hex()
    victim = next(p for p in store if p.name == f"{first}.cacnk")
    other = next(p for p in store if p != victim)
    victim.write_bytes(other.read_bytes())
    dest = tmp_path / "dest"
    dest.mkdir()
    with loopback_http(www) as port:
        r = sh(STAGE.format(port=port, idx=idx, dest=dest), tmp_path)
    assert r.stdout.split() == ["stage=0", "extract=2", "digest"], r.stdout + r.stderr
    log = (tmp_path / "run" / "log").read_text()
    assert "image refused: a chunk does not match the signed index: casync:" in log, log
    assert "Bad message" in log
    # Nothing of the chunk that did not verify was written.
    assert not (dest / "a").exists() or (dest / "a").read_bytes() != (root / "a").read_bytes()
    assert not (dest / "d" / "big").exists()


def test_missing_chunk_falls_back_to_casync_which_names_it(tmp_path):
    need_casync()
    root, www, idx = real_index(tmp_path)
    victim = sorted((www / "store").rglob("*.cacnk"))[0]
    victim.unlink()
    dest = tmp_path / "dest"
    dest.mkdir()
    with loopback_http(www) as port:
        r = sh(STAGE.format(port=port, idx=idx, dest=dest), tmp_path)
    assert r.stdout.split() == ["stage=1", "extract=2", "missing"], r.stdout + r.stderr
    log = (tmp_path / "run" / "log").read_text()
    assert "staging the chunks failed (curl: (22) The requested URL returned error: 404" in log, log
    assert not (dest / ".gse-chunks").exists()


def test_stalled_chunk_is_bounded(tmp_path):
    """The server answers a chunk's headers and 100 bytes, then holds the
    connection silent: the staging is given up on the stall bound (the
    total bound is far beyond the test's deadline)."""
    need_casync()
    root, www, idx = real_index(tmp_path)
    dest = tmp_path / "dest"
    dest.mkdir()
    with loopback_http(www, stall_after=100, stall_prefix="/store/") as port:
        r = sh("GSE_STALL_TIME=2; GSE_IMAGE_TIMEOUT=3600; GSE_FETCH_TIMEOUT=3600;"
               + STAGE.format(port=port, idx=idx, dest=dest).split("[ -d")[0]
               + "cat $GSE_RUN/stream/verdict", tmp_path, timeout=300)
    assert r.stdout.split() == ["stage=2", "stall"], r.stdout + r.stderr
    log = (tmp_path / "run" / "log").read_text()
    assert "image download stalled or timed out: chunks: " in log, log
    assert not (dest / ".gse-chunks").exists()


def test_casync_killed_on_a_stall_leaves_nothing_in_tmpdir(tmp_path):
    """casync fetching a chunk itself stalls and is killed (gse_watch, kill
    -9): its HTTP helper's working directories (*.carem), which it removes
    only when it ends by itself, are in the install's own directory, which
    the next install removes, and not in the TMPDIR the controller was
    started with (/var/tmp by default, where they would pile up)."""
    need_casync()
    root, www, idx = real_index(tmp_path)
    dest = tmp_path / "dest"
    dest.mkdir()
    outside = tmp_path / "tmpdir"
    outside.mkdir()
    with loopback_http(www, stall_after=100, stall_prefix="/store/") as port:
        r = sh(f"export TMPDIR={outside}; mkdir -p $GSE_RUN; GSE_SERVER=http://127.0.0.1:{port}; "
               "GSE_STORE_PATH=store; GSE_STALL_TIME=2; GSE_IMAGE_TIMEOUT=3600; "
               f"gse_casync_extract {idx} {dest}; echo extract=$?; cat $GSE_RUN/stream/verdict",
               tmp_path, timeout=300)
    assert r.stdout.split() == ["extract=2", "stall"], r.stdout + r.stderr
    assert os.listdir(outside) == []
    assert list((tmp_path / "run" / "stream" / "tmp").glob("*.carem")), "casync made no working directory"


def test_oversized_chunk_is_not_staged(tmp_path):
    """A chunk file larger than any chunk of the index can be (its largest
    uncompressed size plus a frame) is not written to the staging store."""
    need_casync()
    root, www, idx = real_index(tmp_path)
    victim = sorted((www / "store").rglob("*.cacnk"))[0]
    victim.write_bytes(os.urandom(2 << 20))
    dest = tmp_path / "dest"
    dest.mkdir()
    with loopback_http(www) as port:
        r = sh(STAGE.format(port=port, idx=idx, dest=dest), tmp_path)
    assert r.stdout.split()[:2] == ["stage=1", "extract=2"], r.stdout + r.stderr
    log = (tmp_path / "run" / "log").read_text()
    assert "staging the chunks failed (curl: (63) Maximum file size exceeded" in log, log


# ---- the staging store in RAM -------------------------------------------------

def mem_available():
    with open("/proc/meminfo") as f:
        return next(int(line.split()[1]) * 1024 for line in f if line.startswith("MemAvailable:"))


def mounted(path):
    with open("/proc/mounts") as f:
        return any(line.split()[1] == str(path) for line in f)


@pytest.mark.parametrize("percent", [50, 10])
def test_ram_fits_follows_the_memory_available(tmp_path, percent):
    """A little under the bound fits, a little over does not (the memory
    available moves between the two reads: a margin of 1 %); at 0 % nothing
    does (the store goes to the target)."""
    bound = mem_available() * percent // 100
    under, over = int(bound * 0.99), int(bound * 1.01) + 1
    r = sh(f"GSE_STAGING_RAM_PERCENT={percent}; gse_chunks_ram_fits {under}; echo under=$?;"
           f"gse_chunks_ram_fits {over}; echo over=$?; GSE_STAGING_RAM_PERCENT=0; gse_chunks_ram_fits 1; echo none=$?",
           tmp_path)
    assert r.stdout.split() == ["under=0", "over=1", "none=1"], r.stdout + r.stderr


@pytest.mark.parametrize("value", ["abc", "5x", "-1", "101", "1000"])
def test_ram_percent_that_is_no_percentage_lets_nothing_fit(tmp_path, value):
    """A malformed setting neither ends the controller's shell (an
    arithmetic error would) nor sends the store to RAM."""
    r = sh(f"GSE_STAGING_RAM_PERCENT='{value}'; gse_chunks_ram_fits 1; echo fits=$?", tmp_path)
    assert r.stdout.split() == ["fits=1"], r.stdout + r.stderr


RAM_STAGE = ("mkdir -p $GSE_RUN; GSE_SERVER=http://127.0.0.1:{port}; GSE_STORE_PATH=store;"
             "cs=$(gse_caidx_chunks {idx} $GSE_RUN/chunks.list) || echo listrc=$?;"
             "GSE_CHUNK_STAGING=$GSE_RUN/chunks;"
             "gse_chunks_ram $GSE_CHUNK_STAGING {size}; echo ram=$?;"
             "gse_chunks_stage $GSE_RUN/chunks.list $GSE_CHUNK_STAGING; echo stage=$?;"
             "grep -c ' {run}/chunks tmpfs ' /proc/mounts;"
             "gse_casync_extract {idx} {dest}; echo extract=$?; cat $GSE_RUN/stream/verdict 2>/dev/null;"
             "gse_chunks_ram_release $GSE_CHUNK_STAGING; echo release=$?")


def ram_stage(tmp_path, www, idx, dest, size, served=None):
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    run = tmp_path / "run"
    try:
        with loopback_http(www, served=served) as port:
            return sh(RAM_STAGE.format(port=port, idx=idx, dest=dest, size=size, run=run), tmp_path)
    finally:
        if mounted(run / "chunks"):
            subprocess.run(["umount", str(run / "chunks")])


def test_staged_install_in_ram_writes_no_chunk_to_the_target_and_frees_the_store(tmp_path):
    need_casync()
    import vm
    root, www, idx = real_index(tmp_path)
    dest = tmp_path / "dest"
    dest.mkdir()
    served = []
    out, _, _ = chunks(tmp_path, open(idx, "rb").read())
    size = sh(f"gse_staging_bytes {out[0]}", tmp_path).stdout.strip()
    r = ram_stage(tmp_path, www, idx, dest, size, served)
    # The store was a tmpfs of its own while casync read it, then unmounted.
    assert r.stdout.split() == ["ram=0", "stage=0", "1", "extract=0", "release=0"], r.stdout + r.stderr
    assert vm.tree_digest(str(dest)) == vm.tree_digest(str(root))
    assert not (tmp_path / "run" / "chunks").exists() and not mounted(tmp_path / "run" / "chunks")
    # Every chunk of the store once, by curl, into RAM: none on the target.
    store = sorted("/" + str(p.relative_to(www)) for p in (www / "store").rglob("*.cacnk"))
    assert sorted(p for p, n in served) == store
    assert not (dest / ".gse-chunks").exists()
    assert f"staging {len(store)} chunks into {tmp_path}/run/chunks" in (tmp_path / "run" / "log").read_text()


def test_ram_store_takes_no_more_than_its_size(tmp_path):
    """A store sized below what the chunks take (as a server sending more
    than the index says would need) fills up: the staging fails and casync
    fetches the chunks itself; the memory taken stays bounded."""
    need_casync()
    import vm
    root, www, idx = real_index(tmp_path)
    dest = tmp_path / "dest"
    dest.mkdir()
    r = ram_stage(tmp_path, www, idx, dest, 1 << 20)
    assert r.stdout.split() == ["ram=0", "stage=1", "1", "extract=0", "release=0"], r.stdout + r.stderr
    log = (tmp_path / "run" / "log").read_text()
    assert "staging the chunks failed (curl: (23)" in log, log
    # The store was emptied, its mount point kept for the release.
    assert "busy" not in r.stderr, r.stderr
    assert vm.tree_digest(str(dest)) == vm.tree_digest(str(root))
