#!/bin/sh
# gse-lib.sh: the controller's common library (logging, the exported
# configuration, the state area).  Sourced by every gse hook.
#
# Return codes, for every gse_* function of the controller:
#   0  success / yes
#   1  a negative answer that is not an error (no network, no new version,
#      nothing to do, not found)
#   2  an error: a download failed, a verification failed, a tool failed
#
# Hooks are sourced by dracut's init: they never call `exit` and never
# `set -e`; the steps that can fail run in subshells and leave their results
# in files under $GSE_RUN, which is how one step talks to the next.

GSE_RUN=/run/gse
GSE_ENV=$GSE_RUN/env
GSE_STATE_MNT=$GSE_RUN/state
GSE_LOG=$GSE_RUN/controller.log

# Every hook runs inside the initramfs on every boot, and under slow CPUs a
# process costs far more than a shell builtin: the functions used on the
# common path (no new version) read and write files with builtins only
# (read, printf, case); external tools run where real work is done.

# Log a line on the console (what the tests and a person at the machine see)
# and in the controller log (kept in the state area after boot), the log
# line prefixed with the seconds since the kernel started.
gse_log() {
    [ -d "$GSE_RUN" ] || mkdir -p "$GSE_RUN"
    read -r _gse_up _gse_idle < /proc/uptime 2> /dev/null || _gse_up='?'
    printf '[%8s] gse: %s\n' "$_gse_up" "$*" >> "$GSE_LOG"
    echo "gse: $*" > /dev/console 2> /dev/null || echo "gse: $*" >&2
}

gse_warn() {
    gse_log "WARNING: $*"
}

# gse_quote VALUE: set _gse_q to VALUE single-quoted for the env file
# ('it'\''s').  Only a value holding a quote costs a process.
gse_quote() {
    case "$1" in
        *\'*) _gse_q="'$(printf '%s' "$1" | sed "s/'/'\\\\''/g")'" ;;
        *) _gse_q="'$1'" ;;
    esac
}

# gse_env_set KEY VALUE: export KEY in this shell and in every later hook.
gse_env_set() {
    [ -d "$GSE_RUN" ] || mkdir -p "$GSE_RUN"
    gse_quote "$2"
    echo "export $1=$_gse_q" >> "$GSE_ENV"
    eval "export $1=$_gse_q"
}

# Reload what earlier hooks exported (later lines win).
gse_env_load() {
    # shellcheck disable=SC1090
    [ -r "$GSE_ENV" ] && . "$GSE_ENV"
    [ -n "$GSE_DEBUG" ] && [ "$GSE_DEBUG" != "no" ] && set -x
    return 0
}

# gse_mounted DIR: 0 when something is mounted on DIR.
gse_mounted() {
    while read -r _gse_src _gse_mnt _gse_rest; do
        [ "$_gse_mnt" = "$1" ] && return 0
    done < /proc/mounts
    return 1
}

# gse_listed FILE LINE: 0 when FILE has a line that is exactly LINE (1 when
# not, or when FILE does not exist).
gse_listed() {
    [ -r "$1" ] || return 1
    while IFS= read -r _gse_l || [ -n "$_gse_l" ]; do
        [ "$_gse_l" = "$2" ] && return 0
    done < "$1"
    return 1
}

# gse_conf_parse FILE: export the GSE_* assignments of a config.d file.
# Only `GSE_NAME=value` lines are read (optionally quoted with ' or "); the
# file is never executed, so a config.d from the server cannot run code in
# the initramfs.  Returns 1 when FILE is not readable.
gse_conf_parse() {
    [ -r "$1" ] || return 1
    while IFS= read -r _line || [ -n "$_line" ]; do
        case "$_line" in
            GSE_*=*) ;;
            *) continue ;;
        esac
        _key=${_line%%=*}
        case "$_key" in
            *[!A-Z0-9_]*) continue ;;
        esac
        _val=${_line#*=}
        case "$_val" in
            \"*\") _val=${_val#\"}; _val=${_val%\"} ;;
            \'*\') _val=${_val#\'}; _val=${_val%\'} ;;
        esac
        gse_env_set "$_key" "$_val"
    done < "$1"
    return 0
}

# gse_yes VALUE: 0 when VALUE means yes.
gse_yes() {
    case "$1" in
        1 | y | yes | Y | YES | true | on) return 0 ;;
    esac
    return 1
}

# ---- serials: decimal strings of any length --------------------------------
# Serials are compared as strings (length, then digits), never with shell
# arithmetic: $((...)) wraps above 2^63 - 1 and a wrapped serial would pass
# the replay check.

# gse_decimal VALUE: set _gse_dec to VALUE without its leading zeros ("0"
# for zeros only); 2 when VALUE is not a non-empty string of digits.
gse_decimal() {
    case "$1" in '' | *[!0-9]*) return 2 ;; esac
    _gse_dec=${1#"${1%%[!0]*}"}
    [ -n "$_gse_dec" ] || _gse_dec=0
    return 0
}

# gse_serial_lt A B: 0 when serial A is lower than serial B, 1 when not,
# 2 when either is not a decimal string.
gse_serial_lt() {
    gse_decimal "$1" || return 2
    _gse_sa=$_gse_dec
    gse_decimal "$2" || return 2
    _gse_sb=$_gse_dec
    if [ ${#_gse_sa} -ne ${#_gse_sb} ]; then
        [ ${#_gse_sa} -lt ${#_gse_sb} ] && return 0
        return 1
    fi
    [ "$_gse_sa" = "$_gse_sb" ] && return 1
    # Same length, digits only: the first digit that differs decides
    # (builtins only; POSIX test has no string "<").
    while [ -n "$_gse_sa" ]; do
        _gse_ca=${_gse_sa%"${_gse_sa#?}"} _gse_cb=${_gse_sb%"${_gse_sb#?}"}
        if [ "$_gse_ca" != "$_gse_cb" ]; then
            [ "$_gse_ca" -lt "$_gse_cb" ] && return 0
            return 1
        fi
        _gse_sa=${_gse_sa#?} _gse_sb=${_gse_sb#?}
    done
    return 1
}

# ---- the state area: a small filesystem labelled $GSE_LABEL_STATE --------
# Holds what must survive a stateless boot: the highest serial verified
# (rollback protection), the records of the complete systems (installed/),
# deprived versions, refusals and their back-off, the cached client config.d
# with its signatures, the health markers of the last life cycle and the
# controller log of the last boots.

gse_state_ok() {
    gse_mounted "$GSE_STATE_MNT"
}

# gse_state_read NAME: print the content of state file NAME; 1 if absent.
gse_state_read() {
    gse_state_ok || return 1
    [ -r "$GSE_STATE_MNT/$1" ] || return 1
    cat "$GSE_STATE_MNT/$1"
}

# gse_state_write NAME VALUE: replace state file NAME atomically.
gse_state_write() {
    gse_state_ok || return 2
    _gse_f=$GSE_STATE_MNT/$1
    [ -d "${_gse_f%/*}" ] || mkdir -p "${_gse_f%/*}"
    printf '%s\n' "$2" > "$GSE_STATE_MNT/$1.tmp" \
        && mv "$GSE_STATE_MNT/$1.tmp" "$GSE_STATE_MNT/$1" \
        && sync
}

# gse_state_append NAME LINE [KEEP]: append LINE to state file NAME.  With
# KEEP (a positive number of lines, 9 digits at most) only the newest KEEP
# lines stay, so a record written at every failed boot cannot fill the state
# area; any other KEEP (a bad setting) keeps every line rather than lose
# this one.  2 when the state area is not mounted or the write failed.
gse_state_append() {
    gse_state_ok || return 2
    _gse_f=$GSE_STATE_MNT/$1
    [ -d "${_gse_f%/*}" ] || mkdir -p "${_gse_f%/*}"
    if ! gse_decimal "$3" || [ "$_gse_dec" = 0 ] || [ ${#_gse_dec} -gt 9 ]; then
        printf '%s\n' "$2" >> "$_gse_f" && sync
        return
    fi
    # Rewritten whole (tmp + rename): a power cut leaves the old file or
    # the new one, never a cut one.
    { cat "$_gse_f" 2> /dev/null; printf '%s\n' "$2"; } | tail -n "$_gse_dec" > "$_gse_f.tmp" \
        && mv "$_gse_f.tmp" "$_gse_f" && sync
}

# gse_serial_seen SERIAL: remember SERIAL as the highest verified serial
# when it is higher than the one remembered (state file "serial").
gse_serial_seen() {
    _gse_have=$(gse_state_read serial) || _gse_have=0
    gse_serial_lt "$_gse_have" "$1" || return 1
    gse_state_write serial "$1"
}

# gse_log_save: append this boot's controller log to the state area's
# log/controller.log and keep its last GSE_LOG_LINES lines (the history of
# the last boots, bounded).  Once a boot: 1 when saved already.
gse_log_save() {
    gse_state_ok || return 2
    [ -e "$GSE_RUN/log.saved" ] && return 1
    : > "$GSE_RUN/log.saved"
    _gse_lf=$GSE_STATE_MNT/log/controller.log
    [ -d "${_gse_lf%/*}" ] || mkdir -p "${_gse_lf%/*}"
    read -r _gse_bid < /proc/sys/kernel/random/boot_id 2> /dev/null || _gse_bid='?'
    {
        printf '==== boot %s (%s)\n' "$_gse_bid" "$(date -u +%Y-%m-%dT%H:%M:%SZ 2> /dev/null)"
        cat "$GSE_LOG" 2> /dev/null
    } >> "$_gse_lf"
    tail -n "${GSE_LOG_LINES:-5000}" "$_gse_lf" > "$_gse_lf.tmp" && mv "$_gse_lf.tmp" "$_gse_lf"
    sync
    return 0
}

# gse_result NAME [VALUE]: record (with VALUE) or print a step's result
# (one line); printing returns 1 when the step left no result.
gse_result() {
    [ -d "$GSE_RUN/result" ] || mkdir -p "$GSE_RUN/result"
    if [ $# -ge 2 ]; then
        printf '%s\n' "$2" > "$GSE_RUN/result/$1"
    else
        [ -r "$GSE_RUN/result/$1" ] || return 1
        read -r _gse_r < "$GSE_RUN/result/$1"
        printf '%s\n' "$_gse_r"
    fi
}

# gse_random_hex BYTES: print BYTES random bytes as lower-case hex.
gse_random_hex() {
    od -An -N "$1" -tx1 /dev/urandom | tr -d ' \n'
}

# gse_identity: load the client's machine-id and report token into
# _gse_mid and _gse_token, making them at the first boot (state file
# "identity": the machine-id names the client in every report, the token
# proves a report comes from it; the booted system reads the state area
# read-only).  2 when there is no state area or it cannot be written.
gse_identity() {
    _gse_mid='' _gse_token=''
    if _gse_id=$(gse_state_read identity); then
        for _gse_l in $_gse_id; do
            case "$_gse_l" in
                machine_id=*) _gse_mid=${_gse_l#machine_id=} ;;
                token=*) _gse_token=${_gse_l#token=} ;;
            esac
        done
    fi
    case "$_gse_mid" in *[!0-9a-f]* | '') _gse_mid='' ;; esac
    [ ${#_gse_mid} -eq 32 ] || _gse_mid=''
    [ ${#_gse_token} -ge 32 ] || _gse_token=''
    [ -n "$_gse_mid" ] && [ -n "$_gse_token" ] && return 0
    gse_state_ok || return 2
    _gse_mid=$(gse_random_hex 16) && _gse_token=$(gse_random_hex 32) || return 2
    [ ${#_gse_mid} -eq 32 ] && [ ${#_gse_token} -eq 64 ] || return 2
    # Readable by root only: whoever reads the token can report as this client.
    (umask 077 && gse_state_write identity "$(printf 'machine_id=%s\ntoken=%s' "$_gse_mid" "$_gse_token")") \
        || return 2
    chmod 600 "$GSE_STATE_MNT/identity" 2> /dev/null
    gse_log "report: new client identity $_gse_mid"
    return 0
}
