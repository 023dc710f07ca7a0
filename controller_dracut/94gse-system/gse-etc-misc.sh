#!/bin/sh
# pre-pivot hook 90: _etc_misc, the last controller script.  Mounts tmpfs on
# /etc (seeded from the image's /etc), /var/log, /tmp and the configured
# extras (GSE_TMPFS_EXTRA), each seeded with what the image holds there; then
# opens a new life cycle, saves the controller log and hands the state area
# to the system on /var/lib/gse/state (read-only but for health/).
. /lib/gse/gse-lib.sh
. /lib/gse/gse-disk-lib.sh
. /lib/gse/gse-health-lib.sh
gse_env_load

# gse_tmpfs DIR: a tmpfs on $NEWROOT/DIR with the image's content, and the
# directory's own mode and owner (cp -a copies those of "DIR/." too).  The
# tmpfs starts at mode 0700: cp -a adds a sticky or setgid bit the image's
# directory has but never clears one (a tmpfs's default root mode is 1777,
# which would leave /etc sticky).
gse_tmpfs() {
    _dst=$NEWROOT$1
    [ -d "$_dst" ] || { gse_warn "tmpfs: $1 does not exist in the image"; return 2; }
    _seed=$GSE_RUN/tmpfs.seed
    [ -d "$_seed" ] || mkdir -p "$_seed"
    mount -t tmpfs -o "mode=0700,size=${GSE_TMPFS_SIZE:-25%}" gse-tmpfs "$_seed" || return 2
    if ! cp -a "$_dst/." "$_seed/"; then
        umount "$_seed"
        gse_warn "tmpfs: cannot seed $1 from the image"
        return 2
    fi
    mount --move "$_seed" "$_dst" || { umount "$_seed"; return 2; }
    return 0
}

for _d in ${GSE_TMPFS:-/etc /var/log /tmp} $GSE_TMPFS_EXTRA; do
    gse_tmpfs "$_d" && gse_log "tmpfs: $_d"
done

# gse_state_handover: the state area on $NEWROOT/var/lib/gse/state for the
# booted system: read-only but for health/, where the system's gse-health
# service records its life cycle (bind mounts: the read-only flag is the
# mount's, the filesystem stays writable for the controller of the next
# boot).  Returns 2 when it cannot be mounted.
gse_state_handover() {
    _st=$NEWROOT/var/lib/gse/state
    mkdir -p "$GSE_STATE_MNT/health"
    mount --bind "$GSE_STATE_MNT" "$_st" || return 2
    if ! mount -o remount,bind,ro "$_st"; then
        umount "$_st"
        return 2
    fi
    mount --bind "$GSE_STATE_MNT/health" "$_st/health" || { umount "$_st"; return 2; }
    # The bind mounts keep the filesystem; the controller's own mount goes.
    umount "$GSE_STATE_MNT"
    return 0
}

# The system on $NEWROOT: SYSFS, or BACKUPFS when SYSFS lacked the running
# kernel's modules (gse-mount-root.sh).
_root=$(gse_result root) || _root=$(gse_find_label "$GSE_LABEL_SYSFS")
_v=$(gse_installed_get "$_root" version)
if gse_state_ok; then
    gse_cycle_open "$_v"
    gse_log "handing over to $_v"
    gse_log_save
    sync
    gse_state_handover || gse_warn "cannot hand the state area over on /var/lib/gse/state"
fi
unset _d _v _root
