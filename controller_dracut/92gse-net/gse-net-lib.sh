#!/bin/sh
# gse-net-lib.sh: network bring-up, downloads and verification.
# Return codes as in gse-lib.sh (0 ok, 1 no, 2 error).

GSE_BUSYBOX=/lib/gse/busybox

# gse_net_up: bring the wired interfaces up and lease an address; returns 1
# quickly when no interface has a carrier (no network must not mean a slow
# boot: GSE_LINK_TIMEOUT and GSE_DHCP_TIMEOUT bound the wait).
gse_net_up() {
    _ifs=""
    for _n in /sys/class/net/*; do
        _n=${_n##*/}
        [ "$_n" = lo ] && continue
        [ -e "/sys/class/net/$_n/device" ] || continue
        ip link set "$_n" up 2> /dev/null && _ifs="$_ifs $_n"
    done
    [ -n "$_ifs" ] || { gse_log "network: no interface"; return 1; }
    _t=0 _max=$((${GSE_LINK_TIMEOUT:-3} * 10))
    while [ $_t -le $_max ]; do
        for _n in $_ifs; do
            [ "$(cat "/sys/class/net/$_n/carrier" 2> /dev/null)" = 1 ] || continue
            if $GSE_BUSYBOX udhcpc -i "$_n" -n -q -f -t "${GSE_DHCP_TIMEOUT:-3}" -T 1 -A 1 \
                -s /lib/gse/gse-udhcpc.sh > "$GSE_RUN/udhcpc.log" 2>&1; then
                gse_log "network: $_n up ($(ip -4 -o addr show dev "$_n" | awk '{print $4}'))"
                return 0
            fi
        done
        sleep 0.1
        _t=$((_t + 1))
    done
    gse_log "network: no carrier or no lease on$_ifs"
    return 1
}

# gse_curl ARGS...: curl with the controller's timeouts; no retries.
gse_curl() {
    curl -fsS --connect-timeout "${GSE_CONNECT_TIMEOUT:-3}" "$@"
}

# gse_fetch PATH OUT [quiet]: download $GSE_SERVER/PATH to OUT.  Returns 1
# when the server says 404 (nothing published), 2 on any other failure (a
# warning names it, unless quiet).  GSE_FETCH_CODE is the HTTP status, 000
# when no server answered.
gse_fetch() {
    curl -sS --connect-timeout "${GSE_CONNECT_TIMEOUT:-3}" --max-time "${GSE_FETCH_TIMEOUT:-30}" \
        -o "$2" -w '%{http_code}' "$GSE_SERVER/$1" > "$GSE_RUN/curl.code" 2> "$GSE_RUN/curl.err"
    # -w prints no newline: read fails at EOF yet sets the variable.
    GSE_FETCH_CODE=
    read -r GSE_FETCH_CODE < "$GSE_RUN/curl.code"
    [ -n "$GSE_FETCH_CODE" ] || GSE_FETCH_CODE=000
    case "$GSE_FETCH_CODE" in
        200) return 0 ;;
        404) rm -f "$2"; return 1 ;;
    esac
    rm -f "$2"
    [ -n "$3" ] && return 2
    if [ "$GSE_FETCH_CODE" = 000 ]; then
        gse_warn "fetch $1: no answer: $(gse_curl_error)"
    else
        gse_warn "fetch $1: HTTP $GSE_FETCH_CODE from the server"
    fi
    return 2
}

# gse_curl_error: the last curl's error message (one line).
gse_curl_error() {
    read -r _gse_e < "$GSE_RUN/curl.err" 2> /dev/null
    printf '%s\n' "${_gse_e:-unknown error}"
}

# gse_verify_pointer FILE BODY: check the clearsigned pointer FILE with the
# keyring and write the signed body (only gpgv's output is ever read).
gse_verify_pointer() {
    rm -f "$2"
    if gpgv --keyring "$GSE_KEYRING" --output "$2" "$1" > "$GSE_RUN/gpgv.log" 2>&1; then
        return 0
    fi
    rm -f "$2"
    return 2
}

# gse_verify_detached SIG FILE
gse_verify_detached() {
    gpgv --keyring "$GSE_KEYRING" "$1" "$2" > "$GSE_RUN/gpgv.log" 2>&1 || return 2
    return 0
}

# gse_pointer_get BODY KEY: print the value of "KEY: value" in the verified
# pointer body BODY; 1 when BODY has no such line.
gse_pointer_get() {
    while IFS= read -r _gse_l || [ -n "$_gse_l" ]; do
        case "$_gse_l" in
            "$2:"*)
                _gse_l=${_gse_l#*:}
                printf '%s\n' "${_gse_l#"${_gse_l%%[! ]*}"}"
                return 0
                ;;
        esac
    done < "$1"
    return 1
}

# gse_check_file FILE SHA512 SIZE
gse_check_file() {
    [ "$(wc -c < "$1")" = "$3" ] || return 2
    [ "$(sha512sum "$1" | cut -d' ' -f1)" = "$2" ] || return 2
    return 0
}

# gse_stream_image PATH DIR SHA512 SIZE COMPRESSION: stream the image from
# the server into DIR, hashing every byte on the way; 0 only when the
# download, the decompression and tar succeeded and the digest and the size
# match the signed pointer.  The reason of a failure is logged.  (Shell
# functions share their callers' variables: the names here are the
# function's own.)
gse_stream_image() {
    _f=$GSE_RUN/stream
    rm -rf "$_f"
    mkdir -p "$_f"
    mkfifo "$_f/sha.fifo" || return 2
    # OpenSSL's SHA-512 takes about 60% of coreutils' CPU time, and the
    # stream competes with zstd and tar for the CPU; curl links libcrypto
    # anyway.
    if command -v openssl > /dev/null 2>&1; then
        openssl dgst -sha512 -r < "$_f/sha.fifo" > "$_f/sha" &
    else
        sha512sum < "$_f/sha.fifo" > "$_f/sha" &
    fi
    _p1=$!
    gse_log "streaming $1 into $2"
    case "$5" in
        xz) _dec="xz -dc" ;;
        *) _dec="zstd -dcq" ;;
    esac
    {
        # The byte count comes from curl itself (on stderr, after any error).
        curl -fsS --connect-timeout "${GSE_CONNECT_TIMEOUT:-3}" -w '%{stderr}gse-size=%{size_download}\n' \
            "$GSE_SERVER/$1" 2> "$_f/curl.err"
        echo $? > "$_f/curl.rc"
    } | tee -p "$_f/sha.fifo" | {
        $_dec 2> "$_f/dec.err"
        echo $? > "$_f/dec.rc"
    } | tar -xp --numeric-owner --xattrs --xattrs-include='*' --acls -C "$2" 2> "$_f/tar.err"
    _tar=$?
    wait $_p1
    _gse_got_sha=$(cut -d' ' -f1 < "$_f/sha")
    _gse_got_size=$(sed -n 's/^gse-size=//p' "$_f/curl.err")
    if [ "$(cat "$_f/curl.rc")" != 0 ]; then
        gse_warn "image download failed: $(grep -v '^gse-size=' "$_f/curl.err")"
        return 2
    fi
    # Every downloaded byte was hashed, even when the unpacking gave up
    # early (tee -p goes on when the pipe to zstd closes): a mismatch is a
    # verdict on the published bytes, recorded in $_f/verdict.
    if [ "$_gse_got_size" != "$4" ]; then
        echo digest > "$_f/verdict"
        gse_warn "image refused: size $_gse_got_size, the signed pointer says $4 (truncated or altered)"
        return 2
    fi
    if [ "$_gse_got_sha" != "$3" ]; then
        echo digest > "$_f/verdict"
        gse_warn "image refused: SHA512 mismatch"
        return 2
    fi
    if [ "$(cat "$_f/dec.rc")" != 0 ] || [ $_tar -ne 0 ]; then
        gse_warn "image refused: unpacking failed: $(cat "$_f/dec.err" "$_f/tar.err")"
        return 2
    fi
    return 0
}
