#!/bin/sh
# mount hook 50: mount SYSFS on $NEWROOT (read-write: the configuration is
# applied in pre-pivot, then the clean-up remounts it read-only).
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
gse_mount_root "$_sys" "$NEWROOT" rw && gse_log "SYSFS $_sys ($_v) mounted on $NEWROOT"
unset _sys _v
