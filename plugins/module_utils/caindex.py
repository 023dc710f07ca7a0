# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""casync archive indexes (``.caidx``), blob indexes (``.caibx``) and chunk stores, as docs/publication.md
describes them.

casync does the chunking, compression and checking; this file only builds
its command lines, reads the chunk table of an index (to know which chunk
files a publication needs, or which byte ranges of a tarball a blob index
names) and names chunk files in a store.

Both kinds of index share one layout (casync's ``caformat.h``, little-endian): a 48-byte
``CaFormatIndex`` header (size, type, feature flags, minimal, average and
maximal chunk size), a ``CaFormatTableHeader`` (size ``2**64-1``, type), one
40-byte item per chunk (end offset in the archive, 32-byte chunk id) and a
40-byte tail (two zero words, the table's offset and size, a marker).
"""

from __future__ import annotations

import fnmatch
import os
import stat
import struct

CA_FORMAT_INDEX = 0x96824D9C7B129FF9
CA_FORMAT_TABLE = 0xE75B9E112F17417D
CA_FORMAT_TABLE_TAIL_MARKER = 0x4B4F050E5549ECD1
HEADER = struct.Struct("<QQQQQQ")
TABLE_HEADER = struct.Struct("<QQ")
ITEM = struct.Struct("<Q32s")
TAIL = struct.Struct("<QQQQQ")
CHUNK_SUFFIX = ".cacnk"
BLOB_INDEX_SUFFIX = ".caibx"

# The blob index of the image tarball (docs/publication.md), which a client
# without an installed system fetches the tarball by: the tarball cut into
# these chunks as it arrives, each chunk checked against its id before a
# byte of it reaches tar.  SHA-256 ids: the client's CPU hashes SHA-256 fastest (SHA extensions)
# and the initramfs checks them with sha256sum or openssl, which know no
# SHA-512/256.
BLOB_DIGEST = "sha256"
# Large chunks (1 MiB minimum, 4 MiB on average, 16 MiB at most): a
# compressed tarball shares no chunks between versions worth a smaller size,
# fewer chunks are fewer requests, and a client holds at most a few chunks in
# RAM at a time.
BLOB_CHUNK_MIN = 1 << 20
BLOB_CHUNK_AVG = 4 << 20
BLOB_CHUNK_MAX = 16 << 20
# Only the by-product store's chunk files are compressed with it; the index,
# and so the ids, are the same whatever it is.
BLOB_COMPRESSION = "zstd"

# What the archive records of each entry: what the tarball records (numeric
# owners, permissions, nanosecond mtimes, symlinks, device nodes, FIFOs,
# sockets, xattrs, ACLs, file capabilities), never the build host's user
# names.  chattr(1) flags, btrfs subvolumes, SELinux labels and quota project
# ids are left out, as tar leaves them out.
FEATURE_ARGS = ("--with=unix", "--with=nsec-time", "--without=user-names", "--with=xattrs", "--with=acl", "--with=fcaps")
# Every entry of the root is archived as tar archives it: casync's own
# exclusion rules (.caexclude files, the nodump flag) do not apply.
SELECTION_ARGS = ("--exclude-file=no", "--exclude-nodump=no", "--exclude-submounts=yes")
# Names the controller keeps at the top of a system partition for its own
# records; an image that carries one could claim to be complete by itself.
CONTROLLER_RECORDS = (".gse-installed",)
# Bytes counted per directory, symlink or special entry in root_bytes.
ENTRY_BYTES = 4096


class CaIndexError(Exception):
    pass


# casync's encoder cache (--cache) would make an unchanged root's index in a
# second, but it is not used: with it casync can write archives that do not
# extract ("Bad message", systemd/casync issue 165, open).
def make_argv(store, index, root, casync="casync"):
    """``casync make`` writing ``index`` for ``root``, adding its chunks to ``store``."""
    return [casync] + list(SELECTION_ARGS) + list(FEATURE_ARGS) + ["--store=" + store, "make", index, root]


def blob_index_argv(store, index, tarball, casync="casync"):
    """``casync make`` writing the blob index ``index`` (``<tarball>.caibx``) of ``tarball``.

    ``store`` receives casync's compressed copies of the chunks, which
    nothing publishes: pass a throwaway directory.
    """
    return [casync, "--digest=" + BLOB_DIGEST,
            "--chunk-size=%d:%d:%d" % (BLOB_CHUNK_MIN, BLOB_CHUNK_AVG, BLOB_CHUNK_MAX),
            "--compression=" + BLOB_COMPRESSION, "--store=" + store, "make", index, tarball]


def extract_argv(tarball, directory):
    """tar extracting an image tarball into ``directory`` exactly as packed.

    Numeric owners, permissions, xattrs (file capabilities and ACLs among
    them) and the stored modification times; the compressor follows the
    name (``.tar.zst`` or ``.tar.xz``, what pack writes).
    """
    compressor = "--xz" if tarball.endswith(".xz") else "--zstd"
    return ["tar", "--extract", "--file=" + tarball, compressor, "--directory=" + directory, "--numeric-owner",
            "--xattrs", "--xattrs-include=*", "--acls", "--same-permissions", "--same-owner"]


def chunk_path(store, chunk_id):
    """The file of a chunk in a casync store: ``<store>/<first 4 hex>/<hex>.cacnk``."""
    return os.path.join(store, chunk_id[:4], chunk_id + CHUNK_SUFFIX)


def read_table(path):
    """(feature_flags, [(start, end, chunk id hex)] in order) of a ``.caidx`` or ``.caibx``; CaIndexError when
    malformed.  A blob index's chunks are the byte ranges [start, end) of the blob."""
    with open(path, "rb") as f:
        data = f.read()
    if len(data) < HEADER.size + TABLE_HEADER.size + TAIL.size:
        raise CaIndexError("%s is too short for a casync index" % path)
    size, kind, flags, _cmin, _cavg, _cmax = HEADER.unpack_from(data, 0)
    if size != HEADER.size or kind != CA_FORMAT_INDEX:
        raise CaIndexError("%s is not a casync index" % path)
    tsize, tkind = TABLE_HEADER.unpack_from(data, HEADER.size)
    if tsize != 0xFFFFFFFFFFFFFFFF or tkind != CA_FORMAT_TABLE:
        raise CaIndexError("%s has no chunk table" % path)
    items = data[HEADER.size + TABLE_HEADER.size:len(data) - TAIL.size]
    if len(items) % ITEM.size:
        raise CaIndexError("%s has a truncated chunk table" % path)
    zero1, zero2, table_offset, table_size, marker = TAIL.unpack_from(data, len(data) - TAIL.size)
    if (zero1, zero2, table_offset, marker) != (0, 0, HEADER.size, CA_FORMAT_TABLE_TAIL_MARKER) \
            or table_size != len(data) - HEADER.size:
        raise CaIndexError("%s has a malformed table tail" % path)
    chunks, last = [], 0
    for offset, chunk_id in ITEM.iter_unpack(items):
        if offset <= last:
            raise CaIndexError("%s: chunk offsets do not grow" % path)
        chunks.append((last, offset, chunk_id.hex()))
        last = offset
    return flags, chunks


def read_index(path):
    """(feature_flags, archive_size, [chunk ids in order]) of a ``.caidx``; CaIndexError when malformed."""
    flags, table = read_table(path)
    return flags, (table[-1][1] if table else 0), [chunk_id for _start, _end, chunk_id in table]


def excluded(member, patterns):
    """Whether a member name (``./path``) matches one of the patterns (``*`` crosses ``/``, as in tar)."""
    return any(fnmatch.fnmatchcase(member, p) for p in patterns)


def root_bytes(root, patterns=()):
    """Bytes the unpacked root needs: apparent sizes of regular files plus ENTRY_BYTES per other entry.

    Entries whose member name matches ``patterns`` (and their content) are
    not counted.  Hard links count once per name: casync extracts each name
    as its own file.
    """
    total = ENTRY_BYTES  # the root directory itself
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        prefix = "." if rel == "." else "./" + rel
        for name in list(dirnames) + filenames:
            if excluded(prefix + "/" + name, patterns):
                if name in dirnames:
                    dirnames.remove(name)
                continue
            st = os.lstat(os.path.join(dirpath, name))
            total += st.st_size if stat.S_ISREG(st.st_mode) else ENTRY_BYTES
    return total


def controller_records(root):
    """The controller's own record names present at the top of ``root``."""
    return [n for n in CONTROLLER_RECORDS if os.path.lexists(os.path.join(root, n))]
