#!/bin/bash
# gse-net: network check, client config.d fetch, version check and the
# verified image download.  Brings the network up itself (busybox udhcpc
# with short timeouts) so that no network never means a slow boot.

check() {
    require_binaries curl gpgv sha512sum zstd tar ip || return 1
    [ -x /bin/busybox ] || [ -x /usr/bin/busybox ] || return 1
    return 255
}

depends() {
    # gse-system installs gse-overlay-lib.sh (the client's group).
    echo gse-base gse-disk gse-health gse-system
}

installkernel() {
    hostonly='' instmods af_packet virtio_net e1000 e1000e
}

install() {
    local _bb
    _bb=$(command -v busybox)
    inst_simple "$_bb" /lib/gse/busybox
    inst_simple "$moddir/gse-net-lib.sh" /lib/gse/gse-net-lib.sh
    inst_simple "$moddir/gse-chunks-lib.sh" /lib/gse/gse-chunks-lib.sh
    inst_simple "$moddir/gse-ranges-lib.sh" /lib/gse/gse-ranges-lib.sh
    inst_simple "$moddir/gse-pin-lib.sh" /lib/gse/gse-pin-lib.sh
    inst_simple "$moddir/gse-udhcpc.sh" /lib/gse/gse-udhcpc.sh
    chmod 0755 "$initdir/lib/gse/gse-udhcpc.sh"
    # head: every download's byte bound (gse_capped).
    inst_multiple curl gpgv sha512sum wc tee mkfifo zstd tar gzip ip sleep head
    # The tarball in verified chunks (gse-ranges-lib.sh): the index's table
    # (od), each chunk cut from the stream (dd: iflag=fullblock,count_bytes),
    # its SHA-256 (openssl below when present, else sha256sum).
    inst_multiple od dd sha256sum cut
    inst_multiple -o xz
    # The chunked transfer: casync and its protocol helpers (casync runs
    # them by path for http:// and https:// stores).
    if inst_multiple -o casync; then
        inst_multiple -o /usr/lib/casync/protocols/casync-http /usr/lib/casync/protocols/casync-https
    fi
    # A faster SHA-512 for the image stream and SHA-256 for the tarball's
    # chunks than coreutils' (sha512sum, sha256sum are the fallback).
    inst_multiple -o openssl
    # TLS for an https:// server.
    inst_multiple -o /etc/ssl/certs/ca-certificates.crt
    inst_hook pre-mount 10 "$moddir/gse-network-check.sh"
    inst_hook pre-mount 20 "$moddir/gse-fetch-config.sh"
    inst_hook pre-mount 40 "$moddir/gse-version-check.sh"
}
