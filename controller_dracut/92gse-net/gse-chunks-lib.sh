#!/bin/sh
# gse-chunks-lib.sh: the chunked install without a seed, staged.  Debian's
# casync fetches one chunk at a time through its HTTP helper; from an empty
# seed that is every chunk of the image.  Here the chunk ids the verified
# index names are read from its table (casync's own .caidx layout, below),
# fetched in parallel by curl into a staging store on the target, and casync
# then extracts from that store (an --extra-store): casync still checks every
# chunk against its id in the signed index before it is written, and fetches
# itself whatever the staging store lacks.
# Return codes as in gse-lib.sh (0 ok, 1 no, 2 error).
#
# The .caidx layout (casync's caformat.h; every integer a little-endian
# 64-bit number):
#   header, 48 bytes:   size (48), type CA_FORMAT_INDEX (0x96824d9c7b129ff9),
#                       feature flags, chunk size min, average, max
#   table header, 16:   size (2^64-1), type CA_FORMAT_TABLE (0xe75b9e112f17417d)
#   items, 40 each:     the offset where the chunk ends in the archive, the
#                       chunk id (32 bytes)
#   tail, 40:           0, 0, the table's offset (48), the table's size (file
#                       size - 48), CA_FORMAT_TABLE_TAIL_MARKER
#                       (0x4b4f050e5549ecd1)

# Where the staging store goes on the mounted target (outside the image: the
# name is the controller's own, removed after the extract).
# shellcheck disable=SC2034 # used by gse-version-check.sh
GSE_STAGING_NAME=.gse-chunks

# gse_le64 HEX: print the little-endian 64-bit number HEX (16 hex digits, as
# od -tx1 prints the bytes) in decimal; 2 when it is not such a number or
# does not fit the shell's arithmetic (2^63 and above).
gse_le64() {
    [ ${#1} -eq 16 ] || return 2
    case "$1" in *[!0-9a-f]*) return 2 ;; esac
    _gse_be=$(echo "$1" | sed 's/\(..\)\(..\)\(..\)\(..\)\(..\)\(..\)\(..\)\(..\)/\8\7\6\5\4\3\2\1/')
    case "$_gse_be" in [89a-f]*) return 2 ;; esac
    echo $((0x$_gse_be))
}

# gse_index_table INDEX: check that INDEX has casync's index layout (an
# archive .caidx or a blob .caibx: the same header, table and tail) and set
# _gse_isz (its size), _gse_max (the header's maximum chunk size) and
# _gse_flags (the header's feature flags, 16 hex digits, most significant
# first).  2 when INDEX is truncated, has a wrong magic number, a tail that
# does not match its size or a bad maximum chunk size (GSE_VERIFY_REASON
# says which).  The index's signature is checked before (gse_fetch_index):
# this guards the parsing, not the trust.
gse_index_table() {
    GSE_VERIFY_REASON=
    _gse_isz=$(wc -c < "$1") || { GSE_VERIFY_REASON="index: cannot read $1"; return 2; }
    _gse_isz=$((_gse_isz + 0))
    if [ "$_gse_isz" -lt 104 ] || [ $(((_gse_isz - 64) % 40)) -ne 0 ]; then
        GSE_VERIFY_REASON="index: truncated or not a casync index ($_gse_isz bytes)"
        return 2
    fi
    _gse_hd=$(od -An -v -tx1 -N 64 "$1" | tr -d ' \n')
    _gse_tl=$(od -An -v -tx1 -j $((_gse_isz - 40)) "$1" | tr -d ' \n')
    case "$_gse_hd" in
        3000000000000000f99f127b9c4d8296*ffffffffffffffff7d41172f119e5be7) ;;
        *)
            GSE_VERIFY_REASON="index: wrong magic (not a casync index)"
            return 2
            ;;
    esac
    _gse_flags=$(echo "$_gse_hd" | cut -c 33-48 | sed 's/\(..\)\(..\)\(..\)\(..\)\(..\)\(..\)\(..\)\(..\)/\8\7\6\5\4\3\2\1/')
    _gse_max=$(gse_le64 "$(echo "$_gse_hd" | cut -c 81-96)") || _gse_max=0
    _gse_tsz=$(gse_le64 "$(echo "$_gse_tl" | cut -c 49-64)") || _gse_tsz=-1
    case "$_gse_tl" in
        000000000000000000000000000000003000000000000000????????????????d1ec49550e054f4b) ;;
        *) _gse_tsz=-1 ;;
    esac
    if [ "$_gse_tsz" -ne $((_gse_isz - 48)) ]; then
        GSE_VERIFY_REASON="index: its tail does not match its size (a table of $((_gse_isz - 104)) bytes)"
        return 2
    fi
    if [ "$_gse_max" -le 0 ] || [ "$_gse_max" -gt 268435456 ]; then
        GSE_VERIFY_REASON="index: bad maximum chunk size"
        return 2
    fi
}

# gse_index_items INDEX OUT: check INDEX (gse_index_table) and write to OUT
# one line per item of its table, in order: "FIRST LAST ID" (the chunk's
# byte range in the archive or blob, inclusive, and its id in hex).  Sets
# _gse_items to "COUNT LARGEST END" (the items, the largest chunk, where the
# last one ends), and gse_index_table's results.  2 when INDEX is malformed, an item is not an offset below 2^53
# and a 32-byte id, offsets do not grow, a chunk is larger than the
# header's maximum or there is no item (GSE_VERIFY_REASON says which).
gse_index_items() {
    gse_index_table "$1" || return 2
    # One item per line; awk's numbers are exact up to 2^53 (8 PiB), more
    # than any image: an offset beyond that is refused.
    _gse_items=$(od -An -v -tx1 -w40 -j 64 -N $((_gse_isz - 104)) "$1" | awk -v max="$_gse_max" -v out="$2" '
        function byte(h) { return (index("0123456789abcdef", substr(h, 1, 1)) - 1) * 16 + index("0123456789abcdef", substr(h, 2, 1)) - 1 }
        BEGIN { prev = 0; big = 0; printf "" > out }
        {
            if (NF != 40 || $8 != "00" || byte($7) >= 32) { print "bad item " NR; err = 1; exit 2 }
            off = 0
            for (i = 7; i >= 1; i--) off = off * 256 + byte($i)
            if (off <= prev || off - prev > max) { print "bad offset " NR; err = 1; exit 2 }
            id = ""
            for (i = 9; i <= 40; i++) id = id $i
            printf "%.0f %.0f %s\n", prev, off - 1, id > out
            if (off - prev > big) big = off - prev
            prev = off
        }
        END {
            if (err) exit 2
            if (NR == 0) { print "empty"; exit 2 }
            printf "%d %.0f %.0f\n", NR, big, prev }')
    _gse_arc=$?
    if [ $_gse_arc -ne 0 ]; then
        GSE_VERIFY_REASON="index: malformed table ($_gse_items)"
        return 2
    fi
}

# gse_caidx_chunks INDEX OUT: check that INDEX has casync's .caidx layout and
# write to OUT the chunks it names, in the index's order, each once:
# "CHUNK-ID SIZE" (SIZE: the uncompressed bytes).  Prints "COUNT BYTES" (the
# distinct chunks and their uncompressed bytes).  2 when INDEX is malformed
# (gse_index_items; GSE_VERIFY_REASON says why).
gse_caidx_chunks() {
    gse_index_items "$1" "$2.items" || { rm -f "$2.items"; return 2; }
    awk -v out="$2" '
        BEGIN { n = 0; bytes = 0; printf "" > out }
        !($3 in seen) { seen[$3] = 1; n++; bytes += $2 - $1 + 1; print $3, $2 - $1 + 1 > out }
        END { printf "%d %.0f\n", n, bytes }' "$2.items"
    rm -f "$2.items"
}

# gse_staging_bytes COUNT BYTES: print what a staging store of COUNT chunks
# of BYTES uncompressed bytes may take on disk, at most: each chunk file
# rounded up to the block (and zstd's few bytes over incompressible data),
# plus a directory per chunk-id prefix (at most 65536).
gse_staging_bytes() {
    _gse_dirs=$1
    [ "$_gse_dirs" -gt 65536 ] && _gse_dirs=65536
    echo $(($2 + $1 * 8192 + _gse_dirs * 4096))
}

# gse_mem_available: print the memory available now (MemAvailable) in
# bytes; 0 when the kernel does not say.
gse_mem_available() {
    while read -r _gse_k _gse_v _gse_u; do
        [ "$_gse_k" = MemAvailable: ] && { echo $((_gse_v * 1024)); return 0; }
    done < /proc/meminfo
    echo 0
}

# gse_chunks_ram_fits BYTES: 0 when a staging store of BYTES
# (gse_staging_bytes) fits in RAM: at most GSE_STAGING_RAM_PERCENT (default
# 50; anything but a whole number up to 100 counts as 0) percent of the memory
# available now; 1 otherwise.  In RAM no chunk is written to a disk before
# casync checked it, nothing is written twice, and unmounting frees the
# store at once.
gse_chunks_ram_fits() {
    _gse_pc=${GSE_STAGING_RAM_PERCENT:-50}
    case "$_gse_pc" in *[!0-9]* | ????*) _gse_pc=0 ;; esac
    [ "$_gse_pc" -le 100 ] || _gse_pc=0
    [ "$1" -le $(($(gse_mem_available) * _gse_pc / 100)) ]
}

# gse_chunks_ram STORE BYTES: mount a tmpfs of BYTES at STORE (the tmpfs
# refuses more: a server cannot fill the memory).  0 when mounted; 1 when
# it cannot be mounted (nothing is).
gse_chunks_ram() {
    mkdir -p "$1" || return 1
    mount -t tmpfs -o "size=$2,mode=0700" gse-chunks "$1" 2> /dev/null || { rm -rf "$1"; return 1; }
}

# gse_chunks_ram_release STORE: unmount the staging store in RAM STORE
# (gse_chunks_ram) and remove its mount point.  2 when it stays mounted.
gse_chunks_ram_release() {
    umount "$1" || return 2
    rm -rf "$1"
}

# gse_chunks_stage LIST STORE: fetch the chunks of LIST (gse_caidx_chunks'
# output) from $GSE_SERVER/$GSE_STORE_PATH into the local store STORE,
# GSE_FETCH_PARALLEL (default 8) at a time over kept-alive connections.
# Each chunk is bounded as every download (gse_curl_bounds), the whole by
# gse_watch (stall, GSE_IMAGE_TIMEOUT).  The bytes are bounded whether the
# server announces a chunk's size or not (one curl writes every file: no
# pipe per file can cap them):
#   - each chunk file at most the largest chunk of LIST uncompressed plus
#     4096 (zstd's frame over incompressible data): announced larger, curl
#     refuses it (--max-filesize); written larger, the kernel stops curl
#     (its file size limit, ulimit -f, in 512-byte blocks: SIGXFSZ);
#   - all together, what curl writes at most the store's bound
#     (gse_staging_bytes of LIST's count and bytes; what the fit check
#     counted): gse_watch kills curl beyond it (checked every tenth of a
#     second: at most what arrives in that tick more).  A store in RAM is
#     also a tmpfs of that size (gse_chunks_ram), which refuses more.
# 0 when all arrived; 1 when some did not or were larger than allowed (STORE
# is removed, or emptied when it is a mount point: casync then fetches what
# it needs itself and names a missing chunk); 2 on a stall or timeout
# ($GSE_RUN/stream/verdict says stall, GSE_VERIFY_REASON the detail).
# Nothing here is trusted: casync checks every chunk it reads from STORE.
gse_chunks_stage() {
    _f=$GSE_RUN/stream
    rm -rf "$_f"
    mkdir -p "$_f" "$2" || return 2
    _base="$GSE_SERVER/${GSE_STORE_PATH:-store}"
    # curl's config format: one url and one output per chunk, quoted; then
    # "LARGEST-FILE COUNT BYTES".
    _gse_sum=$(awk -v base="$_base" -v dir="$2" -v cfg="$_f/chunks.curl" '{
        p = substr($1, 1, 4) "/" $1 ".cacnk"
        printf "url = \"%s/%s\"\noutput = \"%s/%s\"\n", base, p, dir, p > cfg
        if ($2 > big) big = $2
        n++; bytes += $2
    } END { printf "%d %d %.0f\n", big + 4096, n, bytes }' "$1") || return 2
    _gse_big=${_gse_sum%% *}
    # shellcheck disable=SC2086 # "COUNT BYTES"
    _gse_all=$(gse_staging_bytes ${_gse_sum#* })
    gse_log "staging $(wc -l < "$1") chunks into $2 (${GSE_FETCH_PARALLEL:-8} in parallel), at most $_gse_big bytes a chunk and $_gse_all in all"
    # --fail-early: the first missing chunk ends the fetch; --remove-on-error:
    # no partial chunk file is left for casync to read.
    # shellcheck disable=SC2046
    (
        ulimit -f $(((_gse_big + 511) / 512)) || exit 2
        exec curl -fsS --no-progress-meter -Z --parallel-max "${GSE_FETCH_PARALLEL:-8}" --fail-early \
            --remove-on-error --create-dirs $(GSE_FETCH_MAXSIZE=$_gse_big gse_curl_bounds) -K "$_f/chunks.curl"
    ) > /dev/null 2> "$_f/curl.err" &
    gse_watch $! "$_gse_all"
    _rc=$?
    [ $_rc -eq 0 ] && return 0
    if [ $_rc -eq 124 ] || [ $_rc -eq 28 ]; then
        echo stall > "$_f/verdict"
        GSE_VERIFY_REASON="chunks: ${GSE_WATCH_REASON:-$(head -n 1 "$_f/curl.err")}"
        gse_warn "image download stalled or timed out: $GSE_VERIFY_REASON"
        gse_chunks_drop "$2"
        return 2
    fi
    case $_rc in
        125) _gse_why=$GSE_WATCH_REASON ;;
        153) _gse_why="larger than allowed: a chunk of more than $_gse_big bytes" ;;
        *) _gse_why=$(head -n 1 "$_f/curl.err") ;;
    esac
    gse_warn "staging the chunks failed ($_gse_why): casync fetches them itself"
    gse_chunks_drop "$2"
    return 1
}

# gse_chunks_drop STORE: remove the chunks of the staging store STORE (its
# directories are named by 4 hex digits), then STORE itself; a store in RAM
# stays, an empty mount point (gse_chunks_ram_release unmounts it).
gse_chunks_drop() {
    rm -rf "${1:?}"/????
    # Silent: a mount point cannot be removed (EBUSY), which is expected.
    rm -rf "$1" 2> /dev/null
    return 0
}

# gse_chunks_unstage STORE ROOT: remove the staging store STORE and give the
# extracted ROOT back the times casync gave it (on ext4 STORE is an entry of
# ROOT, and removing it touches ROOT's mtime: the system would differ from
# the image).  ROOT may be absent (nothing was extracted).
gse_chunks_unstage() {
    if [ -d "$2" ]; then
        touch -r "$2" "$GSE_RUN/root.times" && rm -rf "$1" && touch -r "$GSE_RUN/root.times" "$2"
        _gse_urc=$?
        rm -f "$GSE_RUN/root.times"
        return $_gse_urc
    fi
    rm -rf "$1"
}
