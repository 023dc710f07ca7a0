#!/bin/sh
# gse-health-lib.sh: the life cycle of the system on SYSFS.
#
# A life cycle is one boot of the system: the controller opens it at hand
# over (state file health/cycle, "version=<v>"), the gse-health service of
# the image writes health/startup when the default runlevel came up without
# a failed service, and health/shutdown when it is stopped by an orderly
# shutdown.  Both markers live in the state area, which the controller
# mounts on /var/lib/gse/state in the booted system.

# gse_cycle_status VERSION: judge the last life cycle of VERSION.
#   0  healthy: startup and shutdown were recorded
#   1  no life cycle of VERSION is recorded (never handed over)
#   2  unhealthy: the reason is printed
gse_cycle_status() {
    _cyc=$(gse_state_read health/cycle) || return 1
    [ "$_cyc" = "version=$1" ] || return 1
    if [ ! -f "$GSE_STATE_MNT/health/startup" ]; then
        echo "no healthy startup recorded"
        return 2
    fi
    if [ ! -f "$GSE_STATE_MNT/health/shutdown" ]; then
        echo "no healthy shutdown recorded"
        return 2
    fi
    return 0
}

# gse_proven VERSION: 0 when VERSION completed a healthy life cycle on this
# client (state file "healthy", one version a line), 1 otherwise.
gse_proven() {
    gse_listed "$GSE_STATE_MNT/healthy" "$1"
}

# gse_judge VERSION: gse_cycle_status, and remember a healthy VERSION (the
# newest GSE_HEALTHY_LINES versions are kept: one line a new version, for
# the life of the client).
gse_judge() {
    gse_cycle_status "$1"
    _st=$?
    [ $_st -eq 0 ] && ! gse_proven "$1" && gse_state_append healthy "$1" "${GSE_HEALTHY_LINES:-100}"
    return $_st
}

# gse_cycle_open VERSION: start recording a new life cycle.
gse_cycle_open() {
    gse_state_ok || return 2
    rm -f "$GSE_STATE_MNT/health/startup" "$GSE_STATE_MNT/health/shutdown"
    gse_state_write health/cycle "version=$1"
}

# gse_cycle_forget: no cycle is recorded (a new system was installed).
gse_cycle_forget() {
    gse_state_ok || return 2
    rm -f "$GSE_STATE_MNT/health/cycle" "$GSE_STATE_MNT/health/startup" "$GSE_STATE_MNT/health/shutdown"
    sync
}

# gse_clone SRC DST: copy the complete system of SRC onto DST (wiped first);
# DST's record is written last, from SRC's, once the copy succeeded.
gse_clone() {
    gse_wipe_system "$2" || return 2
    _s=$GSE_RUN/mnt.src _d=$GSE_RUN/mnt.dst
    gse_mount_top "$1" "$_s" ro || return 2
    gse_mount_top "$2" "$_d" || { umount "$_s"; return 2; }
    _rc=0
    (cd "$(gse_sysroot "$_s")" && tar -cf - --numeric-owner --xattrs --acls --exclude="./$GSE_MARK" .) \
        | tar -xpf - --numeric-owner --xattrs --xattrs-include='*' --acls -C "$(gse_sysroot "$_d")" || _rc=2
    sync
    umount "$_s"
    umount "$_d"
    [ $_rc -eq 0 ] && gse_mark "$2" "$(gse_installed_get "$1" version)" "$(gse_installed_get "$1" serial)" \
        "$(gse_installed_get "$1" sha512)" || _rc=2
    gse_probe_forget "$2"
    return $_rc
}
