#!/bin/sh
# pre-pivot hook 75: "Bless boot entry": this boot came from the boot
# partition's pair of the system it hands over to (SYSFS, its modules
# found): the pair boots, so its entry loses the boot counter (Boot Loader
# Specification automatic boot assessment) and stays the default without
# further tries being counted.  Once per version (state file boot/blessed);
# the count of reboots into that pair is cleared.
. /lib/gse/gse-lib.sh
gse_env_load

gse_boot_bless_running() {
    _run=$(gse_boot_running) || return 1
    _sys=$(gse_find_label "$GSE_LABEL_SYSFS") || return 1
    # Handed over to SYSFS (a fallback records the other root), which
    # holds the system of the running pair.
    [ -z "$(gse_result root)" ] && [ "$(gse_installed_get "$_sys" version)" = "$_run" ] || return 1
    rm -f "$GSE_STATE_MNT/boot/reboot"
    [ "$(gse_state_read boot/blessed 2> /dev/null)" = "$_run" ] && return 1
    gse_boot_mount rw || { gse_warn "boot partition: $GSE_BOOT_REASON: entry of $_run not blessed"; return 2; }
    if gse_boot_bless "$GSE_BOOT_MNT" "$_run"; then
        gse_log "boot partition: the pair of $_run booted its system: entry blessed (boot counter removed)"
    fi
    gse_boot_umount
    gse_state_write boot/blessed "$_run"
    return 0
}

# Without a boot partition (the default) the libraries are not even read.
if [ -n "$GSE_BOOT_PART" ]; then
    . /lib/gse/gse-verify-lib.sh
    . /lib/gse/gse-disk-lib.sh
    . /lib/gse/gse-boot-lib.sh
    ( gse_boot_bless_running )
fi
