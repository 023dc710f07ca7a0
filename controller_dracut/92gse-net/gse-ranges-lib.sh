#!/bin/sh
# gse-ranges-lib.sh: the verified chunked install of the tarball, for a
# target no installed system can seed (a first install, a wipe).  The signed
# pointer names a casync blob index of the published tarball
# (tarball_index, with its SHA-512 and size); its table gives every chunk of
# the tarball as the offset where it ends and its SHA-256.  The chunks are
# fetched as HTTP Range requests of the tarball itself, GSE_RANGE_PARALLEL
# at a time into RAM, and each chunk's SHA-256 is checked against the index
# before its first byte goes on to the decompressor and tar: no byte that
# does not match the signed index reaches the target, and a forged or cut
# chunk stops the install where it is.  Unlike the whole-tarball stream
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

# gse_range_parallel: print GSE_RANGE_PARALLEL as a count of chunks in
# flight: a whole number from 1 to 99; 2 (the default) for anything else.
gse_range_parallel() {
    # shellcheck disable=SC2154 # _gse_dec is gse_decimal's result (gse-lib.sh)
    if gse_decimal "${GSE_RANGE_PARALLEL:-2}" && [ ${#_gse_dec} -le 2 ] && [ "$_gse_dec" -ge 1 ]; then
        echo "$_gse_dec"
    else
        echo 2
    fi
}

# gse_caibx_ranges INDEX SIZE OUT: check that INDEX is a casync blob index
# with SHA-256 chunk ids whose chunks cover exactly SIZE bytes (the signed
# size of the tarball), and write to OUT one line per chunk, in order:
# "FIRST LAST SHA256" (the byte range, inclusive, as HTTP Range names it;
# gse_index_items).  Prints "COUNT LARGEST".  2 when INDEX is malformed
# (gse_index_items), has other chunk ids, a chunk larger than
# GSE_RANGE_MAXCHUNK, or does not end at SIZE (GSE_VERIFY_REASON says which).
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

# gse_ranges_probe PATH SIZE: 0 when the server answers a Range request for
# PATH with 206 Partial Content naming SIZE as the whole (asked for the last
# byte); 1 when it answers but not with a part of SIZE bytes (it ignores
# ranges: the stream is the way); 2 when it does not answer.  Bounded as a
# pointer fetch.  Asked before anything is wiped.
gse_ranges_probe() {
    # shellcheck disable=SC2046 # the bounds are several words
    _gse_pr=$(curl -sS -o /dev/null $(GSE_FETCH_MAXSIZE=1 gse_curl_bounds $((${GSE_CONNECT_TIMEOUT:-3} * 2))) \
        -r "$(($2 - 1))-$(($2 - 1))" -w '%{http_code} %header{content-range}' "$GSE_SERVER/$1" 2> /dev/null)
    case "$_gse_pr" in
        "206 bytes $(($2 - 1))-$(($2 - 1))/$2"*) return 0 ;;
        000*) return 2 ;;
    esac
    gse_log "the server answers a range of $1 with '$_gse_pr'"
    return 1
}

# gse_range_get URL FIRST LAST OUT: fetch bytes FIRST-LAST of URL into OUT,
# bounded as every download (gse_curl_bounds, the total GSE_RANGE_TIMEOUT
# seconds) and by its length: head takes no more than it, and anything a
# server sends beyond is never written (what was taken is judged by its
# SHA-256 alone).  The SHA-256 is computed as the bytes arrive, into
# OUT.sha (OpenSSL's uses the CPU's SHA instructions where it has them;
# coreutils' is the fallback); the HTTP status and curl's exit status into
# OUT.err (absent: curl did not end by itself).  Run in the background by
# gse_ranges_feed, one per chunk: every process of the pipeline is a child
# of that job, so gse_kill_tree stops them all.
gse_range_get() {
    _gse_len=$(($3 - $2 + 1))
    set -- "$1" "$2-$3" "$4" "$_gse_len"
    # shellcheck disable=SC2046 # the bounds are several words
    if command -v openssl > /dev/null 2>&1; then
        curl -sS $(GSE_FETCH_MAXSIZE=$4 gse_curl_bounds "$GSE_RANGE_TIMEOUT") -r "$2" \
            -w '%{stderr}gse-code=%{http_code}\ngse-rc=%{exitcode}\n' "$1" 2> "$3.err" \
            | head -c "$4" | tee "$3" | openssl dgst -sha256 -r > "$3.sha"
    else
        curl -sS $(GSE_FETCH_MAXSIZE=$4 gse_curl_bounds "$GSE_RANGE_TIMEOUT") -r "$2" \
            -w '%{stderr}gse-code=%{http_code}\ngse-rc=%{exitcode}\n' "$1" 2> "$3.err" \
            | head -c "$4" | tee "$3" | sha256sum > "$3.sha"
    fi
}

# gse_ranges_feed PATH LIST DIR: write the tarball PATH to stdout, chunk by
# chunk as LIST (gse_caibx_ranges) names them, each only after its SHA-256
# matched the index; gse_range_parallel chunks in flight in DIR
# (in RAM).  0 when every chunk went out; 2 otherwise, with DIR/verdict
# (stall, network, digest, unpack: stdout closed) and DIR/reason.  Every
# chunk still in flight is stopped before it returns.
gse_ranges_feed() {
    _gse_w=$(gse_range_parallel)
    _gse_end=$(($(date +%s) + ${GSE_IMAGE_TIMEOUT:-3600}))
    _gse_i=0 _gse_next=0 _gse_n=$(wc -l < "$2")
    # Two readers of LIST: one starts the fetches, one takes the chunks in
    # order; each chunk's fetch leaves its pid in DIR/N.pid.
    exec 4< "$2" 5< "$2"
    while [ $_gse_next -lt "$_gse_n" ]; do
        # Keep the window full: chunks next .. next+W-1 in flight.
        while [ $_gse_i -lt "$_gse_n" ] && [ $_gse_i -lt $((_gse_next + _gse_w)) ]; do
            read -r _gse_a _gse_b _gse_id <&4
            # The whole image's bound, shared out: what is left of it.
            GSE_RANGE_TIMEOUT=$((_gse_end - $(date +%s)))
            [ "$GSE_RANGE_TIMEOUT" -ge 1 ] || GSE_RANGE_TIMEOUT=1
            gse_range_get "$GSE_SERVER/$1" "$_gse_a" "$_gse_b" "$3/$_gse_i" &
            echo $! > "$3/$_gse_i.pid"
            _gse_i=$((_gse_i + 1))
        done
        read -r _gse_a _gse_b _gse_want <&5
        _gse_c=$3/$_gse_next
        read -r _gse_pid < "$_gse_c.pid"
        wait "$_gse_pid"
        _gse_crc='' _gse_code='' _gse_got='' _gse_err=''
        read -r _gse_got _gse_x < "$_gse_c.sha"
        while IFS= read -r _gse_l; do
            case "$_gse_l" in
                gse-code=*) _gse_code=${_gse_l#gse-code=} ;;
                gse-rc=*) _gse_crc=${_gse_l#gse-rc=} ;;
                *) [ -n "$_gse_err" ] || _gse_err=$_gse_l ;;
            esac
        done < "$_gse_c.err"
        _gse_what="chunk $((_gse_next + 1)) of $_gse_n (bytes $_gse_a-$_gse_b)"
        _gse_v=
        # curl's 23: the chunk's length was taken, the server sent more
        # (head stopped reading); what was taken is judged by its digest.
        if [ "$_gse_crc" = 28 ]; then
            _gse_v=stall _gse_why="$_gse_what: $_gse_err"
        elif [ "$_gse_code" != 206 ] || { [ "$_gse_crc" != 0 ] && [ "$_gse_crc" != 23 ]; }; then
            _gse_v=network _gse_why="$_gse_what: HTTP ${_gse_code:-000}${_gse_err:+: $_gse_err}"
        elif [ "$_gse_got" != "$_gse_want" ]; then
            _gse_v=digest _gse_why="$_gse_what: received $(wc -c < "$_gse_c") bytes with SHA256 $_gse_got, the signed index says $_gse_want"
        elif ! cat "$_gse_c"; then
            _gse_v=unpack _gse_why="the unpacking stopped reading"
        fi
        rm -f "$_gse_c" "$_gse_c".*
        if [ -n "$_gse_v" ]; then
            echo "$_gse_v" > "$3/verdict"
            echo "$_gse_why" > "$3/reason"
            _gse_k=$((_gse_next + 1))
            while [ $_gse_k -lt $_gse_i ]; do
                read -r _gse_pid < "$3/$_gse_k.pid" && gse_kill_tree "$_gse_pid"
                _gse_k=$((_gse_k + 1))
            done
            wait
            exec 4<&- 5<&-
            return 2
        fi
        _gse_next=$((_gse_next + 1))
    done
    exec 4<&- 5<&-
    return 0
}

# gse_ranges_image PATH LIST DIR COMPRESSION: install the tarball PATH into
# DIR from its verified chunks (gse_ranges_feed; LIST from
# gse_caibx_ranges), decompressed and unpacked as they come.  0 only when
# every chunk matched the signed index and zstd/xz and tar succeeded.  On
# failure (2) $GSE_RUN/stream/verdict names the class (stall, network,
# digest, space, unpack), GSE_VERIFY_REASON the detail (for a digest: the
# chunk, the bytes and the SHA-256 received), and the reason is logged.
gse_ranges_image() {
    _f=$GSE_RUN/stream
    rm -rf "$_f"
    mkdir -p "$_f/chunks" || return 2
    case "$4" in
        xz) _dec="xz -dc" ;;
        *) _dec="zstd -dcq" ;;
    esac
    gse_log "fetching $1 in $(wc -l < "$2") verified chunks ($(gse_range_parallel) in parallel) into $3"
    gse_ranges_feed "$1" "$2" "$_f/chunks" | {
        $_dec 2> "$_f/dec.err"
        echo $? > "$_f/dec.rc"
    } | tar -xp --numeric-owner --xattrs --xattrs-include='*' --acls -C "$3" 2> "$_f/tar.err"
    _tar=$?
    if [ -e "$_f/chunks/verdict" ] && [ "$(cat "$_f/chunks/verdict")" != unpack ]; then
        mv "$_f/chunks/verdict" "$_f/verdict"
        GSE_VERIFY_REASON=$(cat "$_f/chunks/reason")
        case "$(cat "$_f/verdict")" in
            stall) gse_warn "image download stalled or timed out: $GSE_VERIFY_REASON" ;;
            network) gse_warn "image download failed: $GSE_VERIFY_REASON" ;;
            *) gse_warn "image refused: a chunk does not match the signed index: $GSE_VERIFY_REASON" ;;
        esac
        rm -rf "$_f/chunks"
        return 2
    fi
    rm -rf "$_f/chunks"
    gse_unpack_verdict "$_f" "$_tar"
}
