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

# The bound in bytes of an object whose size is not signed beforehand: a
# version or config pointer, a detached signature, SHA512SUMS (each a few
# KiB).  Fixed, not a setting: the pointer is fetched before any client
# config.d is read.
GSE_SMALL_MAXSIZE=1048576

# gse_curl_bounds [TOTAL]: print curl's options bounding every wait of one
# object: the connect (GSE_CONNECT_TIMEOUT), a stall (less than
# GSE_STALL_SPEED bytes/s for GSE_STALL_TIME seconds) and the whole transfer
# (TOTAL seconds, default GSE_FETCH_TIMEOUT); with GSE_FETCH_MAXSIZE set,
# an answer that announces more bytes than that (Content-Length) is refused
# before its body (curl exits 63).  curl exits 28 when a time bound is hit.
# --max-filesize alone does not bound the bytes: Debian's curl (7.88) does
# not apply it to an answer without Content-Length (chunked), so every
# download also goes through gse_capped.
gse_curl_bounds() {
    echo "--connect-timeout ${GSE_CONNECT_TIMEOUT:-3} --speed-limit ${GSE_STALL_SPEED:-1024}" \
        "--speed-time ${GSE_STALL_TIME:-20} --max-time ${1:-${GSE_FETCH_TIMEOUT:-30}}" \
        "${GSE_FETCH_MAXSIZE:+--max-filesize $GSE_FETCH_MAXSIZE}"
}

# gse_capped MAX FLAG: copy stdin to stdout, at most MAX bytes; when stdin
# holds more, create FLAG and stop reading: the writer before it in the
# pipe (curl) gets a closed pipe and stops (curl: exit status 23).  head
# reads no more than it copies, so the byte after the MAX is the second
# head's.  MAX is a decimal number below 10^18 (gse_bound_ok).
gse_capped() {
    rm -f "$2"
    head -c "$1"
    [ "$(head -c 1 | wc -c)" -eq 0 ] || : > "$2"
}

# gse_bound_ok MAX: 0 when MAX is a byte bound the shell can count with (a
# decimal number of at most 18 digits); 2 otherwise.
gse_bound_ok() {
    gse_decimal "$1" || return 2
    # shellcheck disable=SC2154 # _gse_dec is gse_decimal's result (gse-lib.sh)
    [ ${#_gse_dec} -le 18 ] || return 2
}

# gse_fetch PATH OUT [quiet]: download $GSE_SERVER/PATH to OUT, every wait
# bounded (gse_curl_bounds) and no more than GSE_FETCH_MAXSIZE bytes
# (default GSE_SMALL_MAXSIZE) accepted, with or without a Content-Length:
# the body goes through gse_capped into OUT, so OUT never holds more than
# the bound and a server that sends more is cut off there, whatever it
# announced.  Returns 1 when the server says 404 (nothing published), 2 on
# any other failure, a stall, a timeout or too many bytes included (a
# warning names it, unless quiet; OUT is removed).  GSE_FETCH_CODE is the HTTP status, 000 when no
# server answered; GSE_FETCH_RC curl's exit status (28: a time bound was
# hit, the answer's status may still be 200), 63 when the answer was larger
# than the bound (curl's own status for an announced size; also given when
# the cap cut an answer without Content-Length: curl ended with 23);
# GSE_FETCH_REASON the detail of a failure (the curl error, or "larger than
# allowed: ...").  A GSE_FETCH_MAXSIZE that is no decimal number below
# 10^18 is refused before any request (GSE_FETCH_RC 2, as curl's "failed
# to initialize").
gse_fetch() {
    GSE_FETCH_REASON=
    _gse_max=${GSE_FETCH_MAXSIZE:-$GSE_SMALL_MAXSIZE}
    if ! gse_bound_ok "$_gse_max"; then
        GSE_FETCH_RC=2 GSE_FETCH_CODE=000 GSE_FETCH_REASON="bad size bound '$_gse_max'"
        rm -f "$2"
        [ -n "$3" ] || gse_warn "fetch $1: $GSE_FETCH_REASON"
        return 2
    fi
    _gse_max=$_gse_dec
    rm -f "$GSE_RUN/curl.over"
    # The status and the announced length go to stderr after curl's error
    # line (stdout is the body); curl's exit status to a file of its own:
    # a pipe's status is its last command's.
    {
        # shellcheck disable=SC2046
        curl -sS $(GSE_FETCH_MAXSIZE=$_gse_max gse_curl_bounds) \
            -w '%{stderr}gse-code=%{http_code}\ngse-length=%header{content-length}\n' \
            "$GSE_SERVER/$1" 2> "$GSE_RUN/curl.err"
        echo $? > "$GSE_RUN/curl.rc"
    } | gse_capped "$_gse_max" "$GSE_RUN/curl.over" > "$2"
    _gse_crc=
    read -r _gse_crc < "$GSE_RUN/curl.rc"
    GSE_FETCH_CODE='' _gse_len=''
    while IFS= read -r _gse_l; do
        case "$_gse_l" in
            gse-code=*) GSE_FETCH_CODE=${_gse_l#gse-code=} ;;
            gse-length=*) _gse_len=${_gse_l#gse-length=} ;;
        esac
    done 2> /dev/null < "$GSE_RUN/curl.err"
    [ -n "$GSE_FETCH_CODE" ] || GSE_FETCH_CODE=000
    if [ "$_gse_crc" = 63 ] || [ -e "$GSE_RUN/curl.over" ]; then
        if [ "$GSE_FETCH_CODE" != 200 ]; then
            # The bound is the object's: an error page larger than it is
            # judged by its status.
            _gse_crc=0
        else
            _gse_crc=63
            if gse_bound_ok "$_gse_len" && [ "$_gse_dec" -gt "$_gse_max" ]; then
                GSE_FETCH_REASON="larger than allowed: the server announces $_gse_dec bytes, at most $_gse_max accepted"
            else
                GSE_FETCH_REASON="larger than allowed: more than $_gse_max bytes without an announced size, cut off"
            fi
        fi
    fi
    # shellcheck disable=SC2034 # read by the network check
    GSE_FETCH_RC=$_gse_crc
    if [ "$_gse_crc" = 0 ]; then
        case "$GSE_FETCH_CODE" in
            200) return 0 ;;
            404) rm -f "$2"; return 1 ;;
        esac
    fi
    rm -f "$2"
    if [ "$_gse_crc" = 63 ]; then
        :
    elif [ "$_gse_crc" = 0 ]; then
        GSE_FETCH_REASON="HTTP $GSE_FETCH_CODE from the server"
    else
        GSE_FETCH_REASON=$(gse_curl_error)
    fi
    [ -n "$3" ] && return 2
    if [ "$_gse_crc" = 63 ]; then
        gse_warn "fetch $1: $GSE_FETCH_REASON"
    elif [ "$_gse_crc" = 28 ]; then
        gse_warn "fetch $1: stalled or timed out (HTTP $GSE_FETCH_CODE): $GSE_FETCH_REASON"
    elif [ "$GSE_FETCH_CODE" = 000 ]; then
        gse_warn "fetch $1: no answer: $GSE_FETCH_REASON"
    else
        gse_warn "fetch $1: HTTP $GSE_FETCH_CODE from the server"
    fi
    return 2
}

# gse_fetch_sized MAX PATH OUT [quiet]: gse_fetch with GSE_FETCH_MAXSIZE
# set to MAX (a signed size) for this download only; gse_fetch's return
# code and results (GSE_FETCH_RC, GSE_FETCH_CODE, GSE_FETCH_REASON).
gse_fetch_sized() {
    _gse_fm=$GSE_FETCH_MAXSIZE
    GSE_FETCH_MAXSIZE=$1
    shift
    gse_fetch "$@"
    _gse_fsrc=$?
    GSE_FETCH_MAXSIZE=$_gse_fm
    return $_gse_fsrc
}

# gse_fetch_pointer PATH: download the version pointer PATH (version.txt,
# or a pinned group's groups/GROUP/version.txt) to $GSE_RUN/version.txt,
# the whole request bounded by twice GSE_CONNECT_TIMEOUT and its size by
# GSE_SMALL_MAXSIZE (a pointer is small), and leave its status for the
# version check as the result version_fetch: "RC HTTP-CODE" (RC as
# gse_fetch's), then "stall CURL-ERROR" when a time bound cut it, or "large
# REASON" when it was larger than allowed.  Returns gse_fetch's code,
# quietly.
gse_fetch_pointer() {
    _gse_ft=$GSE_FETCH_TIMEOUT _gse_fm=$GSE_FETCH_MAXSIZE
    GSE_FETCH_TIMEOUT=$((${GSE_CONNECT_TIMEOUT:-3} * 2)) GSE_FETCH_MAXSIZE=
    gse_fetch "$1" "$GSE_RUN/version.txt" quiet
    _gse_prc=$?
    GSE_FETCH_TIMEOUT=$_gse_ft GSE_FETCH_MAXSIZE=$_gse_fm
    # It answered, then stopped sending in the middle of the pointer: the
    # version check names the stall (curl's own words kept for it).
    if [ "$GSE_FETCH_RC" = 28 ] && [ "$GSE_FETCH_CODE" != 000 ]; then
        gse_result version_fetch "$_gse_prc $GSE_FETCH_CODE stall $GSE_FETCH_REASON"
    elif [ "$GSE_FETCH_RC" = 63 ]; then
        gse_result version_fetch "$_gse_prc $GSE_FETCH_CODE large $GSE_FETCH_REASON"
    else
        gse_result version_fetch "$_gse_prc $GSE_FETCH_CODE"
    fi
    return $_gse_prc
}

# gse_curl_error [FILE]: the last curl's error message (one line; the lines
# gse_fetch asks curl to add are skipped), from FILE (default
# $GSE_RUN/curl.err).
# shellcheck disable=SC2120 # FILE is optional (gse-ranges-lib.sh passes one)
gse_curl_error() {
    _gse_e=
    while IFS= read -r _gse_l; do
        case "$_gse_l" in gse-*) ;; *) _gse_e=$_gse_l; break ;; esac
    done 2> /dev/null < "${1:-$GSE_RUN/curl.err}"
    printf '%s\n' "${_gse_e:-unknown error}"
}

# gse_image_curl PATH SIZE DIR: write the image PATH from the server to
# stdout, bounded as every image download (gse_curl_bounds, the whole by
# GSE_IMAGE_TIMEOUT, an answer announcing more than SIZE refused before its
# body: exit status 63); curl's error, then "gse-size=" (bytes received)
# and "gse-length=" (announced) lines go to DIR/curl.err, its exit status
# to DIR/curl.rc (a pipe's status is its last command's).  The one download
# of the whole-tarball stream and of the tarball in verified chunks.
gse_image_curl() {
    # shellcheck disable=SC2046 # the bounds are several words
    curl -fsS $(GSE_FETCH_MAXSIZE=$2 gse_curl_bounds "${GSE_IMAGE_TIMEOUT:-3600}") \
        -w '%{stderr}gse-size=%{size_download}\ngse-length=%header{content-length}\n' \
        "$GSE_SERVER/$1" 2> "$3/curl.err"
    echo $? > "$3/curl.rc"
}

# gse_stream_image PATH DIR SHA512 SIZE COMPRESSION: stream the image from
# the server into DIR, hashing every byte on the way; 0 only when the
# download, the decompression and tar succeeded and the digest and the size
# match the signed pointer.  On failure (2) $GSE_RUN/stream/verdict names the
# class (stall, network, digest, space, unpack), GSE_VERIFY_REASON the
# detail (with the digest of the bytes received), and the reason is logged.
# Every wait is bounded (gse_curl_bounds, GSE_IMAGE_TIMEOUT for the whole
# image), and the bytes by SIZE: an answer announcing more is refused
# before its body, one without an announced size is cut after SIZE bytes
# (gse_capped), either a digest verdict ("larger than the signed size").
# (Shell functions share their callers' variables: the names here are the
# function's own.)
gse_stream_image() {
    _f=$GSE_RUN/stream
    rm -rf "$_f"
    mkdir -p "$_f"
    if ! gse_bound_ok "$4"; then
        echo digest > "$_f/verdict"
        GSE_VERIFY_REASON="bad signed size '$4'"
        gse_warn "image refused: $GSE_VERIFY_REASON"
        return 2
    fi
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
    # The byte count comes from curl itself (on stderr, after any error).
    gse_image_curl "$1" "$4" "$_f" | gse_capped "$4" "$_f/over" | tee -p "$_f/sha.fifo" | {
        $_dec 2> "$_f/dec.err"
        echo $? > "$_f/dec.rc"
    } | tar -xp --numeric-owner --xattrs --xattrs-include='*' --acls -C "$2" 2> "$_f/tar.err"
    _tar=$?
    wait $_p1
    _gse_got_sha=$(cut -d' ' -f1 < "$_f/sha")
    _gse_got_size=$(sed -n 's/^gse-size=//p' "$_f/curl.err")
    _gse_len=$(sed -n 's/^gse-length=//p' "$_f/curl.err")
    read -r _gse_curl_rc < "$_f/curl.rc"
    # More than the signed size: announced (curl refused it, 63) or sent
    # (the cap found a byte after SIZE and closed the pipe).
    if [ "$_gse_curl_rc" = 63 ] || [ -e "$_f/over" ]; then
        echo digest > "$_f/verdict"
        if [ "$_gse_curl_rc" = 63 ] && gse_bound_ok "$_gse_len"; then
            GSE_VERIFY_REASON="the server announces $_gse_dec bytes"
        else
            GSE_VERIFY_REASON="more than $4 bytes sent without an announced size, cut off"
        fi
        gse_warn "image refused: larger than the signed size $4: $GSE_VERIFY_REASON"
        return 2
    fi
    if [ "$_gse_curl_rc" != 0 ]; then
        GSE_VERIFY_REASON="$(grep -v '^gse-' "$_f/curl.err" | head -n 1) (after $_gse_got_size bytes)"
        if [ "$_gse_curl_rc" = 28 ]; then
            echo stall > "$_f/verdict"
            gse_warn "image download stalled or timed out: $GSE_VERIFY_REASON"
        else
            echo network > "$_f/verdict"
            gse_warn "image download failed: $GSE_VERIFY_REASON"
        fi
        return 2
    fi
    # Every downloaded byte was hashed, even when the unpacking gave up
    # early (tee -p goes on when the pipe to zstd closes): a mismatch is a
    # verdict on the published bytes, which names their digest.
    if [ "$_gse_got_size" != "$4" ] || [ "$_gse_got_sha" != "$3" ]; then
        echo digest > "$_f/verdict"
        GSE_VERIFY_REASON="received $_gse_got_size bytes with SHA512 $_gse_got_sha"
        if [ "$_gse_got_size" != "$4" ]; then
            gse_warn "image refused: size $_gse_got_size, the signed pointer says $4 (truncated or altered): $GSE_VERIFY_REASON"
        else
            gse_warn "image refused: SHA512 mismatch: $GSE_VERIFY_REASON"
        fi
        return 2
    fi
    gse_unpack_verdict "$_f" "$_tar"
}

# gse_unpack_verdict DIR TAR-RC: 0 when the decompressor (its exit status
# in DIR/dec.rc) and tar (TAR-RC) succeeded; else 2, with DIR/verdict space
# (tar found no space left) or unpack, GSE_VERIFY_REASON their first error
# lines (DIR/dec.err, DIR/tar.err), and the reason logged.
gse_unpack_verdict() {
    if [ "$(cat "$1/dec.rc")" != 0 ] || [ "$2" -ne 0 ]; then
        GSE_VERIFY_REASON=$(cat "$1/dec.err" "$1/tar.err" | head -n 3)
        if grep -q 'No space left on device' "$1/tar.err"; then
            echo space > "$1/verdict"
            gse_warn "image refused: does not fit: $GSE_VERIFY_REASON"
        else
            echo unpack > "$1/verdict"
            gse_warn "image refused: unpacking failed: $GSE_VERIFY_REASON"
        fi
        return 2
    fi
    return 0
}

# gse_part_bytes DEV: print the size of partition DEV in bytes.
gse_part_bytes() {
    read -r _gse_sec < "/sys/class/block/${1##*/}/size" || return 2
    echo $((_gse_sec * 512))
}

# gse_fits ROOT_BYTES DEV: 0 when a root of ROOT_BYTES (the signed pointer's
# root_bytes) fits DEV's filesystem: at most GSE_FIT_PERCENT (default 95)
# percent of the partition, the rest being the filesystem's own metadata.
# 1 when it does not fit; 2 when ROOT_BYTES is no decimal number.
gse_fits() {
    gse_decimal "$1" || return 2
    _gse_pb=$(gse_part_bytes "$2") || return 2
    # Beyond 18 digits (an exabyte) nothing fits, and the shell's
    # arithmetic stays below 2^63.
    # shellcheck disable=SC2154 # _gse_dec is gse_decimal's result (gse-lib.sh)
    [ ${#_gse_dec} -le 18 ] || return 1
    [ $((_gse_dec / 100)) -le $((_gse_pb * ${GSE_FIT_PERCENT:-95} / 10000)) ] || return 1
    return 0
}

# ---- back-off of an image that failed -------------------------------------
# A failed attempt at an image (bytes that do not match the signed pointer,
# a stall, no space) is not retried at the next boot but after a number of
# boots that doubles with each failure (1, 2, 4, ... at most
# GSE_RETRY_MAX_BOOTS, default 32).  State file backoff/<signed SHA512>:
# "FAILURES BOOTS-LEFT".  The genuine signed image is never blacklisted: a
# repaired publication is fetched at the latest after the wait.

# gse_backoff_wait SHA: 1 while the image SHA waits (prints "FAILURES
# BOOTS-LEFT" and counts this boot); 0 when it may be tried now.
gse_backoff_wait() {
    _gse_bf=$GSE_STATE_MNT/backoff/$1
    [ -r "$_gse_bf" ] || return 0
    read -r _gse_n _gse_w < "$_gse_bf" || return 0
    case "$_gse_w" in '' | *[!0-9]* | 0) return 0 ;; esac
    gse_state_write "backoff/$1" "$_gse_n $((_gse_w - 1))"
    echo "$_gse_n $_gse_w"
    return 1
}

# gse_backoff_fail SHA: count one more failed attempt at the image SHA;
# print the number of boots it now waits.
gse_backoff_fail() {
    _gse_n=0
    [ -r "$GSE_STATE_MNT/backoff/$1" ] && read -r _gse_n _gse_w < "$GSE_STATE_MNT/backoff/$1"
    case "$_gse_n" in '' | *[!0-9]*) _gse_n=0 ;; esac
    _gse_n=$((_gse_n + 1)) _gse_w=1 _gse_i=1
    while [ $_gse_i -lt $_gse_n ] && [ $_gse_w -lt "${GSE_RETRY_MAX_BOOTS:-32}" ]; do
        _gse_w=$((_gse_w * 2)) _gse_i=$((_gse_i + 1))
    done
    [ $_gse_w -gt "${GSE_RETRY_MAX_BOOTS:-32}" ] && _gse_w=${GSE_RETRY_MAX_BOOTS:-32}
    gse_state_write "backoff/$1" "$_gse_n $_gse_w"
    echo "$_gse_w"
}

# gse_backoff_clear SHA: the image SHA installed: forget its failures.
gse_backoff_clear() {
    rm -f "$GSE_STATE_MNT/backoff/$1"
}

# ---- the chunked transfer (casync) -----------------------------------------

# gse_pointer_index POINTER KEY OUT: fetch the index the verified pointer
# file POINTER names under KEY (KEY, KEY_sha512, KEY_size: the root's
# "index", the tarball's "tarball_index") to OUT and check it
# (gse_fetch_index).  2 when the pointer lacks a digest or size
# (GSE_VERIFY_REASON "incomplete pointer (...)") or the index does not
# verify (GSE_VERIFY_REASON says why).
gse_pointer_index() {
    _gse_pisha=$(gse_pointer_get "$1" "$2_sha512")
    _gse_pisize=$(gse_pointer_get "$1" "$2_size")
    if [ ${#_gse_pisha} -ne 128 ] || ! gse_decimal "$_gse_pisize"; then
        GSE_VERIFY_REASON="incomplete pointer ($2_sha512, $2_size)"
        return 2
    fi
    gse_fetch_index "$(gse_pointer_get "$1" "$2")" "$3" "$_gse_pisha" "$_gse_pisize"
}

# gse_fetch_index PATH OUT SHA512 SIZE: download the casync index PATH (no
# more than SIZE bytes are accepted, gse_fetch) and its detached signature
# (GSE_SMALL_MAXSIZE); 0 only when
# the index has the signed pointer's SIZE and SHA512 and its signature
# verifies (GSE_VERIFY_REASON otherwise).
gse_fetch_index() {
    GSE_VERIFY_REASON=
    gse_fetch_sized "$4" "$1" "$2" || { GSE_VERIFY_REASON="index download failed${GSE_FETCH_REASON:+: $GSE_FETCH_REASON}"; return 2; }
    gse_check_file "$2" "$3" "$4" || { GSE_VERIFY_REASON="index: $GSE_VERIFY_REASON"; return 2; }
    gse_fetch "$1.asc" "$2.asc" || { GSE_VERIFY_REASON="index signature download failed"; return 2; }
    gse_verify_detached "$2.asc" "$2" || { GSE_VERIFY_REASON="index signature: $GSE_VERIFY_REASON"; return 2; }
    return 0
}

# gse_io_bytes PID [written]: print the bytes PID read and wrote so far;
# with "written", only those it wrote (0 when gone).
gse_io_bytes() {
    _gse_io=0 _gse_which="rchar: wchar:"
    [ "$2" = written ] && _gse_which="wchar:"
    while read -r _gse_k _gse_v; do
        case " $_gse_which " in *" $_gse_k "*) _gse_io=$((_gse_io + _gse_v)) ;; esac
    done 2> /dev/null < "/proc/$1/io"
    echo "$_gse_io"
}

# gse_running PID: 0 while PID runs (an exited child not yet waited for is
# a zombie: it answers kill -0 yet runs no more).
gse_running() {
    read -r _gse_p _gse_c _gse_st _gse_rest 2> /dev/null < "/proc/$1/stat" || return 1
    [ "$_gse_st" != Z ]
}

# gse_kill_tree PID: kill PID and its children (casync's protocol helper).
# SIGKILL: casync blocks SIGTERM for its event loop, and the helper it
# executes inherits the blocked mask.
gse_kill_tree() {
    for _gse_s in /proc/[0-9]*/stat; do
        read -r _gse_p _gse_c _gse_st _gse_pp _gse_rest 2> /dev/null < "$_gse_s" || continue
        [ "$_gse_pp" = "$1" ] && kill -9 "$_gse_p" 2> /dev/null
    done
    kill -9 "$1" 2> /dev/null
}

# gse_watch PID [BYTES]: wait for PID, bounding it as curl bounds a
# download (casync's HTTP helper sets no timeout of its own): killed when it
# moves (reads + writes: chunks from the helper, seeds, the output) less
# than GSE_STALL_SPEED bytes/s over GSE_STALL_TIME seconds, or runs longer
# than GSE_IMAGE_TIMEOUT seconds; with BYTES, also when it wrote more than
# BYTES bytes (read every tick of a tenth of a second: it may write what it
# receives in that tick beyond BYTES).  Returns PID's exit status; 124 when
# killed on a time bound, 125 on BYTES (GSE_WATCH_REASON says why).
gse_watch() {
    GSE_WATCH_REASON=
    _gse_win=${GSE_STALL_TIME:-20} _gse_t=0 _gse_w=0 _gse_wrc=124
    _gse_last=$(gse_io_bytes "$1")
    # Ticks of a tenth of a second: a short run (a staging fetch, a small
    # update) is not held up to the next whole second.
    while gse_running "$1"; do
        sleep 0.1
        _gse_t=$((_gse_t + 1)) _gse_w=$((_gse_w + 1))
        if [ -n "$2" ] && [ "$(gse_io_bytes "$1" written)" -gt "$2" ]; then
            GSE_WATCH_REASON="larger than allowed: wrote more than $2 bytes" _gse_wrc=125
        elif [ $_gse_t -ge $((${GSE_IMAGE_TIMEOUT:-3600} * 10)) ]; then
            GSE_WATCH_REASON="not done after ${GSE_IMAGE_TIMEOUT:-3600} s"
        elif [ $_gse_w -ge $((_gse_win * 10)) ]; then
            _gse_now=$(gse_io_bytes "$1")
            if [ $((_gse_now - _gse_last)) -lt $((${GSE_STALL_SPEED:-1024} * _gse_win)) ] && gse_running "$1"; then
                GSE_WATCH_REASON="less than ${GSE_STALL_SPEED:-1024} bytes/s over the last $_gse_win s"
            fi
            _gse_last=$_gse_now _gse_w=0
        fi
        if [ -n "$GSE_WATCH_REASON" ]; then
            gse_kill_tree "$1"
            wait "$1"
            return $_gse_wrc
        fi
    done
    wait "$1"
}

# gse_casync_extract INDEX DIR [SEED...]: extract the verified casync index
# INDEX into DIR, the chunks from $GSE_SERVER/$GSE_STORE_PATH, the seeds
# (installed system roots) first: only the chunks they lack travel.  With
# GSE_CHUNK_STAGING set, the local store there (gse_chunks_stage) is read
# before the server's.  casync checks every chunk against its id in the
# index before it is written, from whichever store it came.  On failure (2)
# $GSE_RUN/stream/verdict names the class (stall, digest: a forged, altered
# or cut chunk, missing, network, space, extract) and GSE_VERIFY_REASON
# casync's error.
gse_casync_extract() {
    _f=$GSE_RUN/stream
    rm -rf "$_f"
    mkdir -p "$_f"
    _idx=$1 _dir=$2
    shift 2
    _seeds=""
    for _s; do _seeds="$_seeds --seed=$_s"; done
    gse_log "casync extract ${GSE_STORE_PATH:-store} into $_dir (seeds: ${*:-none}${GSE_CHUNK_STAGING:+, staged: $GSE_CHUNK_STAGING})"
    # --delete=no: lost+found (and the staging store) stay.  --seed-output=no:
    # the wiped target holds nothing of the image (only the staging store,
    # which casync would otherwise read and chunk as a seed).  TMPDIR: the
    # HTTP helper's working directories (*.carem) go into this install's
    # own directory, which the next install removes, not into /var/tmp.
    mkdir -p "$_f/tmp" || return 2
    # shellcheck disable=SC2086
    TMPDIR=$_f/tmp casync extract --store="$GSE_SERVER/${GSE_STORE_PATH:-store}" \
        ${GSE_CHUNK_STAGING:+--extra-store="$GSE_CHUNK_STAGING"} $_seeds --delete=no --seed-output=no \
        "$_idx" "$_dir" > "$_f/casync.out" 2> "$_f/casync.err" &
    gse_watch $!
    _rc=$?
    [ $_rc -eq 0 ] && return 0
    if [ $_rc -eq 124 ]; then
        echo stall > "$_f/verdict"
        GSE_VERIFY_REASON="casync: $GSE_WATCH_REASON"
        gse_warn "image download stalled or timed out: $GSE_VERIFY_REASON"
        return 2
    fi
    GSE_VERIFY_REASON="casync: $(tr '\n' ' ' < "$_f/casync.err" | cut -c 1-300)"
    # casync's error, read whole: the first pattern that occurs in it names
    # the class (the verdict) and what the warning says.
    _cx_err=$(cat "$_f/casync.err")
    case $_cx_err in
        *'No space left on device'*)
            _cx_class=space _cx_said="image refused: does not fit" ;;
        *'Bad message'*)
            _cx_class=digest _cx_said="image refused: a chunk does not match the signed index" ;;
        *'Failed to acquire'*)
            # The helper names the chunk whose download broke off.
            _cx_class=network _cx_said="image download failed" ;;
        *'No such file or directory'*)
            # casync's word for a chunk the server did not give: a 404, or any
            # other error status.  (Not "404": a chunk's hex URL can hold it.)
            _cx_class=missing _cx_said="image refused: a chunk is missing from the store" ;;
        *'Broken pipe'*)
            # casync's word for a chunk whose compressed bytes end too soon: the
            # store holds a cut chunk (its id cannot even be checked).
            _cx_class=digest _cx_said="image refused: a chunk of the store does not decompress (truncated)" ;;
        *)
            _cx_class=extract _cx_said="image refused: casync extract failed" ;;
    esac
    echo "$_cx_class" > "$_f/verdict"
    gse_warn "$_cx_said: $GSE_VERIFY_REASON"
    return 2
}
