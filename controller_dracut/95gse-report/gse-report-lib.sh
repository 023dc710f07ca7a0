#!/bin/sh
# gse-report-lib.sh: the client's fleet report (its identity is gse_identity, gse-lib.sh).
# Return codes as in gse-lib.sh (0 ok, 1 no, 2 error).
# The client's machine-id and token (_gse_mid, _gse_token) are set by
# gse_identity (gse-lib.sh) before these functions run.
# shellcheck disable=SC2154

# Reports are at most this many bytes of the controller log.
GSE_REPORT_LOG_BYTES=${GSE_REPORT_LOG_BYTES:-12000}

# gse_json_text: read text on stdin, print it as a JSON string (quoted):
# backslashes and quotes escaped, tabs and newlines as \t and \n, every
# other control character dropped.
gse_json_text() {
    tr -d '\000-\010\013-\037\177' | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g' -e 's/\t/\\t/g' \
        | awk 'BEGIN { printf "\"" } { if (NR > 1) printf "\\n"; printf "%s", $0 } END { printf "\"" }'
}

# gse_report_mac: the MAC of the interface that holds the IPv4 address; 1
# when there is none.
gse_report_mac() {
    _gse_dev=$(ip -4 -o addr show scope global 2> /dev/null | awk '{ print $2; exit }')
    [ -n "$_gse_dev" ] && [ -r "/sys/class/net/$_gse_dev/address" ] || return 1
    cat "/sys/class/net/$_gse_dev/address"
}

# gse_report_body VERSION SERIAL HEALTH: print the controller's report (JSON).
gse_report_body() {
    _gse_mac=$(gse_report_mac) || _gse_mac=00:00:00:00:00:00
    printf '{"reporter": "controller", "machine_id": "%s", "mac": "%s"' "$_gse_mid" "$_gse_mac"
    [ -n "$GSE_HOSTNAME" ] && printf ', "hostname": %s' "$(printf '%s' "$GSE_HOSTNAME" | cut -c1-64 | gse_json_text)"
    [ -n "$GSE_GROUP" ] && printf ', "group": %s' "$(printf '%s' "$GSE_GROUP" | cut -c1-64 | gse_json_text)"
    [ -n "$1" ] && printf ', "version": %s' "$(printf '%s' "$1" | cut -c1-128 | gse_json_text)"
    gse_decimal "$2" && printf ', "serial": "%s"' "$2"
    printf ', "health": "%s", "refusals": [' "$3"
    # The newest refusals: "<time> <version> signed=<digest> <verdict>: <reason>".
    gse_state_read refused 2> /dev/null | tail -n 10 | {
        _gse_sep=''
        while read -r _gse_t _gse_v _gse_d _gse_rest; do
            printf '%s{"time": %s, "version": %s, "digest": %s, "reason": %s}' "$_gse_sep" \
                "$(printf '%s' "$_gse_t" | cut -c1-64 | gse_json_text)" \
                "$(printf '%s' "$_gse_v" | cut -c1-128 | gse_json_text)" \
                "$(printf '%s' "${_gse_d#signed=}" | cut -c1-200 | gse_json_text)" \
                "$(printf '%s' "$_gse_rest" | cut -c1-250 | gse_json_text)"
            _gse_sep=', '
        done
    }
    printf '], "log": %s}\n' "$(tail -c "$GSE_REPORT_LOG_BYTES" "$GSE_LOG" 2> /dev/null | gse_json_text)"
}

# The server's answer to a report is only quoted in the log: no more of it
# than this is kept (the rest is not read: curl stops at the closed pipe).
GSE_REPORT_ANSWER_BYTES=4096

# gse_report_send FILE: POST FILE to $GSE_SERVER/report with the token,
# every wait bounded (GSE_REPORT_TIMEOUT seconds in all, default 5) and the
# answer kept to GSE_REPORT_ANSWER_BYTES whether the server announces its
# size or not.  0 recorded, 2 refused or not delivered (logged).
gse_report_send() {
    curl -sS -w '%{stderr}gse-code=%{http_code}\n' \
        --connect-timeout "${GSE_CONNECT_TIMEOUT:-3}" --max-time "${GSE_REPORT_TIMEOUT:-5}" \
        -H "Authorization: Bearer $_gse_token" -H 'Content-Type: application/json' \
        --data-binary "@$1" "$GSE_SERVER/report" 2> "$GSE_RUN/report.err" \
        | head -c "$GSE_REPORT_ANSWER_BYTES" > "$GSE_RUN/report.answer"
    _gse_code=$(sed -n 's/^gse-code=//p' "$GSE_RUN/report.err")
    if [ "$_gse_code" = 200 ]; then
        gse_log "report: sent ($(head -c 200 "$GSE_RUN/report.answer" | tr -d '\n'))"
        return 0
    fi
    gse_warn "report: not delivered (HTTP ${_gse_code:-000}: $({ head -c 200 "$GSE_RUN/report.answer"; grep -v '^gse-' "$GSE_RUN/report.err"; } 2> /dev/null | tr -d '\n'))"
    return 2
}
