#!/bin/sh
# pre-mount hook 20: "Fetch new config.d files from the server" and "Export
# the newly fetched files".  The client config.d is accepted only when its
# clearsigned pointer (config.txt) verifies, its serial is not older than the
# one accepted before, and the tarball matches the pointer's SHA512, size and
# detached signature.
. /lib/gse/gse-lib.sh
. /lib/gse/gse-net-lib.sh
gse_env_load

gse_fetch_config() {
    gse_fetch config.txt "$GSE_RUN/config.txt"
    case $? in
        1) gse_log "config.d: none published"; return 1 ;;
        2) return 2 ;;
    esac
    gse_verify_pointer "$GSE_RUN/config.txt" "$GSE_RUN/config.body" \
        || { gse_warn "config.d refused: config.txt signature does not verify"; return 2; }
    _serial=$(gse_pointer_get "$GSE_RUN/config.body" serial)
    _path=$(gse_pointer_get "$GSE_RUN/config.body" path)
    case "$_serial" in '' | *[!0-9]*) gse_warn "config.d refused: bad serial"; return 2 ;; esac
    _have=$(gse_state_read config/serial) || _have=-1
    if [ "$_serial" -lt "$_have" ]; then
        gse_warn "config.d refused: serial $_serial is older than the accepted $_have (replayed)"
        return 2
    fi
    if [ "$_serial" -eq "$_have" ]; then
        gse_log "config.d: serial $_serial already applied"
        return 1
    fi
    gse_fetch "$_path" "$GSE_RUN/config.d.tar.gz" || return 2
    gse_fetch "$_path.asc" "$GSE_RUN/config.d.tar.gz.asc" || return 2
    gse_check_file "$GSE_RUN/config.d.tar.gz" "$(gse_pointer_get "$GSE_RUN/config.body" sha512)" \
        "$(gse_pointer_get "$GSE_RUN/config.body" size)" \
        || { gse_warn "config.d refused: SHA512 or size mismatch"; return 2; }
    gse_verify_detached "$GSE_RUN/config.d.tar.gz.asc" "$GSE_RUN/config.d.tar.gz" \
        || { gse_warn "config.d refused: bad signature"; return 2; }
    rm -rf "$GSE_RUN/config.d"
    mkdir -p "$GSE_RUN/config.d"
    tar -xzf "$GSE_RUN/config.d.tar.gz" -C "$GSE_RUN/config.d" || return 2
    gse_conf_parse "$GSE_RUN/config.d/controller.conf"
    gse_result config_serial "$_serial"
    gse_log "config.d: serial $_serial fetched and exported"
    return 0
}

if [ "$(gse_result network)" = 0 ]; then
    ( gse_fetch_config )
    gse_env_load
fi
