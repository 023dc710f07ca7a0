#!/bin/bash
# gse-boot: the boot partition (GSE_BOOT_PART): the pair (kernel,
# initramfs) of the installed system and the previous one, with their Boot
# Loader Specification entries; a reboot into the pair of a system the
# running kernel has no modules for; the blessing of an entry that booted.

check() {
    return 255
}

depends() {
    echo gse-base gse-disk gse-net
}

installkernel() {
    # A vfat boot partition (an ESP or XBOOTLDR) and its code pages; ext2/3/4
    # come with gse-disk.  Optional: a kernel without them mounts ext only.
    hostonly='' instmods vfat nls_cp437 nls_iso8859_1 nls_utf8
}

install() {
    inst_simple "$moddir/gse-boot-lib.sh" /lib/gse/gse-boot-lib.sh
    inst_multiple df sort mv cp sync reboot
    inst_hook pre-mount 45 "$moddir/gse-boot.sh"
    inst_hook pre-pivot 75 "$moddir/gse-boot-bless.sh"
}
