#!/bin/sh
# pre-mount hook 45: "Boot partition": with GSE_BOOT_PART set, put the
# kernel and initramfs pair the signed pointer names for the system on
# SYSFS onto the boot partition (gse-boot-lib.sh), its entry the default,
# the previous one kept as the fallback.  After the version check (a system
# installed this boot gets its pair this boot), before the health check.
#
# Only the pair of the pointer that verified this boot and names the very
# image SYSFS holds (same version and SHA512): never a pair for a system
# that is not installed.  Kernel and initramfs are fetched into RAM and
# checked against the pointer before the boot partition is mounted
# read-write.  Refused, each with its reason logged and a line in the state
# area's refused file: a digest or size mismatch, a failed download, no
# room, a partition that is not found or does not mount.  A refusal changes
# nothing on the boot partition and the boot goes on.
. /lib/gse/gse-lib.sh
gse_env_load

# gse_boot_refused VERSION REASON: log and record a refusal; 2.
gse_boot_refused() {
    gse_warn "boot partition: pair of $1 refused: $2; the boot partition is unchanged"
    gse_state_append refused "$(date -u +%Y-%m-%dT%H:%M:%SZ) $1 boot-pair: $2" "${GSE_REFUSED_LINES:-100}"
    return 2
}

# gse_boot_fetch PATH OUT SIZE: gse_fetch bounded like the image
# (GSE_IMAGE_TIMEOUT), not like a pointer: a pair is tens of megabytes.  No
# more than the signed SIZE reaches RAM: a server announcing more is refused
# before the body, one sending more without announcing it is cut off at
# SIZE bytes (gse_fetch's bound, as for the chunk index).
gse_boot_fetch() {
    # shellcheck disable=SC2034 # read by gse_curl_bounds (gse-net-lib.sh)
    (GSE_FETCH_TIMEOUT=${GSE_IMAGE_TIMEOUT:-3600}; gse_fetch_sized "$3" "$1" "$2")
}

gse_boot_pair() {
    _b=$GSE_RUN/version.body
    # The version check removes a body that does not verify.
    [ -r "$_b" ] || { gse_log "boot partition: no verified pointer this boot, nothing to do"; return 1; }
    _v=$(gse_pointer_get "$_b" version)
    _sys=$(gse_find_label "$GSE_LABEL_SYSFS") || _sys=
    if [ -z "$_v" ] || [ -z "$_sys" ] || [ "$(gse_installed_get "$_sys" version)" != "$_v" ] \
        || [ "$(gse_installed_get "$_sys" sha512)" != "$(gse_pointer_get "$_b" sha512)" ]; then
        gse_log "boot partition: SYSFS does not hold the pointer's image ${_v:-?}, no pair to install"
        return 1
    fi
    if ! _k=$(gse_pointer_get "$_b" kernel) || ! _i=$(gse_pointer_get "$_b" initramfs); then
        gse_log "boot partition: the pointer of $_v names no kernel and initramfs"
        return 1
    fi
    _ks=$(gse_pointer_get "$_b" kernel_sha512)
    _is=$(gse_pointer_get "$_b" initramfs_sha512)
    _kz=$(gse_pointer_get "$_b" kernel_size)
    _iz=$(gse_pointer_get "$_b" initramfs_size)
    if [ ${#_ks} -ne 128 ] || [ ${#_is} -ne 128 ] || ! gse_decimal "$_kz" || ! gse_decimal "$_iz"; then
        gse_boot_refused "$_v" "incomplete pointer (kernel_sha512, kernel_size, initramfs_sha512, initramfs_size)"
        return 2
    fi
    gse_boot_name_ok "$_v" || { gse_boot_refused "$_v" "the version cannot name a directory or an entry"; return 2; }
    _serial=$(gse_pointer_get "$_b" serial)

    # Installed already?  Asked read-only, from the pair record (no hashing).
    gse_boot_mount ro
    case $? in
        0) ;;
        *) gse_boot_refused "$_v" "$GSE_BOOT_REASON"; return 2 ;;
    esac
    if gse_boot_has "$GSE_BOOT_MNT" "$_v" "$_ks" "$_is"; then
        gse_log "boot partition: the pair of $_v is installed"
        gse_boot_umount
        return 1
    fi
    gse_boot_umount

    # Into RAM, bounded like the image, and checked before the boot
    # partition is written.
    _r=$GSE_RUN/pair.new
    rm -rf "$_r"
    mkdir -p "$_r"
    _rc=0
    gse_boot_fetch "$_k" "$_r/vmlinuz" "$_kz" || _rc=2
    [ $_rc -eq 0 ] && { gse_check_file "$_r/vmlinuz" "$_ks" "$_kz" || { _rc=2; GSE_BOOT_REASON="vmlinuz: $GSE_VERIFY_REASON"; }; }
    [ $_rc -eq 0 ] && { gse_boot_fetch "$_i" "$_r/initramfs" "$_iz" || _rc=2; }
    [ $_rc -eq 0 ] && { gse_check_file "$_r/initramfs" "$_is" "$_iz" || { _rc=2; GSE_BOOT_REASON="initramfs: $GSE_VERIFY_REASON"; }; }
    if [ $_rc -ne 0 ]; then
        rm -rf "$_r"
        gse_boot_refused "$_v" "${GSE_BOOT_REASON:-download failed ($_k, $_i)}"
        return 2
    fi

    gse_boot_mount rw || { rm -rf "$_r"; gse_boot_refused "$_v" "$GSE_BOOT_REASON"; return 2; }
    # The pair, its record, the entry and some room for the file system.
    _need=$((_kz + _iz + 65536))
    if ! gse_boot_install "$GSE_BOOT_MNT" "$_v" "$_serial" "$_r/vmlinuz" "$_r/initramfs" "$_ks" "$_is" "$_need"; then
        rm -rf "$_r"
        gse_boot_umount
        gse_boot_refused "$_v" "$GSE_BOOT_REASON"
        return 2
    fi
    rm -rf "$_r"
    gse_log "boot partition: installed the pair of $_v (default entry), fallback ${GSE_BOOT_PREVIOUS:-none}"
    gse_boot_umount
    return 0
}

# Without a boot partition (the default) the libraries are not even read.
if [ -n "$GSE_BOOT_PART" ]; then
    . /lib/gse/gse-verify-lib.sh
    . /lib/gse/gse-disk-lib.sh
    . /lib/gse/gse-net-lib.sh
    . /lib/gse/gse-boot-lib.sh
    ( gse_boot_pair )
    gse_result bootpart $?
fi
