#!/bin/sh
# pre-pivot hook 50: "Apply new configuration files to the SYSFS".  SYSFS is
# mounted read-write on $NEWROOT; the rootfs/ tree of the client config.d
# (fresh from the server, or the cached one) is copied over it.
. /lib/gse/gse-lib.sh
gse_env_load

gse_apply_config() {
    # The mount point of the state area in the booted system.
    mkdir -p "$NEWROOT/var/lib/gse/state"
    [ -d "$GSE_RUN/config.d/rootfs" ] || return 1
    (cd "$GSE_RUN/config.d/rootfs" && tar -cf - --numeric-owner .) \
        | tar -xpf - --numeric-owner --no-overwrite-dir -C "$NEWROOT" || return 2
    gse_log "configuration: client config.d applied to SYSFS"
    return 0
}
( gse_apply_config )
