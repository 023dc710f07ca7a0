#!/bin/bash
# gse-system: apply the configuration and runlevels to SYSFS, clean up and
# remount it read-only, then the tmpfs mounts (_etc_misc).

check() {
    return 255
}

depends() {
    echo gse-base gse-disk gse-health
}

install() {
    inst_multiple tar stat chown ln chroot timeout
    inst_simple "$moddir/gse-overlay-lib.sh" /lib/gse/gse-overlay-lib.sh
    inst_hook pre-pivot 50 "$moddir/gse-apply-config.sh"
    inst_hook pre-pivot 55 "$moddir/gse-runlevels.sh"
    inst_hook pre-pivot 80 "$moddir/gse-cleanup.sh"
    inst_hook pre-pivot 90 "$moddir/gse-etc-misc.sh"
}
