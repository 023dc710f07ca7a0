#!/bin/sh
# gse-overlay-lib.sh: which parts of the client config.d apply to this
# client.  The config.d (verified: it is one signed tarball) may hold, beside
# its base rootfs/ and runlevels:
#
#   members                  lines "GROUP mac=aa:bb:cc:dd:ee:ff",
#                            "GROUP machine-id=<32 hex>" or "GROUP hostname=NAME"
#                            (the first line that matches names the group)
#   groups/GROUP/rootfs/     files for the group's clients
#   groups/GROUP/runlevels   the group's runlevel lines
#   groups/GROUP/post-sync   a script run in the new system after the files
#                            are applied (chroot, GSE_POSTSYNC_TIMEOUT seconds)
#   hosts/ID/rootfs/, hosts/ID/runlevels   one client's, ID its MAC without
#                            colons (aabbccddeeff) or its machine-id
#   pinned                   the groups pinned to a version, one a line
#                            (written by part L; read by gse-pin-lib.sh)
#
# Return codes as in gse-lib.sh (0 ok, 1 no, 2 error).

# gse_macs: the MACs of the client's wired interfaces, one a line.
gse_macs() {
    for _gse_n in /sys/class/net/*; do
        [ -e "$_gse_n/device" ] && [ -r "$_gse_n/address" ] && cat "$_gse_n/address"
    done
}

# gse_safe_name NAME: 0 when NAME can name a directory of the config.d
# (letters, digits, . _ -; not starting with a dot).
gse_safe_name() {
    case "$1" in '' | .* | *[!A-Za-z0-9._-]*) return 1 ;; esac
    return 0
}

# gse_member_group CONFIGD MID HOSTNAME: print the group of this client from
# CONFIGD/members (matched by any of its MACs, its machine-id MID or
# HOSTNAME); 1 when no line matches, 2 when the matching group's name is
# unsafe.
gse_member_group() {
    [ -r "$1/members" ] || return 1
    _gse_macs=$(gse_macs)
    while read -r _gse_g _gse_who _gse_rest || [ -n "$_gse_g" ]; do
        case "$_gse_g" in '' | \#*) continue ;; esac
        _gse_hit=''
        case "$_gse_who" in
            mac=*)
                for _gse_m in $_gse_macs; do
                    [ "mac=$_gse_m" = "$_gse_who" ] && _gse_hit=1
                done
                ;;
            machine-id=*) [ -n "$2" ] && [ "machine-id=$2" = "$_gse_who" ] && _gse_hit=1 ;;
            hostname=*) [ -n "$3" ] && [ "hostname=$3" = "$_gse_who" ] && _gse_hit=1 ;;
        esac
        [ -n "$_gse_hit" ] || continue
        gse_safe_name "$_gse_g" || { gse_warn "config: unsafe group name in members"; return 2; }
        echo "$_gse_g"
        return 0
    done < "$1/members"
    return 1
}

# gse_overlays CONFIGD GROUP MID: print the directories that apply, in order
# (base, group, host by MAC, host by machine-id); later ones win.
gse_overlays() {
    echo "$1"
    [ -n "$2" ] && [ -d "$1/groups/$2" ] && echo "$1/groups/$2"
    for _gse_m in $(gse_macs); do
        _gse_id=$(echo "$_gse_m" | tr -d ':')
        [ -d "$1/hosts/$_gse_id" ] && echo "$1/hosts/$_gse_id"
    done
    [ -n "$3" ] && [ -d "$1/hosts/$3" ] && echo "$1/hosts/$3"
    return 0
}
