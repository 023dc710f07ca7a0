#!/bin/sh
# gse-ranges-lib.sh: the verified chunked install of the tarball, for a
# target no installed system can seed (a first install, a wipe).  The signed
# pointer names a casync blob index of the published tarball
# (tarball_index, with its SHA-512 and size); its table gives every chunk of
# the tarball as the offset where it ends and its SHA-256.  The tarball is
# fetched as one stream (one request, as the raw `curl | zstd -d | tar -x`
# does: any static HTTP server, no Range requests) and cut into those
# chunks as it arrives: each is held in RAM until its SHA-256 matched the
# signed index, and only then goes on to the decompressor and tar.  No byte
# that does not match the signed index reaches the target, and a forged or
# cut chunk stops the install where it is.  Unlike the whole-tarball stream
# (gse_stream_image, which judges the digest at the end), tar never parses
# unverified bytes.
# Return codes as in gse-lib.sh (0 ok, 1 no, 2 error).

# casync's feature flag for SHA-512/256 chunk ids (caformat.h,
# CA_FORMAT_SHA512_256), in the most significant byte of the header's flags:
# the tarball's index has SHA-256 ids (what openssl and sha256sum compute).
GSE_SHA512_256_BYTE=20

# The largest chunk the controller holds in RAM: a header announcing more is
# refused (part K makes chunks of 1 to 16 MiB).
GSE_RANGE_MAXCHUNK=67108864

# gse_caibx_ranges INDEX SIZE OUT: check that INDEX is a casync blob index
# with SHA-256 chunk ids whose chunks cover exactly SIZE bytes (the signed
# size of the tarball), and write to OUT one line per chunk, in order:
# "FIRST LAST SHA256" (the byte range, inclusive; gse_index_items).
# Prints "COUNT LARGEST".  2 when INDEX is malformed (gse_index_items), has
# other chunk ids, a chunk larger than GSE_RANGE_MAXCHUNK, or does not end
# at SIZE (GSE_VERIFY_REASON says which).
# shellcheck disable=SC2154 # _gse_flags, _gse_max, _gse_items: gse_index_items'; _gse_dec: gse_decimal's
gse_caibx_ranges() {
    gse_decimal "$2" || { GSE_VERIFY_REASON="bad signed size '$2'"; return 2; }
    _gse_size=$_gse_dec
    gse_index_items "$1" "$3" || { GSE_VERIFY_REASON="tarball $GSE_VERIFY_REASON"; return 2; }
    _gse_fb=$(echo "$_gse_flags" | cut -c 1-2)
    if [ $((0x$_gse_fb & 0x$GSE_SHA512_256_BYTE)) -ne 0 ]; then
        GSE_VERIFY_REASON="tarball index: its chunk ids are not SHA-256"
        return 2
    fi
    if [ "$_gse_max" -gt "$GSE_RANGE_MAXCHUNK" ]; then
        GSE_VERIFY_REASON="tarball index: chunks of up to $_gse_max bytes, at most $GSE_RANGE_MAXCHUNK accepted"
        return 2
    fi
    # "COUNT LARGEST END"
    if [ "${_gse_items##* }" != "$_gse_size" ]; then
        GSE_VERIFY_REASON="tarball index: malformed table (it covers ${_gse_items##* } bytes, the signed tarball has $_gse_size)"
        return 2
    fi
    echo "${_gse_items% *}"
}

# gse-chunk-gate (gse-chunk-gate.c, built into the initramfs by
# module-setup.sh where a C compiler and OpenSSL's headers are): the take and
# the check below in one process, one read, SHA-256 and write of every byte
# (bench/controller/README.md).  Where it is missing, the shell's take and
# check do the same work with dd, openssl and cat.  A constant, not a
# setting: nothing but the initramfs names the program that judges the bytes.
GSE_CHUNK_GATE=/lib/gse/gse-chunk-gate

# Chunks held in RAM at once (the files DIR/0 .. DIR/2): one arriving, one
# being checked and unpacked, one in between, so that the download never
# waits for the check of the chunk before it.
GSE_RANGE_SLOTS=3

# The chunks are held in a tmpfs of their own with huge pages where the
# kernel has them (huge=within_size: a chunk file is filled by appending, and
# its pages up to its size are 2 MiB ones).  Writing a chunk into 4 KiB tmpfs
# pages takes about twice the system time (each page allocated, cleared and
# mapped on its own; bench/controller/README.md), and the take is the largest
# share of what the chunked install spends beyond the raw pipeline.
GSE_RANGE_PAGE=2097152

# gse_ranges_ram_bytes LARGEST: the size of that tmpfs: GSE_RANGE_SLOTS
# chunks of up to LARGEST bytes, each rounded up to a huge page, and two
# pages for the check's verdict and reason.
gse_ranges_ram_bytes() {
    echo $(((GSE_RANGE_SLOTS * (($1 + GSE_RANGE_PAGE - 1) / GSE_RANGE_PAGE) + 2) * GSE_RANGE_PAGE))
}

# gse_ranges_fit LARGEST: 0 when GSE_RANGE_SLOTS chunks of LARGEST bytes
# (the index's largest chunk) fit in RAM (gse_chunks_ram_fits:
# GSE_STAGING_RAM_PERCENT of the memory available); 1 otherwise, logged:
# the verified stream is the way then.
gse_ranges_fit() {
    gse_chunks_ram_fits "$(gse_ranges_ram_bytes "$1")" && return 0
    gse_log "version: $GSE_RANGE_SLOTS chunks of up to $1 bytes do not fit in RAM: the verified tarball is streamed"
    return 1
}

# gse_ranges_ram DIR LARGEST: mount the chunks' tmpfs (gse_ranges_ram_bytes)
# at the directory DIR: with huge pages, else without (a kernel without
# transparent huge pages refuses the option).  0 when mounted; 1 when no
# tmpfs could be mounted (DIR stays a directory of GSE_RUN, which holds the
# chunks then).
gse_ranges_ram() {
    _gse_rb=$(gse_ranges_ram_bytes "$2")
    mount -t tmpfs -o "size=$_gse_rb,mode=0700,huge=within_size" gse-ranges "$1" 2> /dev/null && return 0
    mount -t tmpfs -o "size=$_gse_rb,mode=0700" gse-ranges "$1" 2> /dev/null
}

# gse_ranges_ram_release DIR: unmount the chunks' tmpfs at DIR if one is
# mounted there (detached when busy) and remove DIR.  2 when it stays mounted
# (DIR is left as it is: nothing is removed through a mount).
gse_ranges_ram_release() {
    if gse_mounted "$1"; then
        umount "$1" 2> /dev/null || umount -l "$1" 2> /dev/null || return 2
    fi
    rm -rf "$1"
}

# gse_ranges_take LIST DIR: read the tarball on stdin and cut it into the
# chunks LIST (gse_caibx_ranges) names, each into a free file of DIR (in
# RAM), and name each to stdout as "K FILE" (gse_ranges_check reads it).  A
# chunk is cut by dd, exactly its length (count_bytes: the last read asks
# for what is left of it, so the next chunk's first byte stays in the pipe;
# fullblock: reads of 1 MiB, not of what a pipe happens to hold, half the
# system time of `head -c`, which reads no more than it copies either).
# Once GSE_RANGE_SLOTS files are in use, the next chunk waits for one that
# gse_ranges_check names free on fd 5 (the FIFO DIR/free, opened for
# reading by the caller); when the check has stopped (the FIFO closed) so
# does this, and a chunk named to a check that stopped ends it (SIGPIPE).
# A chunk that cannot be written (RAM full despite gse_ranges_fit) is named
# "K FILE full BYTES" (the bytes written before it failed), its file
# emptied (the RAM given back, so that the verdict can be written), and
# nothing more is read.  Nothing after the last chunk is read.
gse_ranges_take() {
    exec 4< "$1"
    _gse_k=0
    while read -r _gse_a _gse_b _gse_x <&4; do
        if [ $_gse_k -lt $GSE_RANGE_SLOTS ]; then
            _gse_s=$_gse_k
        elif ! read -r _gse_s <&5; then
            break
        fi
        # dd opens the file itself (of=): its failure to create it is its
        # own exit status, as a write failure is; reading a pipe, only
        # writing can fail.
        if ! dd bs=1048576 iflag=fullblock,count_bytes count=$((_gse_b - _gse_a + 1)) status=none \
            of="$2/$_gse_s"; then
            _gse_have=$(wc -c < "$2/$_gse_s" 2> /dev/null) || _gse_have=0
            : > "$2/$_gse_s"
            echo "$_gse_k $_gse_s full $_gse_have"
            break
        fi
        echo "$_gse_k $_gse_s"
        _gse_k=$((_gse_k + 1))
    done
    exec 4<&- 5<&-
}

# gse_ranges_check LIST DIR: for each chunk gse_ranges_take names on stdin,
# in order, check its SHA-256 against LIST (the signed index) and only then
# write it to stdout (the decompressor), and name its file free on fd 6
# (the FIFO DIR/free, opened read-write by the caller).
# 0 when every chunk of LIST went out; 2 otherwise, with DIR/verdict and
# DIR/reason: short (the stream ended inside a chunk: its sender says why),
# digest (a whole chunk whose SHA-256 is not the index's), space (the take
# could not hold a chunk in RAM), unpack (stdout closed).
gse_ranges_check() {
    exec 4< "$1"
    _gse_n=$(wc -l < "$1")
    # OpenSSL's SHA-256 uses the CPU's SHA instructions where it has them;
    # coreutils' is the fallback.
    _gse_ossl=
    command -v openssl > /dev/null 2>&1 && _gse_ossl=1
    _gse_k=0 _gse_v=
    while read -r _gse_a _gse_b _gse_want <&4; do
        _gse_what="chunk $((_gse_k + 1)) of $_gse_n (bytes $_gse_a-$_gse_b)"
        _gse_s='' _gse_full=''
        read -r _gse_i _gse_s _gse_full _gse_have
        if [ -z "$_gse_s" ]; then
            # The take stopped before this chunk.
            _gse_v=short _gse_why="$_gse_what: the stream ended before it"
            break
        fi
        if [ "$_gse_full" = full ]; then
            _gse_v=space
            _gse_why="$_gse_what: could not be held in RAM ($2): writing it failed after $_gse_have bytes"
            break
        fi
        _gse_c=$2/$_gse_s
        # The digest is read from the tool's output, not through a file:
        # while the take fills the RAM, a write here could fail.
        if [ -n "$_gse_ossl" ]; then
            _gse_got=$(openssl dgst -sha256 -r "$_gse_c")
        else
            _gse_got=$(sha256sum "$_gse_c")
        fi
        _gse_got=${_gse_got%% *}
        if [ "$_gse_got" != "$_gse_want" ]; then
            _gse_have=$(wc -c < "$_gse_c")
            if [ "$_gse_have" -lt $((_gse_b - _gse_a + 1)) ]; then
                _gse_v=short _gse_why="$_gse_what: the stream ended after $((_gse_a + _gse_have)) bytes"
            else
                _gse_v=digest _gse_why="$_gse_what: received $_gse_have bytes with SHA256 $_gse_got, the signed index says $_gse_want"
            fi
            break
        fi
        if ! cat "$_gse_c"; then
            _gse_v=unpack _gse_why="the unpacking stopped reading"
            break
        fi
        echo "$_gse_s" >&6
        _gse_k=$((_gse_k + 1))
    done
    exec 4<&-
    [ -z "$_gse_v" ] && return 0
    echo "$_gse_v" > "$2/verdict"
    echo "$_gse_why" > "$2/reason"
    return 2
}

# gse_ranges_image PATH SIZE LIST DIR COMPRESSION [LARGEST]: install the
# tarball PATH (of SIZE bytes, signed) into DIR from its verified chunks
# (LIST from gse_caibx_ranges; gse_ranges_take, gse_ranges_check),
# decompressed and unpacked as they come.  With LARGEST (the largest chunk,
# gse_caibx_ranges) the chunks are held in a tmpfs of their own
# (gse_ranges_ram), released on every way out; without it, or when it
# cannot be mounted, in GSE_RUN.
# One request, every wait bounded (gse_curl_bounds, GSE_IMAGE_TIMEOUT for
# the whole) and its bytes by SIZE (an answer announcing more is refused
# before its body; nothing after the last chunk is read).  0 only when
# every chunk matched the signed index and zstd/xz and tar succeeded.  On
# failure (2) $GSE_RUN/stream/verdict names the class (stall, network,
# digest, space: the target or, for a chunk held in RAM, the RAM is full;
# unpack), GSE_VERIFY_REASON the detail (for a digest: the chunk, the bytes
# and the SHA-256 received), and the reason is logged.
gse_ranges_image() {
    _f=$GSE_RUN/stream
    # (A tmpfs an earlier install left is unmounted first: nothing is
    # removed through a mount.)
    gse_ranges_ram_release "$_f/chunks" || return 2
    rm -rf "$_f"
    mkdir -p "$_f/chunks" || return 2
    # gse-chunk-gate holds the chunks in its own memory; the shell's take
    # and check hold them in files, in a tmpfs of their own when it mounts.
    _gate=
    [ -x "$GSE_CHUNK_GATE" ] && _gate=1
    if [ -z "$_gate" ]; then
        if [ -n "$6" ] && ! gse_ranges_ram "$_f/chunks" "$6"; then
            gse_log "cannot mount a tmpfs for the chunks held at once: they are held in $GSE_RUN"
        fi
        mkfifo "$_f/chunks/free" || { gse_ranges_ram_release "$_f/chunks"; return 2; }
        # The FIFO of free chunk files: each side opens it in its own process
        # before any of its code runs (the check read-write, which never waits;
        # the take for reading, which waits for the check's open), so the take
        # sees the FIFO close whenever the check ends.
    fi
    [ -r "$3" ] || { gse_ranges_ram_release "$_f/chunks"; GSE_VERIFY_REASON="no chunk list $3"; return 2; }
    if ! gse_bound_ok "$2"; then
        gse_ranges_ram_release "$_f/chunks"
        echo digest > "$_f/verdict"
        GSE_VERIFY_REASON="bad signed size '$2'"
        gse_warn "image refused: $GSE_VERIFY_REASON"
        return 2
    fi
    case "$5" in
        xz) _dec="xz -dc" ;;
        *) _dec="zstd -dcq" ;;
    esac
    if [ -n "$_gate" ]; then
        gse_log "fetching $1 into $4, cut into $(wc -l < "$3") chunks each checked before it is unpacked (gse-chunk-gate)"
        gse_image_curl "$1" "$2" "$_f" | {
            "$GSE_CHUNK_GATE" "$3" "$_f/chunks"
            echo $? > "$_f/gate.rc"
        } | {
            $_dec 2> "$_f/dec.err"
            echo $? > "$_f/dec.rc"
        } | tar -xp --numeric-owner --xattrs --xattrs-include='*' --acls -C "$4" 2> "$_f/tar.err"
        _tar=$?
    else
        gse_log "fetching $1 into $4, cut into $(wc -l < "$3") chunks each checked before it is unpacked"
        # shellcheck disable=SC2094 # the FIFO is meant to be read and written: it carries the free chunk files
        gse_image_curl "$1" "$2" "$_f" | gse_ranges_take "$3" "$_f/chunks" 5< "$_f/chunks/free" \
            | gse_ranges_check "$3" "$_f/chunks" 6<> "$_f/chunks/free" | {
            $_dec 2> "$_f/dec.err"
            echo $? > "$_f/dec.rc"
        } | tar -xp --numeric-owner --xattrs --xattrs-include='*' --acls -C "$4" 2> "$_f/tar.err"
        _tar=$?
    fi
    read -r _gse_curl_rc < "$_f/curl.rc"
    _v=
    [ -e "$_f/chunks/verdict" ] && read -r _v < "$_f/chunks/verdict"
    GSE_VERIFY_REASON=
    [ -e "$_f/chunks/reason" ] && GSE_VERIFY_REASON=$(cat "$_f/chunks/reason")
    if [ -n "$_gate" ] && [ -z "$_v" ]; then
        # The gate ended without a verdict: only its success (every chunk
        # out) lets the unpacking's result stand.
        _gse_gate_rc=
        read -r _gse_gate_rc < "$_f/gate.rc" 2> /dev/null
        if [ "$_gse_gate_rc" != 0 ]; then
            _v=gate GSE_VERIFY_REASON="gse-chunk-gate ended with status ${_gse_gate_rc:-unknown} and no verdict"
        fi
    fi
    # (Verified bytes are what they are whether or not this RAM is given
    # back: a tmpfs that stays mounted is said, and judges nothing.)
    gse_ranges_ram_release "$_f/chunks" || gse_warn "the chunks' tmpfs $_f/chunks stays mounted"
    # More than the signed size announced: curl refused the body (63).
    if [ "$_gse_curl_rc" = 63 ]; then
        echo digest > "$_f/verdict"
        _gse_len=$(sed -n 's/^gse-length=//p' "$_f/curl.err")
        GSE_VERIFY_REASON="the server announces ${_gse_len:-more} bytes"
        gse_warn "image refused: larger than the signed size $2: $GSE_VERIFY_REASON"
        return 2
    fi
    case "$_v" in
        short)
            # The sender's reason: a stall, a network error, or a server
            # that sent less than the signed size.
            if [ "$_gse_curl_rc" = 28 ]; then
                echo stall > "$_f/verdict"
                GSE_VERIFY_REASON="$GSE_VERIFY_REASON: $(gse_curl_error "$_f/curl.err")"
                gse_warn "image download stalled or timed out: $GSE_VERIFY_REASON"
            elif [ "$_gse_curl_rc" != 0 ]; then
                echo network > "$_f/verdict"
                GSE_VERIFY_REASON="$GSE_VERIFY_REASON: $(gse_curl_error "$_f/curl.err")"
                gse_warn "image download failed: $GSE_VERIFY_REASON"
            else
                echo digest > "$_f/verdict"
                gse_warn "image refused: shorter than the signed size $2 (truncated): $GSE_VERIFY_REASON"
            fi
            return 2
            ;;
        digest)
            echo digest > "$_f/verdict"
            gse_warn "image refused: a chunk does not match the signed index: $GSE_VERIFY_REASON"
            return 2
            ;;
        list | gate)
            # The controller's own failure (a chunk list gse_caibx_ranges
            # did not write, a gate that crashed): nothing was judged.
            echo unpack > "$_f/verdict"
            gse_warn "image not installed: $GSE_VERIFY_REASON"
            return 2
            ;;
        space)
            # The client's RAM, not the image: nothing was refused.
            echo space > "$_f/verdict"
            gse_warn "image not installed: $GSE_VERIFY_REASON"
            return 2
            ;;
    esac
    # Every chunk went out (curl may have ended with 23: the bytes after
    # the signed size were not read), or the unpacking stopped early.
    gse_unpack_verdict "$_f" "$_tar"
}
