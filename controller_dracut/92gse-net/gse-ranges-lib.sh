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


# gse_ranges_cut LIST DIR: read the tarball on stdin and write it to stdout
# chunk by chunk as LIST (gse_caibx_ranges) names them, each only after its
# SHA-256 matched the index.  A chunk is taken into DIR (in RAM) by dd,
# exactly its length (count_bytes: the last read asks for what is left of
# it, so the next chunk's first byte stays in the pipe; fullblock: reads of
# 1 MiB, not of what a pipe happens to hold, half the system time of
# `head -c`, which reads no more than it copies either).  While one chunk
# goes out (cat, in the background) the next one arrives: at most two
# chunks are held, in the two files DIR/0 and DIR/1.  0 when every chunk
# went out; 2 otherwise, with DIR/verdict and DIR/reason: short (the stream
# ended inside a chunk: its sender says why), digest (a whole chunk whose
# SHA-256 is not the index's), unpack (stdout closed).  Nothing after the
# last chunk is read.
gse_ranges_cut() {
    _gse_n=$(wc -l < "$1")
    _gse_k=0 _gse_out=
    # OpenSSL's SHA-256 uses the CPU's SHA instructions where it has them;
    # coreutils' is the fallback.
    _gse_ossl=
    command -v openssl > /dev/null 2>&1 && _gse_ossl=1
    exec 4< "$1"
    while read -r _gse_a _gse_b _gse_want <&4; do
        _gse_c=$2/$((_gse_k % 2))
        _gse_len=$((_gse_b - _gse_a + 1))
        dd bs=1048576 iflag=fullblock,count_bytes count="$_gse_len" status=none > "$_gse_c"
        if [ -n "$_gse_ossl" ]; then
            openssl dgst -sha256 -r -out "$_gse_c.sha" "$_gse_c"
        else
            sha256sum "$_gse_c" > "$_gse_c.sha"
        fi
        _gse_got=
        read -r _gse_got _gse_x < "$_gse_c.sha"
        _gse_what="chunk $((_gse_k + 1)) of $_gse_n (bytes $_gse_a-$_gse_b)"
        _gse_v=
        if [ "$_gse_got" != "$_gse_want" ]; then
            _gse_have=$(wc -c < "$_gse_c")
            if [ "$_gse_have" -lt "$_gse_len" ]; then
                _gse_v=short _gse_why="$_gse_what: the stream ended after $((_gse_a + _gse_have)) bytes"
            else
                _gse_v=digest _gse_why="$_gse_what: received $_gse_have bytes with SHA256 $_gse_got, the signed index says $_gse_want"
            fi
        # The previous chunk has gone out before this one starts (and its
        # file is free again for the chunk after this one).
        elif [ -n "$_gse_out" ] && ! wait "$_gse_out"; then
            _gse_out='' _gse_v=unpack _gse_why="the unpacking stopped reading"
        else
            cat "$_gse_c" &
            _gse_out=$!
        fi
        if [ -n "$_gse_v" ]; then
            [ -z "$_gse_out" ] || wait "$_gse_out"
            echo "$_gse_v" > "$2/verdict"
            echo "$_gse_why" > "$2/reason"
            exec 4<&-
            return 2
        fi
        _gse_k=$((_gse_k + 1))
    done
    exec 4<&-
    if [ -n "$_gse_out" ] && ! wait "$_gse_out"; then
        echo unpack > "$2/verdict"
        echo "the unpacking stopped reading" > "$2/reason"
        return 2
    fi
    return 0
}

# gse_ranges_image PATH SIZE LIST DIR COMPRESSION: install the tarball PATH
# (of SIZE bytes, signed) into DIR from its verified chunks (LIST from
# gse_caibx_ranges; gse_ranges_cut), decompressed and unpacked as they come.
# One request, every wait bounded (gse_curl_bounds, GSE_IMAGE_TIMEOUT for
# the whole) and its bytes by SIZE (an answer announcing more is refused
# before its body; nothing after the last chunk is read).  0 only when
# every chunk matched the signed index and zstd/xz and tar succeeded.  On
# failure (2) $GSE_RUN/stream/verdict names the class (stall, network,
# digest, space, unpack), GSE_VERIFY_REASON the detail (for a digest: the
# chunk, the bytes and the SHA-256 received), and the reason is logged.
gse_ranges_image() {
    _f=$GSE_RUN/stream
    rm -rf "$_f"
    mkdir -p "$_f/chunks" || return 2
    if ! gse_bound_ok "$2"; then
        echo digest > "$_f/verdict"
        GSE_VERIFY_REASON="bad signed size '$2'"
        gse_warn "image refused: $GSE_VERIFY_REASON"
        return 2
    fi
    case "$5" in
        xz) _dec="xz -dc" ;;
        *) _dec="zstd -dcq" ;;
    esac
    gse_log "fetching $1 into $4, cut into $(wc -l < "$3") chunks each checked before it is unpacked"
    {
        # shellcheck disable=SC2046 # the bounds are several words
        curl -fsS $(GSE_FETCH_MAXSIZE=$2 gse_curl_bounds "${GSE_IMAGE_TIMEOUT:-3600}") \
            -w '%{stderr}gse-size=%{size_download}\ngse-length=%header{content-length}\n' \
            "$GSE_SERVER/$1" 2> "$_f/curl.err"
        echo $? > "$_f/curl.rc"
    } | gse_ranges_cut "$3" "$_f/chunks" | {
        $_dec 2> "$_f/dec.err"
        echo $? > "$_f/dec.rc"
    } | tar -xp --numeric-owner --xattrs --xattrs-include='*' --acls -C "$4" 2> "$_f/tar.err"
    _tar=$?
    read -r _gse_curl_rc < "$_f/curl.rc"
    _v=
    [ -e "$_f/chunks/verdict" ] && read -r _v < "$_f/chunks/verdict"
    GSE_VERIFY_REASON=
    [ -e "$_f/chunks/reason" ] && GSE_VERIFY_REASON=$(cat "$_f/chunks/reason")
    rm -rf "$_f/chunks"
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
    esac
    # Every chunk went out (curl may have ended with 23: the bytes after
    # the signed size were not read), or the unpacking stopped early.
    gse_unpack_verdict "$_f" "$_tar"
}
