#!/bin/sh
# gse-verify-lib.sh: signatures (gpgv, with the reason of a refusal), signed
# pointers, file digests, and the client config.d, fresh or cached, accepted
# only while it verifies.  Return codes as in gse-lib.sh (0 ok, 1 no, 2
# error).

# gse_gpgv ARGS...: gpgv with the controller's keyring.  0 only when gpgv
# reports a good signature (GOODSIG) and succeeds; otherwise 2, with
# GSE_VERIFY_REASON telling why, from gpgv's machine-readable status lines
# (--status-fd), not from its messages:
#   unknown key KEYID      signed by a key the keyring does not hold
#   bad signature          the signed bytes were altered
#   signature expired      / signing key expired / signing key revoked
#   clock: ...             the key or signature is dated after the client's
#                          clock (a client clock in the past: CMOS battery)
#   no signature           not signed at all, or truncated
#   does not verify ...    anything else (gpgv's exit status)
# A good signature dated more than GSE_CLOCK_SLACK seconds (default 86400)
# after the client's clock is accepted and the client's clock is named in a
# warning.
gse_gpgv() {
    GSE_VERIFY_REASON=
    gpgv --keyring "$GSE_KEYRING" --status-fd 3 "$@" 3> "$GSE_RUN/gpgv.status" > "$GSE_RUN/gpgv.log" 2>&1
    _gse_rc=$?
    _gse_good="" _gse_sigts=""
    while read -r _gse_tag _gse_kw _gse_f1 _gse_f2 _gse_f3 _gse_f4 _gse_f5 _gse_f6 _gse_rest; do
        [ "$_gse_tag" = "[GNUPG:]" ] || continue
        case "$_gse_kw" in
            GOODSIG) _gse_good=yes ;;
            VALIDSIG) _gse_sigts=$_gse_f3 ;;
            BADSIG) GSE_VERIFY_REASON="bad signature" ;;
            EXPSIG) GSE_VERIFY_REASON="signature expired" ;;
            EXPKEYSIG) GSE_VERIFY_REASON="signing key expired" ;;
            REVKEYSIG) GSE_VERIFY_REASON="signing key revoked" ;;
            NO_PUBKEY) GSE_VERIFY_REASON="unknown key $_gse_f1" ;;
            ERRSIG)
                # ERRSIG keyid pkalgo hashalgo class time rc: rc 9 = no key.
                [ "$_gse_f6" = 9 ] && GSE_VERIFY_REASON="unknown key $_gse_f1"
                ;;
            NODATA) [ -n "$GSE_VERIFY_REASON" ] || GSE_VERIFY_REASON="no signature (not signed or truncated)" ;;
        esac
    done < "$GSE_RUN/gpgv.status"
    if [ -n "$_gse_good" ] && [ -z "$GSE_VERIFY_REASON" ] && [ $_gse_rc -eq 0 ]; then
        _gse_now=$(date +%s)
        case "$_gse_sigts" in
            '' | *[!0-9]*) ;;
            *)
                [ "$_gse_sigts" -gt $((_gse_now + ${GSE_CLOCK_SLACK:-86400})) ] \
                    && gse_warn "clock: a signature is dated $((_gse_sigts - _gse_now)) s after this client's clock ($(date -u +%Y-%m-%dT%H:%M:%SZ)): set the clock"
                ;;
        esac
        return 0
    fi
    if [ -z "$GSE_VERIFY_REASON" ] || [ "${GSE_VERIFY_REASON%% *}" = unknown ]; then
        # gpgv says "created N seconds in the future" only in its messages.
        if grep -q 'in the future' "$GSE_RUN/gpgv.log"; then
            GSE_VERIFY_REASON="clock: the key or signature is dated after this client's clock ($(date -u +%Y-%m-%dT%H:%M:%SZ)); set the clock"
        fi
    fi
    [ -n "$GSE_VERIFY_REASON" ] || GSE_VERIFY_REASON="does not verify (gpgv exit status $_gse_rc)"
    return 2
}

# gse_verify_pointer FILE BODY: check the clearsigned pointer FILE and write
# the signed body (only gpgv's output is ever read).
gse_verify_pointer() {
    rm -f "$2"
    [ -r "$1" ] || { GSE_VERIFY_REASON="missing"; return 2; }
    gse_gpgv --output "$2" "$1" && return 0
    rm -f "$2"
    return 2
}

# gse_verify_detached SIG FILE
gse_verify_detached() {
    [ -r "$1" ] || { GSE_VERIFY_REASON="missing"; return 2; }
    gse_gpgv "$1" "$2"
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

# gse_sha512 FILE: print FILE's SHA-512 (hex).
gse_sha512() {
    _gse_h=$(sha512sum < "$1") || return 2
    printf '%s\n' "${_gse_h%% *}"
}

# gse_check_file FILE SHA512 SIZE: 0 when FILE has SIZE bytes and SHA512;
# 2 otherwise (GSE_VERIFY_REASON names which, and the received digest).
gse_check_file() {
    _gse_sz=$(wc -c < "$1") || _gse_sz=
    if [ "$_gse_sz" != "$3" ]; then
        GSE_VERIFY_REASON="size $_gse_sz, the signed pointer says $3"
        return 2
    fi
    _gse_h=$(gse_sha512 "$1")
    if [ "$_gse_h" != "$2" ]; then
        GSE_VERIFY_REASON="SHA512 mismatch: received $_gse_h"
        return 2
    fi
    return 0
}

# gse_config_verify DIR: 0 when DIR's config.txt verifies and names
# DIR/config.d.tar.gz (SHA512, size) and the tarball's detached signature
# verifies; the signed pointer body goes to $GSE_RUN/config.body.  2 with
# GSE_VERIFY_REASON otherwise.
gse_config_verify() {
    gse_verify_pointer "$1/config.txt" "$GSE_RUN/config.body" \
        || { GSE_VERIFY_REASON="config.txt: $GSE_VERIFY_REASON"; return 2; }
    gse_check_file "$1/config.d.tar.gz" "$(gse_pointer_get "$GSE_RUN/config.body" sha512)" \
        "$(gse_pointer_get "$GSE_RUN/config.body" size)" \
        || { GSE_VERIFY_REASON="config.d.tar.gz: $GSE_VERIFY_REASON"; return 2; }
    gse_verify_detached "$1/config.d.tar.gz.asc" "$1/config.d.tar.gz" \
        || { GSE_VERIFY_REASON="config.d.tar.gz.asc: $GSE_VERIFY_REASON"; return 2; }
    return 0
}

# gse_config_use DIR: unpack DIR/config.d.tar.gz (verified) into
# $GSE_RUN/config.d and export its controller.conf.
gse_config_use() {
    rm -rf "$GSE_RUN/config.d"
    mkdir -p "$GSE_RUN/config.d"
    tar -xzf "$1/config.d.tar.gz" -C "$GSE_RUN/config.d" || return 2
    gse_conf_parse "$GSE_RUN/config.d/controller.conf"
    return 0
}
