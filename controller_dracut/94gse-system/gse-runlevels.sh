#!/bin/sh
# pre-pivot hook 55: "Update runlevels" from the client config.d file
# `runlevels`: lines "add SERVICE RUNLEVEL" / "del SERVICE RUNLEVEL", written
# as OpenRC's rc-update writes them (/etc/runlevels/RL/SVC -> /etc/init.d/SVC).
. /lib/gse/gse-lib.sh
gse_env_load

gse_runlevels() {
    [ -r "$GSE_RUN/config.d/runlevels" ] || return 1
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
    done < "$GSE_RUN/config.d/runlevels"
    return $_rc
}
( gse_runlevels )
