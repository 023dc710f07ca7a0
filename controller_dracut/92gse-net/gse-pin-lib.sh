#!/bin/sh
# gse-pin-lib.sh: groups pinned to a version (docs/groups.md).  The client
# config.d (verified: one signed tarball) lists the pinned groups in its
# "pinned" file, one name a line, written by part L (gse publish --pin).  A
# client of a pinned group takes its version pointer from
# groups/GROUP/version.txt, which carries the signed line "group: GROUP";
# the default version.txt carries none.  So a client never silently follows
# the default when its group's pointer is missing or withheld, and a group's
# pointer served to anyone else is refused.
# Needs gse-overlay-lib.sh (gse_member_group) and gse-verify-lib.sh.
# Return codes as in gse-lib.sh (0 ok, 1 no, 2 error).

# gse_pinned_group CONFIGD GROUP: 0 when CONFIGD/pinned lists GROUP; 1 when
# it does not (or GROUP is empty).
gse_pinned_group() {
    [ -n "$2" ] && [ -r "$1/pinned" ] || return 1
    while read -r _gse_p _gse_rest || [ -n "$_gse_p" ]; do
        [ "$_gse_p" = "$2" ] && return 0
    done < "$1/pinned"
    return 1
}

# gse_client_pin CONFIGD MID HOSTNAME: print this client's group when the
# config.d pins it (0); 1 when the client is in no group or its group is
# not pinned, 2 when the members file names an unsafe group for it.
gse_client_pin() {
    _gse_cg=$(gse_member_group "$1" "$2" "$3")
    case $? in
        0) ;;
        1) return 1 ;;
        *) return 2 ;;
    esac
    gse_pinned_group "$1" "$_gse_cg" || return 1
    echo "$_gse_cg"
    return 0
}

# gse_version_pointer PIN: print the tree's path of the version pointer a
# client pinned to group PIN (empty: none) reads.
gse_version_pointer() {
    if [ -n "$1" ]; then
        echo "groups/$1/version.txt"
    else
        echo version.txt
    fi
}

# gse_pointer_group BODY PIN: 0 when the verified pointer body BODY is meant
# for this client: "group: PIN" for a client pinned to group PIN, no group
# line for a client that follows the default (PIN empty).  2 otherwise, with
# GSE_VERIFY_REASON.
gse_pointer_group() {
    _gse_pg=$(gse_pointer_get "$1" group) || _gse_pg=''
    [ "$_gse_pg" = "$2" ] && return 0
    # shellcheck disable=SC2034 # read by the version check
    if [ -z "$2" ]; then
        GSE_VERIFY_REASON="the pointer of group '$_gse_pg'; this client is in no pinned group"
    elif [ -z "$_gse_pg" ]; then
        GSE_VERIFY_REASON="a pointer of no group; this client's group $2 is pinned"
    else
        GSE_VERIFY_REASON="the pointer of group '$_gse_pg'; this client is in the pinned group $2"
    fi
    return 2
}
