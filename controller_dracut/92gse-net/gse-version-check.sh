#!/bin/sh
# pre-mount hook 40: version check, and on a new version "fetch new system":
# wipe the target partition, make its filesystem when configured, stream the
# image in while verifying it.  Refused: a pointer that does not verify, a
# serial older than one accepted before (replay), a version this client
# deprived, an image whose SHA512SUMS is not signed or does not list it.
#
# The target is SYSFS itself unless SYSFS holds a system that completed a
# healthy life cycle: then the image goes to the other system partition and
# the labels swap only after it verified (the old system becomes BACKUPFS),
# so a failed download never touches the only good system.
. /lib/gse/gse-lib.sh
. /lib/gse/gse-disk-lib.sh
. /lib/gse/gse-net-lib.sh
. /lib/gse/gse-health-lib.sh
gse_env_load

gse_version_check() {
    # Downloaded by the network check, which always leaves its status
    # ("RC HTTP-CODE") when it answers 0, the only answer this step runs on.
    _st=$(gse_result version_fetch) || { gse_warn "version check: the network check left no version.txt"; return 2; }
    _code=${_st#* } _st=${_st%% *}
    case $_st in
        1) gse_log "version: nothing published"; return 1 ;;
        2) gse_warn "version check failed: version.txt: HTTP $_code from the server"; return 2 ;;
    esac
    gse_verify_pointer "$GSE_RUN/version.txt" "$GSE_RUN/version.body" \
        || { gse_warn "version refused: version.txt signature does not verify"; return 2; }
    _b=$GSE_RUN/version.body
    _serial=$(gse_pointer_get "$_b" serial)
    _version=$(gse_pointer_get "$_b" version)
    _path=$(gse_pointer_get "$_b" path)
    _sha=$(gse_pointer_get "$_b" sha512)
    _size=$(gse_pointer_get "$_b" size)
    case "$_serial" in '' | *[!0-9]*) gse_warn "version refused: bad serial"; return 2 ;; esac
    [ -n "$_version" ] && [ -n "$_path" ] && [ ${#_sha} -eq 128 ] && [ -n "$_size" ] \
        || { gse_warn "version refused: incomplete pointer"; return 2; }

    _sys=$(gse_find_label "$GSE_LABEL_SYSFS")
    _cur=$(gse_installed_get "$_sys" version)
    _cur_serial=$(gse_installed_get "$_sys" serial)
    _accepted=$(gse_state_read serial) || _accepted=0
    [ -n "$_cur_serial" ] && [ "$_cur_serial" -gt "$_accepted" ] && _accepted=$_cur_serial
    if [ "$_version" = "$_cur" ]; then
        gse_log "version: $_version (serial $_serial) is installed, no new version"
        return 1
    fi
    if [ "$_serial" -lt "$_accepted" ]; then
        gse_warn "version refused: serial $_serial ($_version) is older than the accepted $_accepted (replayed pointer)"
        return 2
    fi
    if gse_listed "$GSE_STATE_MNT/deprived" "$_version"; then
        gse_log "version: $_version was deprived on this client, not fetched again"
        return 1
    fi
    if gse_listed "$GSE_STATE_MNT/refused" "$_sha"; then
        gse_log "version: the image of $_version was refused before (same SHA512), not fetched again"
        return 1
    fi
    if gse_yes "$GSE_NOUPDATE"; then
        gse_log "version: $_version available, updates disabled"
        return 1
    fi
    gse_log "version: new version $_version (serial $_serial), installed ${_cur:-none}"

    # SHA512SUMS of the image directory: signed, and naming the same digest.
    _dir=${_path%/*}
    gse_fetch "$_dir/SHA512SUMS" "$GSE_RUN/SHA512SUMS" && gse_fetch "$_dir/SHA512SUMS.asc" "$GSE_RUN/SHA512SUMS.asc" \
        || { gse_warn "image refused: SHA512SUMS missing"; return 2; }
    gse_verify_detached "$GSE_RUN/SHA512SUMS.asc" "$GSE_RUN/SHA512SUMS" \
        || { gse_warn "image refused: SHA512SUMS signature does not verify"; return 2; }
    grep -Eq "^$_sha [ *]${_path##*/}\$" "$GSE_RUN/SHA512SUMS" \
        || { gse_warn "image refused: SHA512SUMS does not list the pointer's digest"; return 2; }

    # Keep a complete SYSFS that was not judged unhealthy: the image goes to
    # the other system partition.
    _target=$_sys
    _old_label=$GSE_LABEL_DEPRIVED
    if [ -n "$_cur" ]; then
        gse_judge "$_cur" > /dev/null
        [ $? -ne 2 ] && _target=$(gse_other_part "$_sys")
        gse_proven "$_cur" && _old_label=$GSE_LABEL_BACKUPFS
    fi
    gse_log "installing $_version on $_target"
    gse_wipe_system "$_target" || { gse_warn "cannot wipe $_target"; return 2; }
    _m=$GSE_RUN/mnt.target
    gse_mount_top "$_target" "$_m" || return 2
    _rc=0
    gse_stream_image "$_path" "$(gse_sysroot "$_m")" "$_sha" "$_size" "$(gse_pointer_get "$_b" compression)" || _rc=2
    sync
    if [ $_rc -eq 0 ]; then
        printf 'version=%s\nserial=%s\nsha512=%s\n' "$_version" "$_serial" "$_sha" > "$_m/$GSE_MARK.tmp" \
            && sync && mv "$_m/$GSE_MARK.tmp" "$_m/$GSE_MARK" && sync || _rc=2
    fi
    umount "$_m"
    gse_probe_forget "$_target"
    if [ $_rc -ne 0 ]; then
        # Downloaded in full but not the signed bytes: the same pointer is not
        # fetched again at every boot (a failed download is retried).
        [ -e "$GSE_RUN/stream/verdict" ] && gse_state_append refused "$_sha"
        gse_warn "version $_version not installed; $_target holds no complete system"
        return 2
    fi
    gse_state_write serial "$_serial"
    if [ "$_target" != "$_sys" ]; then
        # BACKUPFS only ever holds a system that completed a healthy cycle.
        gse_set_label "$_sys" "$_old_label"
        gse_set_label "$_target" "$GSE_LABEL_SYSFS"
    fi
    # The flag follows SYSFS (first install included).
    gse_bootflag "$_target"
    gse_cycle_forget
    gse_log "installed $_version (serial $_serial) on $_target"
    return 0
}

if [ "$(gse_result network)" = 0 ]; then
    ( gse_version_check )
    gse_result version $?
fi
