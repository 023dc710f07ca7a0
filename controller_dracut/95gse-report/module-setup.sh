#!/bin/bash
# gse-report: after the boot's decisions, tell the server what this client
# runs (docs/fleet.md).  The report never delays the boot by more than its
# bounds and never stops it.

check() {
    require_binaries curl || return 1
    return 255
}

depends() {
    echo gse-base gse-net gse-health
}

install() {
    inst_simple "$moddir/gse-report-lib.sh" /lib/gse/gse-report-lib.sh
    inst_multiple curl head sed grep tr
    inst_hook pre-pivot 70 "$moddir/gse-report.sh"
}
