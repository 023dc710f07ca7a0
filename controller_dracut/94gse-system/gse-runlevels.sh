#!/bin/sh
# pre-pivot hook 55: "Update runlevels" from the client config.d files
# `runlevels` (the base's, the group's, the client's: gse-overlay-lib.sh):
# lines "add SERVICE RUNLEVEL" / "del SERVICE RUNLEVEL", written
# as OpenRC's rc-update writes them (/etc/runlevels/RL/SVC -> /etc/init.d/SVC).
. /lib/gse/gse-lib.sh
. /lib/gse/gse-overlay-lib.sh
gse_env_load

# gse_runlevels_file FILE: apply one runlevels file; 1 when absent.
gse_runlevels_file() {
    [ -r "$1" ] || return 1
    _rc=0
    while read -r _op _svc _rl _rest || [ -n "$_op" ]; do
        case "$_op" in '' | \#*) continue ;; esac
        case "$_svc$_rl" in */* | *..*) gse_warn "runlevels: bad line: $_op $_svc $_rl"; _rc=2; continue ;; esac
        case "$_op" in
            add)
                if [ ! -e "$NEWROOT/etc/init.d/$_svc" ]; then
                    gse_warn "runlevels: service $_svc does not exist"; _rc=2; continue
                fi
                mkdir -p "$NEWROOT/etc/runlevels/$_rl"
                ln -sfn "/etc/init.d/$_svc" "$NEWROOT/etc/runlevels/$_rl/$_svc"
                ;;
            del) rm -f "$NEWROOT/etc/runlevels/$_rl/$_svc" ;;
            *) gse_warn "runlevels: unknown operation $_op"; _rc=2; continue ;;
        esac
        gse_log "runlevels: $_op $_svc $_rl"
    done < "$1"
    return $_rc
}

# The base's lines, then the group's, then the client's (gse-overlay-lib.sh).
gse_runlevels() {
    gse_identity || _gse_mid=''
    _all=1
    for _o in $(gse_overlays "$GSE_RUN/config.d" "$GSE_GROUP" "$_gse_mid"); do
        gse_runlevels_file "$_o/runlevels"
        case $? in 0) [ $_all -eq 1 ] && _all=0 ;; 2) _all=2 ;; esac
    done
    return $_all
}
( gse_runlevels )
