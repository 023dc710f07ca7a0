#!/bin/sh
# mount hook 50: mount SYSFS on $NEWROOT (read-write: the configuration is
# applied in pre-pivot, then the clean-up remounts it read-only).
# The running kernel is the image's own: a system without its modules
# (/lib/modules/KVER) cannot load a driver, so it is not switched into; the
# complete BACKUPFS boots instead, for this boot only (the labels stay: the
# next boot, under the kernel that system was built with, takes SYSFS again).
# With a boot partition (GSE_BOOT_PART, module gse-boot) that holds the
# pair of SYSFS's system, the controller reboots into that pair instead
# (bounded, gse_boot_reboot), and falls back only when it cannot.
. /lib/gse/gse-lib.sh
. /lib/gse/gse-disk-lib.sh
gse_env_load

_sys=$(gse_find_label "$GSE_LABEL_SYSFS")
if [ -z "$_sys" ] || ! gse_installed "$_sys" > /dev/null; then
    gse_warn "no complete system on SYSFS and no backup to fall back to"
    gse_log_save
    die "gse: no complete system on SYSFS and no backup to fall back to"
fi
_v=$(gse_installed_get "$_sys" version)
read -r _kv < /proc/sys/kernel/osrelease || _kv=$(uname -r)
if gse_mount_root "$_sys" "$NEWROOT" rw && ! gse_has_modules "$NEWROOT"; then
    umount "$NEWROOT"
    gse_warn "kernel: refusing to switch_root into $_v on $_sys: its /lib/modules lacks $_kv (the running kernel)"
    if [ -n "$GSE_BOOT_PART" ] && [ -r /lib/gse/gse-boot-lib.sh ]; then
        . /lib/gse/gse-verify-lib.sh
        . /lib/gse/gse-boot-lib.sh
        gse_boot_reboot "$_v"
    fi
    _bk=$(gse_find_label "$GSE_LABEL_BACKUPFS")
    _bv=$(gse_installed_get "$_bk" version) || _bv=
    if [ -z "$_bv" ] || ! gse_mount_root "$_bk" "$NEWROOT" rw; then
        gse_log_save
        die "gse: no system with the modules of kernel $_kv to switch to"
    fi
    if ! gse_has_modules "$NEWROOT"; then
        umount "$NEWROOT"
        gse_warn "kernel: BACKUPFS $_bv on $_bk lacks $_kv too"
        gse_log_save
        die "gse: no system with the modules of kernel $_kv to switch to"
    fi
    gse_log "kernel: falling back to BACKUPFS $_bv on $_bk for this boot"
    gse_result root "$_bk"
    _sys=$_bk
    _v=$_bv
fi
gse_mounted "$NEWROOT" && gse_log "SYSFS $_sys ($_v) mounted on $NEWROOT"
unset _sys _v _kv _bk _bv
