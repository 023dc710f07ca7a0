#!/bin/sh
# pre-pivot hook 80: "Clean up": clear the controller's work directories and
# remount SYSFS read-only.
. /lib/gse/gse-lib.sh
gse_env_load

for _m in "$GSE_RUN"/mnt.*; do
    gse_mounted "$_m" && umount "$_m"
done
rm -rf "$GSE_RUN"/mnt.* "$GSE_RUN/stream" "$GSE_RUN"/*.tar.gz* "$GSE_RUN"/*.body "$GSE_RUN"/*.txt \
    "$GSE_RUN"/SHA512SUMS*
sync
if mount -o remount,ro "$NEWROOT"; then
    gse_log "clean up: SYSFS remounted read-only"
else
    die "gse: cannot remount SYSFS read-only"
fi
unset _m
