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

# gse_build_chunk_gate OUT: compile gse-chunk-gate.c (beside this file) into
# OUT with the host's C compiler (CC, else cc) against OpenSSL's libcrypto,
# which the initramfs has for curl and openssl anyway.  0 when built; else
# the compiler's status, its messages on stderr.  (The tests and the bench
# build the gate with this function too.)
gse_build_chunk_gate() {
    "${CC:-cc}" -std=c99 -O2 -Wall -Wextra -D_FORTIFY_SOURCE=2 -fstack-protector-strong -pthread \
        -o "$1" "$(dirname "${BASH_SOURCE[0]}")/gse-chunk-gate.c" -lcrypto -Wl,-z,relro,-z,now
}

install() {
    local _bb _gate
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
    # gse-chunk-gate does the cut and the check in one process, several
    # times cheaper (bench/controller/README.md); built here for this host's
    # libraries.  Without it the shell's cut and check above remain.
    _gate=$(mktemp -d "${DRACUT_TMPDIR:-/tmp}/gse-chunk-gate.XXXXXX") || return 1
    if gse_build_chunk_gate "$_gate/gse-chunk-gate" 2> "$_gate/cc.err"; then
        inst_binary "$_gate/gse-chunk-gate" /lib/gse/gse-chunk-gate
    else
        dwarn "gse-net: gse-chunk-gate not built (${CC:-cc} failed with status $?$(head -n 3 "$_gate/cc.err" | tr '\n' ' ' | sed 's/ *$//; s/^./: &/')): the tarball's chunks are checked by the shell's dd, openssl and cat, about 1.3 s more CPU per 300 MB"
    fi
    rm -rf "$_gate"
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
