#!/bin/sh
# pre-mount hook 10: "Check for network connection" and "Attempt to
# establish connection with the server".  Its answer decides whether the
# fetch, version check and export steps run at all: 0 = network and server
# reachable, 1 = offline (those steps are skipped).
. /lib/gse/gse-lib.sh
. /lib/gse/gse-net-lib.sh
gse_env_load

gse_network_check() {
    if gse_yes "$GSE_OFFLINE"; then
        gse_log "network: offline requested"
        return 1
    fi
    [ -n "$GSE_SERVER" ] || { gse_log "network: no server configured"; return 1; }
    gse_net_up || return 1
    # The version pointer is small: one request is both the reachability
    # probe and the version check's download (kept in $GSE_RUN); a server
    # that accepts but does not answer counts as unreachable after twice the
    # connect timeout (gse_fetch_pointer).
    gse_fetch_pointer version.txt
    if [ "$GSE_FETCH_CODE" = 000 ]; then
        gse_log "network: server $GSE_SERVER unreachable: $(gse_curl_error)"
        return 1
    fi
    gse_log "network: server $GSE_SERVER reachable"
    return 0
}

if ( gse_network_check ); then
    gse_result network 0
else
    gse_result network 1
    gse_log "offline boot: fetch, version check and export skipped"
fi
