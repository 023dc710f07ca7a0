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
#   gse.stall_time=S      GSE_STALL_TIME: seconds of a stalled download
#   gse.transfer=auto|casync|ranges|tarball  GSE_TRANSFER
#   gse.tmpfs="D1 D2"     GSE_TMPFS_EXTRA: more tmpfs mounts
#   gse.debug             GSE_DEBUG=yes: trace the controller's scripts
. /lib/gse/gse-lib.sh
gse_env_load
type getarg > /dev/null 2>&1 || . /lib/dracut-lib.sh

# dracut's getarg costs two processes a call: ask it only about the options
# the command line mentions at all.
read -r _cl < /proc/cmdline
for _f in /etc/cmdline.d/*.conf; do
    [ -r "$_f" ] || continue
    while read -r _l || [ -n "$_l" ]; do _cl="$_cl $_l"; done < "$_f"
done
for _opt in server disk fstype wipe link_timeout dhcp_timeout connect_timeout stall_time transfer tmpfs; do
    case "$_cl" in *gse.$_opt=*) ;; *) continue ;; esac
    _v=$(getarg "gse.$_opt=") && [ -n "$_v" ] || continue
    case $_opt in
        server) _k=SERVER ;; disk) _k=DISK ;; fstype) _k=FSTYPE ;; wipe) _k=WIPE ;;
        link_timeout) _k=LINK_TIMEOUT ;; dhcp_timeout) _k=DHCP_TIMEOUT ;;
        connect_timeout) _k=CONNECT_TIMEOUT ;; tmpfs) _k=TMPFS_EXTRA ;;
        stall_time) _k=STALL_TIME ;; transfer) _k=TRANSFER ;;
    esac
    gse_env_set "GSE_$_k" "$_v"
done
for _opt in offline noupdate debug; do
    case "$_cl" in *gse.$_opt*) ;; *) continue ;; esac
    case $_opt in offline) _k=OFFLINE ;; noupdate) _k=NOUPDATE ;; debug) _k=DEBUG ;; esac
    getargbool 0 "gse.$_opt" && gse_env_set "GSE_$_k" yes
done
unset _opt _v _k _cl _f _l

# The controller decides which partition is the root: claim root=gse (and an
# empty root=) so dracut's init accepts it and leaves the mount to us.
if [ -z "$root" ] || [ "$root" = "gse" ]; then
    root=gse
    rootok=1
fi
