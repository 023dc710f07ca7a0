#!/bin/sh
# pre-pivot hook 70: "Report": after every decision of the boot, send the
# server what this client runs, its health and its last refusals
# (docs/fleet.md).  Only on a boot that reached the server; a report that
# cannot be delivered is logged and the boot goes on.
. /lib/gse/gse-lib.sh
. /lib/gse/gse-disk-lib.sh
. /lib/gse/gse-health-lib.sh
. /lib/gse/gse-report-lib.sh
gse_env_load

gse_report() {
    gse_yes "${GSE_REPORT:-yes}" || return 1
    [ "$(gse_result network)" = 0 ] || return 1
    gse_identity || { gse_warn "report: no client identity (no state area)"; return 2; }
    # Where the booted system's gse-health service reports its half (state
    # file report/server; the booted system reads the state area read-only).
    [ "$(gse_state_read report/server 2> /dev/null)" = "$GSE_SERVER" ] || gse_state_write report/server "$GSE_SERVER"
    _sys=$(gse_find_label "$GSE_LABEL_SYSFS")
    _v='' _s=''
    if [ -n "$_sys" ] && gse_installed "$_sys" > /dev/null; then
        _v=$(gse_installed_get "$_sys" version)
        _s=$(gse_installed_get "$_sys" serial)
    fi
    # The health of the version it runs now (after any fallback): proven
    # by a healthy life cycle on this client, or its last cycle unhealthy
    # (the markers are still those of the last cycle: a new one opens at
    # hand over, after this hook).
    _health=unknown
    if [ -n "$_v" ]; then
        if gse_proven "$_v"; then
            _health=healthy
        else
            gse_cycle_status "$_v" > /dev/null
            [ $? -eq 2 ] && _health=unhealthy
        fi
    fi
    gse_report_body "$_v" "$_s" "$_health" > "$GSE_RUN/report.json" || return 2
    gse_report_send "$GSE_RUN/report.json"
}

( gse_report )
