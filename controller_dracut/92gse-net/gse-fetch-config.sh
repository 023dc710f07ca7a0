#!/bin/sh
# pre-mount hook 20: "Fetch new config.d files from the server" and "Export
# the newly fetched files".  The client config.d is accepted only when its
# clearsigned pointer (config.txt) verifies, its serial is not older than the
# one accepted before, and the tarball matches the pointer's SHA512, size and
# detached signature.  No more bytes than allowed reach RAM: config.txt and
# the signature at most GSE_SMALL_MAXSIZE, the tarball its signed size
# (gse_fetch cuts a server that sends more).
. /lib/gse/gse-lib.sh
. /lib/gse/gse-verify-lib.sh
. /lib/gse/gse-net-lib.sh
gse_env_load

gse_fetch_config() {
    gse_fetch config.txt "$GSE_RUN/config.txt"
    case $? in
        1) gse_log "config.d: none published"; return 1 ;;
        2) return 2 ;;
    esac
    gse_verify_pointer "$GSE_RUN/config.txt" "$GSE_RUN/config.body" \
        || { gse_warn "config.d refused: config.txt: $GSE_VERIFY_REASON"; return 2; }
    _serial=$(gse_pointer_get "$GSE_RUN/config.body" serial)
    _path=$(gse_pointer_get "$GSE_RUN/config.body" path)
    gse_decimal "$_serial" || { gse_warn "config.d refused: bad serial"; return 2; }
    _have=$(gse_state_read config/serial) || _have=
    if [ -n "$_have" ] && gse_serial_lt "$_serial" "$_have"; then
        gse_warn "config.d refused: serial $_serial is older than the accepted $_have (replayed)"
        return 2
    fi
    if [ -n "$_have" ] && ! gse_serial_lt "$_have" "$_serial"; then
        gse_log "config.d: serial $_serial already applied"
        return 1
    fi
    # No more bytes than the signed size reach RAM (gse_fetch's bound).
    _size=$(gse_pointer_get "$GSE_RUN/config.body" size)
    gse_bound_ok "$_size" || { gse_warn "config.d refused: bad size '$_size'"; return 2; }
    gse_fetch_sized "$_size" "$_path" "$GSE_RUN/config.d.tar.gz" || return 2
    gse_fetch "$_path.asc" "$GSE_RUN/config.d.tar.gz.asc" || return 2
    gse_config_verify "$GSE_RUN" || { gse_warn "config.d refused: $GSE_VERIFY_REASON"; return 2; }
    gse_config_use "$GSE_RUN" || return 2
    gse_result config_serial "$_serial"
    gse_log "config.d: serial $_serial fetched and exported"
    return 0
}

if [ "$(gse_result network)" = 0 ]; then
    ( gse_fetch_config )
    gse_env_load
fi
