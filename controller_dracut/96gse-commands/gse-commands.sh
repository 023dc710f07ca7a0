#!/bin/sh
# pre-mount hook 25: "Queued commands": the commands of a client config.d
# fetched this boot (a new serial), for all clients, the client's group and
# the client itself, each carried out once.  A client whose state area does
# not exist yet (a blank disk) skips them: they were queued before it was
# set up.  The commands act through the later phases:
#   reinstall            the version check installs the default version again
#   clear-deprived       versions deprived on this client may be installed again
#   wipe-and-start-new   the disk phase wipes the whole setup (GSE_WIPE)
#   reboot-after-update  after a new system is installed, reboot into it
. /lib/gse/gse-lib.sh
. /lib/gse/gse-overlay-lib.sh
. /lib/gse/gse-commands-lib.sh
gse_env_load

gse_queued_commands() {
    _serial=$(gse_result config_serial) || return 1
    _c=$GSE_RUN/config.d
    [ -d "$_c" ] || return 1
    gse_state_ok || { gse_log "commands: no state area yet, queued commands skipped"; return 1; }
    gse_identity || _gse_mid=''
    _g=$(gse_member_group "$_c" "$_gse_mid" "$GSE_HOSTNAME") || _g=''
    _files=''
    for _o in $(gse_overlays "$_c" "$_g" "$_gse_mid"); do
        _files="$_files $_o/commands"
    done
    # shellcheck disable=SC2086
    gse_commands_pending $_files > "$GSE_RUN/commands" || return 2
    _rc=1
    while read -r _id _cmd; do
        case "$_cmd" in
            reinstall) gse_env_set GSE_REINSTALL yes ;;
            clear-deprived) rm -f "$GSE_STATE_MNT/deprived" && sync ;;
            wipe-and-start-new)
                # The disk phase wipes once per token and keeps the token in
                # the new state area: this command cannot run twice.
                [ "$(gse_state_read wipe)" = "command-$_id" ] && continue
                gse_env_set GSE_WIPE "command-$_id"
                ;;
            reboot-after-update) gse_env_set GSE_REBOOT_AFTER_UPDATE yes ;;
        esac
        gse_command_record "$_id" "$_serial" || return 2
        gse_log "commands: $_id $_cmd (config.d serial $_serial)"
        _rc=0
    done < "$GSE_RUN/commands"
    return $_rc
}

( gse_queued_commands )
gse_env_load
