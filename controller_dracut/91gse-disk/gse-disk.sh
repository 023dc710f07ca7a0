#!/bin/sh
# pre-mount hook 30: the disk functions.  Create the layout on a blank drive
# (partitions, filesystems, labels), "wipe the whole setup and start new"
# once per GSE_WIPE token, keep the client config.d in the state area, and
# decide which partition is SYSFS when no partition carries the label.
. /lib/gse/gse-lib.sh
. /lib/gse/gse-verify-lib.sh
. /lib/gse/gse-disk-lib.sh
gse_env_load

# Keep the client config.d fetched during this boot in the state area, with
# its signed pointer and detached signature; or bring in the cached one, but
# only when those verify again at this boot (the state area is a disk: what
# is read from it is checked, never trusted).
gse_config_cached() {
    _cc=$GSE_STATE_MNT/config
    if [ -n "$(gse_result config_serial)" ]; then
        gse_state_ok || return 1
        mkdir -p "$_cc"
        for _f in config.txt config.d.tar.gz config.d.tar.gz.asc; do
            cp "$GSE_RUN/$_f" "$_cc/$_f.tmp" || return 2
        done
        sync
        for _f in config.txt config.d.tar.gz config.d.tar.gz.asc; do
            mv "$_cc/$_f.tmp" "$_cc/$_f" || return 2
        done
        gse_state_write config/serial "$(gse_result config_serial)"
        return $?
    fi
    [ -r "$_cc/config.d.tar.gz" ] || return 1
    if ! gse_config_verify "$_cc"; then
        gse_warn "cached config.d refused: $GSE_VERIFY_REASON"
        return 2
    fi
    gse_config_use "$_cc" || return 2
    gse_log "using the cached client config.d (serial $(gse_pointer_get "$GSE_RUN/config.body" serial), verified)"
    return 0
}

# Choose SYSFS when no partition has the label (a new layout, or power lost
# between two relabels): the complete system with the highest serial.
gse_decide_sysfs() {
    gse_find_label "$GSE_LABEL_SYSFS" > /dev/null && return 0
    _best="" _bs=""
    for _p in $(gse_system_parts); do
        _s=$(gse_installed_get "$_p" serial) || continue
        [ -n "$_s" ] || continue
        gse_listed "$GSE_STATE_MNT/deprived" "$(gse_installed_get "$_p" version)" && continue
        if [ -z "$_best" ] || gse_serial_lt "$_bs" "$_s"; then
            _best=$_p _bs=$_s
        fi
    done
    if [ -z "$_best" ]; then
        # Nothing complete: the first system partition takes the label and
        # the version check fills it.
        _best=$(gse_part "$(gse_disk)" 2)
    fi
    gse_set_label "$_best" "$GSE_LABEL_SYSFS" || return 2
    gse_bootflag "$_best"
    return 0
}

gse_disk_step() {
    _disk=$(gse_disk) || { gse_warn "no disk found"; return 2; }
    [ -b "$_disk" ] || { gse_warn "$_disk is not a block device"; return 2; }
    gse_config_cached
    _new=no
    if [ -n "$GSE_WIPE" ] && [ "$(gse_state_read wipe)" != "$GSE_WIPE" ]; then
        gse_log "wipe requested ($GSE_WIPE): starting new on $_disk"
        gse_state_ok && umount "$GSE_STATE_MNT"
        gse_partition "$_disk" || return 2
        _new=yes
    elif ! gse_state_ok && gse_is_blank "$_disk"; then
        gse_log "blank disk $_disk"
        gse_partition "$_disk" || return 2
        _new=yes
    fi
    gse_state_mount
    gse_state_ok || { gse_warn "$_disk has no state area (label $GSE_LABEL_STATE); set gse.wipe to start new"; return 2; }
    [ -n "$GSE_WIPE" ] && gse_state_write wipe "$GSE_WIPE"
    # A new state area: keep the config.d fetched during this boot in it.
    [ "$_new" = yes ] && gse_config_cached
    gse_decide_sysfs
    return 0
}

if ( gse_disk_step ); then
    gse_result disk ok
    gse_env_load
else
    gse_result disk failed
    die "gse: the disk could not be prepared"
fi
