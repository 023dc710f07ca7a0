#!/bin/bash
# gse-health: the health check of the last life cycle, the fallback to
# BACKUPFS and the refresh of BACKUPFS from a healthy system.

check() {
    return 255
}

depends() {
    echo gse-base gse-disk
}

install() {
    inst_simple "$moddir/gse-health-lib.sh" /lib/gse/gse-health-lib.sh
    inst_multiple tar
    inst_hook pre-mount 50 "$moddir/gse-health.sh"
}
