#!/bin/bash
# gse-disk: partitions, filesystems, labels, boot flags, btrfs subvolumes,
# the state area, and the mount of SYSFS on $NEWROOT.

check() {
    require_binaries sfdisk wipefs blkid mkfs.ext4 e2label || return 1
    return 255
}

depends() {
    echo gse-base
}

installkernel() {
    hostonly='' instmods ext4 btrfs
}

install() {
    inst_simple "$moddir/gse-disk-lib.sh" /lib/gse/gse-disk-lib.sh
    inst_multiple sfdisk wipefs blkid mkfs.ext4 mke2fs e2label tune2fs udevadm find mount umount
    inst_multiple -o mkfs.btrfs btrfs
    inst_hook pre-mount 05 "$moddir/gse-state.sh"
    inst_hook pre-mount 30 "$moddir/gse-disk.sh"
    inst_hook mount 50 "$moddir/gse-mount-root.sh"
}
