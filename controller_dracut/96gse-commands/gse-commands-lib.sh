#!/bin/sh
# gse-commands-lib.sh: commands queued in the client config.d.
#
# A "commands" file (the base's, the group's groups/GROUP/commands, the
# client's hosts/ID/commands; see gse-overlay-lib.sh) holds lines
# "ID COMMAND": ID of 1 to 64 letters, digits, . _ -, and COMMAND one of
# GSE_COMMANDS.  Nothing else is ever run: a line with another command is
# refused.  The state file commands.done keeps "ID SERIAL" of every command
# carried out (SERIAL: the config.d's), so a list seen again does nothing.
#
# Return codes as in gse-lib.sh (0 ok, 1 no, 2 error).

GSE_COMMANDS="reinstall clear-deprived wipe-and-start-new reboot-after-update"

# gse_command_ok ID COMMAND: 0 when the line is one of the vocabulary.
gse_command_ok() {
    case "$1" in '' | .* | *[!A-Za-z0-9._-]*) return 1 ;; esac
    [ ${#1} -le 64 ] || return 1
    for _gse_c in $GSE_COMMANDS; do
        [ "$2" = "$_gse_c" ] && return 0
    done
    return 1
}

# gse_command_done ID: 0 when ID was carried out on this client.
gse_command_done() {
    [ -r "$GSE_STATE_MNT/commands.done" ] || return 1
    while read -r _gse_did _gse_ds || [ -n "$_gse_did" ]; do
        [ "$_gse_did" = "$1" ] && return 0
    done < "$GSE_STATE_MNT/commands.done"
    return 1
}

# gse_commands_pending FILE...: print "ID COMMAND" of every valid line not
# carried out yet, in order, each ID once; bad lines are logged.
gse_commands_pending() {
    _gse_seen=' '
    for _gse_f in "$@"; do
        [ -r "$_gse_f" ] || continue
        while read -r _gse_id _gse_cmd _gse_rest || [ -n "$_gse_id" ]; do
            case "$_gse_id" in '' | \#*) continue ;; esac
            if [ -n "$_gse_rest" ] || ! gse_command_ok "$_gse_id" "$_gse_cmd"; then
                gse_warn "commands: refused line '$_gse_id $_gse_cmd${_gse_rest:+ ...}' (not one of: $GSE_COMMANDS)"
                continue
            fi
            case "$_gse_seen" in *" $_gse_id "*) continue ;; esac
            _gse_seen="$_gse_seen$_gse_id "
            gse_command_done "$_gse_id" || echo "$_gse_id $_gse_cmd"
        done < "$_gse_f"
    done
}

# gse_command_record ID SERIAL: remember ID as carried out (the newest 1000).
gse_command_record() {
    gse_state_append commands.done "$1 $2" || return 2
    _gse_cd=$GSE_STATE_MNT/commands.done
    tail -n 1000 "$_gse_cd" > "$_gse_cd.tmp" && mv "$_gse_cd.tmp" "$_gse_cd"
}
