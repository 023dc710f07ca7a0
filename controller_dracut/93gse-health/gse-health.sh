#!/bin/sh
# pre-mount hook 50: health check of the last life cycle.
#   unhealthy (or SYSFS incomplete): SYSFS -> DEPRIVED, BACKUPFS -> SYSFS, the
#     deprived version is remembered so it is not fetched again;
#   healthy and no complete backup: BACKUPFS is refreshed from SYSFS (only
#     ever from a system that completed a healthy cycle).
# Skipped when a new system was installed during this boot.
. /lib/gse/gse-lib.sh
. /lib/gse/gse-disk-lib.sh
. /lib/gse/gse-health-lib.sh
gse_env_load

gse_fallback() {
    _bk=$(gse_find_label "$GSE_LABEL_BACKUPFS")
    if [ -z "$_bk" ] || ! gse_installed "$_bk" > /dev/null; then
        gse_warn "health: no complete BACKUPFS to fall back to"
        return 2
    fi
    # The newest GSE_DEPRIVED_LINES deprived versions are kept.
    [ -n "$2" ] && gse_state_append deprived "$2" "${GSE_DEPRIVED_LINES:-100}"
    gse_set_label "$1" "$GSE_LABEL_DEPRIVED" || return 2
    gse_set_label "$_bk" "$GSE_LABEL_SYSFS" || return 2
    gse_bootflag "$_bk"
    gse_cycle_forget
    gse_log "health: fell back to $(gse_installed_get "$_bk" version) on $_bk"
    return 0
}

gse_refresh_backup() {
    gse_yes "${GSE_BACKUP_CLONE:-yes}" || return 1
    _bk=$(gse_find_label "$GSE_LABEL_BACKUPFS")
    [ -n "$_bk" ] && gse_installed "$_bk" > /dev/null && return 1
    _dst=$(gse_other_part "$1") || return 2
    gse_log "health: refreshing BACKUPFS ($_dst) from SYSFS ($1)"
    gse_clone "$1" "$_dst" || { gse_warn "health: backup refresh failed"; return 2; }
    gse_set_label "$_dst" "$GSE_LABEL_BACKUPFS"
}

gse_health_check() {
    _sys=$(gse_find_label "$GSE_LABEL_SYSFS")
    if [ -z "$_sys" ] || ! gse_installed "$_sys" > /dev/null; then
        gse_warn "health: SYSFS ${_sys:-(none)} holds no complete system"
        gse_fallback "$_sys" ""
        return $?
    fi
    _v=$(gse_installed_get "$_sys" version)
    _why=$(gse_judge "$_v")
    case $? in
        0)
            gse_log "health: last life cycle of $_v healthy"
            gse_refresh_backup "$_sys"
            return 0
            ;;
        1)
            gse_log "health: no life cycle of $_v recorded yet"
            gse_proven "$_v" && gse_refresh_backup "$_sys"
            return 0
            ;;
    esac
    gse_warn "health: last life cycle of $_v unhealthy: $_why"
    gse_fallback "$_sys" "$_v"
}

if [ "$(gse_result version)" = 0 ]; then
    gse_log "health: new system installed, check skipped"
else
    ( gse_health_check )
fi
