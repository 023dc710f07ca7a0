#!/bin/bash
# gse-base: the controller's library, config.d export and command line.
# The controller's config.d is put at /config.d by the build
# (dracut --include CONFIG_D /config.d).

check() {
    # Only when asked for (dracut --add / add_dracutmodules).
    return 255
}

depends() {
    echo base
}

install() {
    inst_dir /lib/gse
    inst_simple "$moddir/gse-lib.sh" /lib/gse/gse-lib.sh
    inst_multiple sed tr cat grep mkdir rm mv cp sync dirname basename head cut awk touch sleep
    inst_hook cmdline 01 "$moddir/gse-export-config.sh"
    inst_hook cmdline 02 "$moddir/gse-cmdline.sh"
}
