#!/bin/sh
# pre-pivot hook 50: "Apply new configuration files to the SYSFS".  SYSFS is
# mounted read-write on $NEWROOT; the rootfs/ trees of the client config.d
# (fresh from the server, or the cached one: verified either way) are copied
# over it: the base, then the client's group, then the client itself
# (gse-overlay-lib.sh), then the group's post-sync script runs.
. /lib/gse/gse-lib.sh
. /lib/gse/gse-overlay-lib.sh
gse_env_load

# gse_apply_rootfs DIR: copy DIR/rootfs over $NEWROOT (owners, modes kept).
gse_apply_rootfs() {
    [ -d "$1/rootfs" ] || return 1
    (cd "$1/rootfs" && tar -cf - --numeric-owner .) \
        | tar -xpf - --numeric-owner --no-overwrite-dir -C "$NEWROOT" || return 2
    gse_log "configuration: ${1#"$GSE_RUN/"}/rootfs applied to SYSFS"
    return 0
}

# gse_post_sync SCRIPT: run the group's script in the new system, bounded
# by GSE_POSTSYNC_TIMEOUT seconds; its failure is logged, the boot goes on.
gse_post_sync() {
    [ -r "$1" ] || return 1
    mkdir -p "$NEWROOT/run" && cp "$1" "$NEWROOT/run/gse-post-sync" || return 2
    if GSE_GROUP=$GSE_GROUP timeout "${GSE_POSTSYNC_TIMEOUT:-60}" chroot "$NEWROOT" /bin/sh /run/gse-post-sync \
        >> "$GSE_LOG" 2>&1; then
        gse_log "configuration: post-sync of group $GSE_GROUP ran"
        _gse_ps=0
    else
        gse_warn "configuration: post-sync of group $GSE_GROUP failed or timed out"
        _gse_ps=2
    fi
    rm -f "$NEWROOT/run/gse-post-sync"
    return $_gse_ps
}

gse_apply_config() {
    # The mount point of the state area in the booted system.
    mkdir -p "$NEWROOT/var/lib/gse/state"
    _c=$GSE_RUN/config.d
    [ -d "$_c" ] || return 1
    gse_identity || _gse_mid=''
    if _g=$(gse_member_group "$_c" "$_gse_mid" "$GSE_HOSTNAME"); then
        gse_env_set GSE_GROUP "$_g"
        gse_log "configuration: this client is in group $_g"
    fi
    _rc=0
    for _o in $(gse_overlays "$_c" "$GSE_GROUP" "$_gse_mid"); do
        gse_apply_rootfs "$_o"
        [ $? -eq 2 ] && _rc=2
    done
    [ -n "$GSE_GROUP" ] && gse_safe_name "$GSE_GROUP" && gse_post_sync "$_c/groups/$GSE_GROUP/post-sync"
    return $_rc
}
( gse_apply_config )
# The group found is for the later hooks (runlevels, report): reload it.
gse_env_load
