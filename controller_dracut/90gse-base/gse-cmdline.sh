#!/bin/sh
# cmdline hook 02: kernel command-line overrides of the controller's
# config.d, and the root the controller mounts itself (root=gse).
#
#   gse.server=URL        GSE_SERVER: base URL of the publication tree
#   gse.offline           GSE_OFFLINE=yes: no network at all this boot
#   gse.noupdate          GSE_NOUPDATE=yes: do not install a new version
#   gse.disk=DEV          GSE_DISK: the disk the controller manages
#   gse.fstype=ext4|btrfs GSE_FSTYPE
#   gse.wipe=TOKEN        GSE_WIPE: wipe the whole setup once per TOKEN
#   gse.link_timeout=S    GSE_LINK_TIMEOUT: seconds to wait for a carrier
#   gse.dhcp_timeout=S    GSE_DHCP_TIMEOUT
#   gse.connect_timeout=S GSE_CONNECT_TIMEOUT: seconds to reach the server
#   gse.tmpfs="D1 D2"     GSE_TMPFS_EXTRA: more tmpfs mounts
#   gse.debug             GSE_DEBUG=yes: trace the controller's scripts
. /lib/gse/gse-lib.sh
gse_env_load
type getarg > /dev/null 2>&1 || . /lib/dracut-lib.sh

for _opt in server disk fstype wipe link_timeout dhcp_timeout connect_timeout tmpfs; do
    _v=$(getarg "gse.$_opt=") && [ -n "$_v" ] || continue
    _k=$(echo "$_opt" | tr '[:lower:]' '[:upper:]')
    [ "$_k" = TMPFS ] && _k=TMPFS_EXTRA
    gse_env_set "GSE_$_k" "$_v"
done
for _opt in offline noupdate debug; do
    getargbool 0 "gse.$_opt" && gse_env_set "GSE_$(echo "$_opt" | tr '[:lower:]' '[:upper:]')" yes
done
unset _opt _v _k

# The controller decides which partition is the root: claim root=gse (and an
# empty root=) so dracut's init accepts it and leaves the mount to us.
if [ -z "$root" ] || [ "$root" = "gse" ]; then
    root=gse
    rootok=1
fi
