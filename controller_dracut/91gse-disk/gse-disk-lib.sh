#!/bin/sh
# gse-disk-lib.sh: drives, partitions, filesystems, labels, boot flags and
# btrfs subvolumes.  Return codes as in gse-lib.sh (0 ok, 1 no, 2 error).
#
# The managed disk holds three partitions (GPT):
#   1  the state area      label $GSE_LABEL_STATE (ext4, small)
#   2  a system partition  label SYSFS / BACKUPFS / DEPRIVED
#   3  a system partition  label SYSFS / BACKUPFS / DEPRIVED
# A system partition holds a complete system only when the state area has
# its record, installed/<device> ("uuid=", "version=", "serial=", "sha512="
# lines), written by the controller alone, last, after the image verified.
# The record lives outside the system partition, so no image content can
# carry it, and it names the filesystem UUID it was written for, so a new
# filesystem voids it.  A half-written partition has no record and is never
# booted.  GSE_MARK is the name older controllers gave the record at the top
# of the partition: an image entry of that name is stripped, never read.

GSE_MARK=.gse-installed

# What a boot learns about a device (its label, filesystem type and
# record) is kept in $GSE_PROBE for the rest of the boot:
# one blkid and at most one mount per device, however many steps ask.
# Every function here that changes a device forgets what was kept of it.
GSE_PROBE=$GSE_RUN/probe

# gse_probe_forget [DEV]: forget what was probed of DEV (of every device
# without DEV).
gse_probe_forget() {
    if [ -n "$1" ]; then
        rm -f "$GSE_PROBE/${1##*/}".*
    else
        rm -rf "$GSE_PROBE"
    fi
    return 0
}

# gse_blkid_get DEV KEY: print KEY (LABEL, TYPE) of DEV's filesystem; 1 when
# DEV has none.
gse_blkid_get() {
    _gse_pf=$GSE_PROBE/${1##*/}.blkid
    if [ ! -f "$_gse_pf" ]; then
        [ -d "$GSE_PROBE" ] || mkdir -p "$GSE_PROBE"
        blkid -p -o export "$1" > "$_gse_pf" 2> /dev/null
    fi
    while IFS='=' read -r _gse_k _gse_v; do
        [ "$_gse_k" = "$2" ] && { printf '%s\n' "$_gse_v"; return 0; }
    done < "$_gse_pf"
    return 1
}

# Print the managed disk (GSE_DISK, else the first virtio/SCSI/NVMe disk).
gse_disk() {
    if [ -n "$GSE_DISK" ]; then
        echo "$GSE_DISK"
        return 0
    fi
    for _d in /sys/block/vd? /sys/block/sd? /sys/block/nvme?n? /sys/block/mmcblk?; do
        [ -e "$_d" ] && { echo "/dev/${_d##*/}"; return 0; }
    done
    return 1
}

# gse_part DISK N: the device of partition N (vda1, nvme0n1p1).
gse_part() {
    case "$1" in
        *[0-9]) echo "${1}p$2" ;;
        *) echo "$1$2" ;;
    esac
}

# Print every partition device of the managed disk.
gse_partitions() {
    _disk=$(gse_disk) || return 1
    _b=${_disk##*/}
    for _p in /sys/block/"$_b"/"$_b"*; do
        [ -e "$_p/partition" ] && echo "/dev/${_p##*/}"
    done
    return 0
}

# gse_label_of DEV: print the filesystem label.
gse_label_of() {
    gse_blkid_get "$1" LABEL
}

gse_fstype_of() {
    gse_blkid_get "$1" TYPE
}

# gse_find_label LABEL: print the first partition with LABEL; 1 if none.
gse_find_label() {
    for _p in $(gse_partitions); do
        [ "$(gse_label_of "$_p")" = "$1" ] && { echo "$_p"; return 0; }
    done
    return 1
}

# The two system partitions, whatever their labels.
gse_system_parts() {
    _disk=$(gse_disk) || return 1
    echo "$(gse_part "$_disk" 2) $(gse_part "$_disk" 3)"
}

# gse_other_part DEV: the system partition that is not DEV.
gse_other_part() {
    for _p in $(gse_system_parts); do
        [ "$_p" != "$1" ] && { echo "$_p"; return 0; }
    done
    return 1
}

# gse_set_label DEV LABEL
gse_set_label() {
    case "$(gse_fstype_of "$1")" in
        ext2 | ext3 | ext4) e2label "$1" "$2" ;;
        btrfs) btrfs filesystem label "$1" "$2" ;;
        *) gse_warn "cannot label $1: unknown filesystem"; return 2 ;;
    esac || return 2
    gse_probe_forget "$1"
    gse_log "label $1 -> $2"
    return 0
}

# gse_bootflag DEV: mark DEV the one legacy-bootable partition of the disk
# (only when GSE_BOOTFLAG=yes, for disks whose bootloader follows the flag).
gse_bootflag() {
    gse_yes "$GSE_BOOTFLAG" || return 1
    _disk=$(gse_disk) || return 2
    for _p in $(gse_system_parts); do
        _n=${_p##*[!0-9]}
        if [ "$_p" = "$1" ]; then
            sfdisk -q --part-attrs "$_disk" "$_n" LegacyBIOSBootable
        else
            sfdisk -q --part-attrs "$_disk" "$_n" ""
        fi
    done
    return 0
}

# Wait until the kernel shows partition N of DISK.
gse_wait_part() {
    _i=0
    while [ ! -b "$(gse_part "$1" "$2")" ] && [ $_i -lt 50 ]; do
        udevadm settle --timeout=1 2> /dev/null || sleep 0.1
        _i=$((_i + 1))
    done
    [ -b "$(gse_part "$1" "$2")" ]
}

# gse_mkfs DEV LABEL: a new filesystem of GSE_FSTYPE (btrfs: with the
# system subvolume).
gse_mkfs() {
    gse_probe_forget "$1"
    case "${GSE_FSTYPE:-ext4}" in
        ext4) mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 -L "$2" "$1" > /dev/null ;;
        btrfs)
            mkfs.btrfs -q -f -L "$2" "$1" > /dev/null || return 2
            gse_subvol_reset "$1"
            ;;
        *) gse_warn "unknown GSE_FSTYPE ${GSE_FSTYPE}"; return 2 ;;
    esac || return 2
    gse_log "mkfs ${GSE_FSTYPE:-ext4} $1 ($2)"
    return 0
}

# gse_subvol_reset DEV: delete and recreate the system subvolume (btrfs).
gse_subvol_reset() {
    gse_probe_forget "$1"
    _m=$GSE_RUN/mnt.subvol
    mkdir -p "$_m"
    mount -t btrfs -o subvolid=5 "$1" "$_m" || return 2
    rm -f "$_m/$GSE_MARK"
    [ -d "$_m/$GSE_SUBVOLUME" ] && btrfs -q subvolume delete "$_m/$GSE_SUBVOLUME" > /dev/null
    btrfs -q subvolume create "$_m/$GSE_SUBVOLUME" > /dev/null
    _rc=$?
    umount "$_m"
    [ $_rc -eq 0 ] || return 2
    return 0
}

# gse_mount_top DEV DIR [OPTS]: mount the top of the filesystem (btrfs: above
# the system subvolume).
gse_mount_top() {
    mkdir -p "$2"
    if [ "$(gse_fstype_of "$1")" = btrfs ]; then
        mount -t btrfs -o "subvolid=5${3:+,$3}" "$1" "$2"
    else
        mount ${3:+-o "$3"} "$1" "$2"
    fi
}

# gse_sysroot DIR: the system root below a mounted top (ext4: DIR itself).
gse_sysroot() {
    if [ "${GSE_FSTYPE:-ext4}" = btrfs ] && [ -d "$1/$GSE_SUBVOLUME" ]; then
        echo "$1/$GSE_SUBVOLUME"
    else
        echo "$1"
    fi
}

# gse_mount_root DEV DIR [OPTS]: mount the system root of DEV on DIR.
gse_mount_root() {
    mkdir -p "$2"
    if [ "$(gse_fstype_of "$1")" = btrfs ]; then
        mount -t btrfs -o "subvol=$GSE_SUBVOLUME${3:+,$3}" "$1" "$2"
    else
        mount ${3:+-o "$3"} "$1" "$2"
    fi
}

# gse_record DEV: the path of DEV's record in the state area.
gse_record() {
    echo "$GSE_STATE_MNT/installed/${1##*/}"
}

# gse_installed DEV: print the record of DEV ("uuid=...", "version=...",
# "serial=...", "sha512=..." lines); 1 when DEV holds no complete system (no
# record, or a record of another filesystem, or no state area).
gse_installed() {
    [ -b "$1" ] || return 1
    gse_state_ok || return 1
    _gse_pf=$GSE_PROBE/${1##*/}.installed
    if [ ! -f "$_gse_pf" ] && [ ! -f "$_gse_pf.none" ]; then
        [ -d "$GSE_PROBE" ] || mkdir -p "$GSE_PROBE"
        _gse_uuid=$(gse_blkid_get "$1" UUID) || _gse_uuid=
        _gse_rec=$(gse_record "$1")
        if [ -n "$_gse_uuid" ] && [ -r "$_gse_rec" ] && gse_listed "$_gse_rec" "uuid=$_gse_uuid"; then
            cp "$_gse_rec" "$_gse_pf"
        else
            : > "$_gse_pf.none"
        fi
    fi
    [ -f "$_gse_pf" ] || return 1
    while IFS= read -r _gse_l; do
        printf '%s\n' "$_gse_l"
    done < "$_gse_pf"
    return 0
}

# gse_mark DEV VERSION SERIAL SHA512: record DEV as holding the complete,
# verified system VERSION (called only after verification).
gse_mark() {
    gse_probe_forget "$1"
    _gse_uuid=$(gse_blkid_get "$1" UUID) || { gse_warn "$1 has no filesystem UUID"; return 2; }
    gse_state_write "installed/${1##*/}" "$(printf 'uuid=%s\nversion=%s\nserial=%s\nsha512=%s' \
        "$_gse_uuid" "$2" "$3" "$4")" || return 2
    gse_probe_forget "$1"
    return 0
}

# gse_unmark DEV: DEV holds no complete system (before anything is written
# to it).
gse_unmark() {
    gse_probe_forget "$1"
    gse_state_ok || return 2
    rm -f "$(gse_record "$1")"
    sync
    return 0
}

# gse_installed_get DEV KEY: print KEY of DEV's record; 1 when DEV holds no
# complete system or the record has no KEY.
gse_installed_get() {
    gse_installed "$1" > /dev/null || return 1
    while IFS='=' read -r _gse_k _gse_v; do
        [ "$_gse_k" = "$2" ] && { printf '%s\n' "$_gse_v"; return 0; }
    done < "$GSE_PROBE/${1##*/}.installed"
    return 1
}

# gse_is_blank DISK: 0 when the disk has no partition table.
gse_is_blank() {
    ! sfdisk -d "$1" > /dev/null 2>&1
}

# gse_partition DISK: create the layout on DISK (destroys everything on it).
gse_partition() {
    gse_log "partitioning $1"
    gse_probe_forget
    wipefs -q -a "$1" > /dev/null 2>&1
    _state=${GSE_STATE_SIZE:-64MiB}
    if [ -n "$GSE_SYSTEM_SIZE" ]; then
        _sys="size=$GSE_SYSTEM_SIZE,"
    else
        # Two equal system partitions over what the state area leaves.
        _sectors=$(cat "/sys/block/${1##*/}/size")
        _stsec=$(($(echo "$_state" | sed 's/MiB$//') * 2048))
        _sys="size=$(((_sectors - _stsec - 4096) / 2 / 2048 * 2048)),"
    fi
    printf 'label: gpt\nsize=%s, name=gse-state\n%s name=gse-system-a\nname=gse-system-b\n' \
        "$_state" "$_sys" | sfdisk -q -W always "$1" > /dev/null || return 2
    for _n in 1 2 3; do
        gse_wait_part "$1" $_n || { gse_warn "partition $_n of $1 did not appear"; return 2; }
    done
    mkfs.ext4 -q -F -E lazy_itable_init=1,lazy_journal_init=1 -L "$GSE_LABEL_STATE" "$(gse_part "$1" 1)" > /dev/null || return 2
    gse_mkfs "$(gse_part "$1" 2)" "$GSE_LABEL_SYSFS" || return 2
    gse_mkfs "$(gse_part "$1" 3)" "$GSE_LABEL_BACKUPFS" || return 2
    touch "$GSE_RUN/fresh.$(basename "$(gse_part "$1" 2)")" "$GSE_RUN/fresh.$(basename "$(gse_part "$1" 3)")"
    return 0
}

# gse_wipe_system DEV: empty a system partition before an image streams in
# (mkfs when GSE_MKFS=yes, else delete its content / its subvolume).
gse_wipe_system() {
    gse_unmark "$1" || return 2
    # A filesystem made during this boot is empty already.
    if [ -e "$GSE_RUN/fresh.${1##*/}" ]; then
        rm -f "$GSE_RUN/fresh.${1##*/}"
        return 0
    fi
    _label=$(gse_label_of "$1")
    if gse_yes "${GSE_MKFS:-yes}"; then
        gse_mkfs "$1" "${_label:-$GSE_LABEL_BACKUPFS}"
        return $?
    fi
    if [ "$(gse_fstype_of "$1")" = btrfs ]; then
        gse_subvol_reset "$1"
        return $?
    fi
    _m=$GSE_RUN/mnt.wipe
    gse_mount_top "$1" "$_m" || return 2
    rm -f "$_m/$GSE_MARK"
    sync
    find "$_m" -mindepth 1 -maxdepth 1 ! -name lost+found -exec rm -rf {} +
    umount "$_m"
    gse_log "wiped $1"
    return 0
}

# gse_state_mount: mount the state area (label $GSE_LABEL_STATE); 1 if none.
gse_state_mount() {
    gse_state_ok && return 0
    _dev=$(gse_find_label "$GSE_LABEL_STATE") || return 1
    mkdir -p "$GSE_STATE_MNT"
    mount -t ext4 "$_dev" "$GSE_STATE_MNT" || { gse_warn "cannot mount state area $_dev"; return 2; }
    return 0
}

# gse_has_modules ROOT: 0 when the system mounted on ROOT holds the modules
# of the running kernel (depmod's ROOT/lib/modules/KVER/modules.dep, or
# under usr/lib for a merged /usr), or when the running kernel loads no
# modules at all (no /proc/modules: nothing to find); 1 when it lacks them.
# A symlinked ROOT/lib is not followed: an absolute link would resolve in
# the initramfs, which holds the running kernel's modules itself.
gse_has_modules() {
    [ -e /proc/modules ] || return 0
    read -r _gse_kv < /proc/sys/kernel/osrelease || _gse_kv=$(uname -r)
    [ -e "$1/usr/lib/modules/$_gse_kv/modules.dep" ] && return 0
    [ ! -L "$1/lib" ] && [ -e "$1/lib/modules/$_gse_kv/modules.dep" ] && return 0
    return 1
}
