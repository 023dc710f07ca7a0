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
    inst_simple "$moddir/gse-verify-lib.sh" /lib/gse/gse-verify-lib.sh
    # Signatures and digests (the client config.d cached in the state area
    # is verified again at every boot, before the network is asked).
    inst_multiple gpgv sha512sum wc gzip tar
    inst_multiple sed tr cat grep mkdir rm mv cp sync dirname basename head tail cut awk touch sleep date od
    # Also installed by dracut's own modules; named here because the
    # controller runs them (tests/controller/test_initramfs_commands.py).
    inst_multiple chmod uname
    inst_hook cmdline 01 "$moddir/gse-export-config.sh"
    inst_hook cmdline 02 "$moddir/gse-cmdline.sh"
}
