#!/bin/bash
# gse-commands: the commands queued for a client in its config.d, from a
# fixed vocabulary, each carried out once (docs/groups.md).

check() {
    return 255
}

depends() {
    echo gse-base gse-disk gse-net gse-system
}

install() {
    inst_simple "$moddir/gse-commands-lib.sh" /lib/gse/gse-commands-lib.sh
    inst_multiple reboot
    inst_hook pre-mount 25 "$moddir/gse-commands.sh"
    inst_hook pre-pivot 85 "$moddir/gse-reboot.sh"
}
