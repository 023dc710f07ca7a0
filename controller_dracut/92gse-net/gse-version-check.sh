#!/bin/sh
# pre-mount hook 40: version check, and on a new version "fetch new system":
# wipe the target partition, make its filesystem when configured, extract the
# image from the casync chunk store (the installed systems as seeds, every
# chunk checked against the signed index; without a seed the chunks are
# staged in parallel on the target first) or stream the tarball in while
# verifying it, and only then record it as complete.
# Refused, each with its reason logged: a pointer that does not verify
# (unknown key, bad signature, clock, expired), a serial lower than the
# highest verified before (replay), an image that does not fit the partition
# (checked before anything is wiped), bytes that do not match the signed
# pointer, a stalled download, a pointer of another group (or of none, for a
# client of a pinned group; gse-pin-lib.sh).  Skipped: a version this client
# deprived, an image waiting after failed attempts (back-off).
#
# A client whose group the client config.d lists as pinned reads
# groups/GROUP/version.txt instead of version.txt; every check below applies
# to it unchanged.  When that pointer is missing, the client refuses and
# boots its installed system: it never falls back to the default.
#
# The target is SYSFS itself unless SYSFS holds a system that completed a
# healthy life cycle: then the image goes to the other system partition,
# relabelled DEPRIVED while it is written (BACKUPFS only ever holds a
# verified system), and the labels swap only after it verified (the old
# system becomes BACKUPFS), so a failed download never touches the only good
# system.
. /lib/gse/gse-lib.sh
. /lib/gse/gse-verify-lib.sh
. /lib/gse/gse-disk-lib.sh
. /lib/gse/gse-net-lib.sh
. /lib/gse/gse-chunks-lib.sh
. /lib/gse/gse-ranges-lib.sh
. /lib/gse/gse-health-lib.sh
. /lib/gse/gse-overlay-lib.sh
. /lib/gse/gse-pin-lib.sh
gse_env_load

# gse_install_failed TARGET VERSION SHA: after a failed attempt: TARGET holds
# no complete system, the received digest is recorded, the attempt backs off.
gse_install_failed() {
    gse_unmark "$1"
    _verdict=$(cat "$GSE_RUN/stream/verdict" 2> /dev/null) || _verdict=unknown
    # The newest GSE_REFUSED_LINES refusals are kept (one a failed attempt).
    gse_state_append refused "$(date -u +%Y-%m-%dT%H:%M:%SZ) $2 signed=$3 $_verdict: $GSE_VERIFY_REASON" \
        "${GSE_REFUSED_LINES:-100}"
    _wait=$(gse_backoff_fail "$3")
    gse_warn "version $2 not installed ($_verdict); $1 holds no complete system; next attempt after $_wait boot(s)"
    return 2
}

gse_version_check() {
    # The client config.d (fetched or cached, verified either way) says
    # whether this client's group is pinned.
    gse_identity || _gse_mid=''
    _pin=$(gse_client_pin "$GSE_RUN/config.d" "$_gse_mid" "$GSE_HOSTNAME") || _pin=''
    _name=$(gse_version_pointer "$_pin")
    if [ -n "$_pin" ]; then
        gse_log "version: group $_pin is pinned: $_name"
        gse_fetch_pointer "$_name"
    fi
    # version.txt was downloaded by the network check, which always leaves
    # its status ("RC HTTP-CODE", then "stall CURL-ERROR" when a time bound
    # cut it, "large REASON" when it was larger than a pointer may be) when
    # it answers 0, the only answer this step runs on.
    _st=$(gse_result version_fetch) || { gse_warn "version check: the network check left no version.txt"; return 2; }
    _code=${_st#* } _st=${_st%% *}
    case $_code in
        [0-9][0-9][0-9]" stall "*)
            gse_warn "version check failed: $_name: stalled or timed out (HTTP ${_code%% *}): ${_code#* stall }"
            return 2
            ;;
        [0-9][0-9][0-9]" large "*)
            gse_warn "version refused: $_name: ${_code#* large }"
            return 2
            ;;
    esac
    case $_st in
        1)
            if [ -n "$_pin" ]; then
                gse_warn "version refused: $_name is not published, yet the config.d pins group $_pin: the default is not taken instead"
                return 2
            fi
            gse_log "version: nothing published"
            return 1
            ;;
        2) gse_warn "version check failed: $_name: HTTP $_code from the server"; return 2 ;;
    esac
    gse_verify_pointer "$GSE_RUN/version.txt" "$GSE_RUN/version.body" \
        || { gse_warn "version refused: $_name: $GSE_VERIFY_REASON"; return 2; }
    # Before anything of it counts (its serial included): meant for this client?
    gse_pointer_group "$GSE_RUN/version.body" "$_pin" \
        || { gse_warn "version refused: $_name: $GSE_VERIFY_REASON"; return 2; }
    _b=$GSE_RUN/version.body
    _serial=$(gse_pointer_get "$_b" serial)
    _version=$(gse_pointer_get "$_b" version)
    _path=$(gse_pointer_get "$_b" path)
    _sha=$(gse_pointer_get "$_b" sha512)
    _size=$(gse_pointer_get "$_b" size)
    _format=$(gse_pointer_get "$_b" format)
    gse_decimal "$_serial" || { gse_warn "version refused: bad serial"; return 2; }
    case "$_format" in 1 | 2) ;; *) gse_warn "version refused: unknown pointer format '$_format'"; return 2 ;; esac
    [ -n "$_version" ] && [ -n "$_path" ] && [ ${#_sha} -eq 128 ] && [ -n "$_size" ] \
        || { gse_warn "version refused: incomplete pointer"; return 2; }

    _sys=$(gse_find_label "$GSE_LABEL_SYSFS")
    _cur=$(gse_installed_get "$_sys" version)
    _cur_serial=$(gse_installed_get "$_sys" serial)
    # The highest serial verified on this client, whatever was installed.
    _accepted=$(gse_state_read serial) || _accepted=0
    [ -n "$_cur_serial" ] && gse_serial_lt "$_accepted" "$_cur_serial" && _accepted=$_cur_serial
    if [ "$_version" = "$_cur" ]; then
        gse_serial_seen "$_serial"
        if ! gse_yes "$GSE_REINSTALL"; then
            gse_log "version: $_version (serial $_serial) is installed, no new version"
            return 1
        fi
        gse_log "version: $_version (serial $_serial) is installed, installing it again (queued command reinstall)"
    fi
    if gse_serial_lt "$_serial" "$_accepted"; then
        gse_warn "version refused: serial $_serial ($_version) is older than the accepted $_accepted (replayed pointer)"
        return 2
    fi
    # Verified and not older: no pointer with a lower serial is accepted
    # again, whether or not this one gets installed.
    gse_serial_seen "$_serial"
    if gse_listed "$GSE_STATE_MNT/deprived" "$_version"; then
        gse_log "version: $_version was deprived on this client, not fetched again"
        return 1
    fi
    if gse_yes "$GSE_NOUPDATE"; then
        gse_log "version: $_version available, updates disabled"
        return 1
    fi
    if _w=$(gse_backoff_wait "$_sha"); then :; else
        gse_log "version: the image of $_version failed ${_w% *} time(s), next attempt after ${_w#* } more boot(s)"
        return 1
    fi
    gse_log "version: new version $_version (serial $_serial), installed ${_cur:-none}"

    # Keep a complete SYSFS that was not judged unhealthy: the image goes to
    # the other system partition.
    _target=$_sys
    _old_label=$GSE_LABEL_DEPRIVED
    if [ -n "$_cur" ]; then
        gse_judge "$_cur" > /dev/null
        [ $? -ne 2 ] && _target=$(gse_other_part "$_sys")
        gse_proven "$_cur" && _old_label=$GSE_LABEL_BACKUPFS
    fi
    # Does it fit?  Asked of the signed size before anything is wiped.
    _root_bytes=$(gse_pointer_get "$_b" root_bytes)
    if [ -n "$_root_bytes" ]; then
        gse_fits "$_root_bytes" "$_target"
        case $? in
            1)
                gse_warn "version refused: $_version does not fit: it needs $_root_bytes bytes, $_target has $(gse_part_bytes "$_target") (at most ${GSE_FIT_PERCENT:-95}% usable); nothing was changed"
                return 2
                ;;
            2) gse_warn "version refused: bad root_bytes '$_root_bytes'"; return 2 ;;
        esac
    fi

    # SHA512SUMS of the image directory: signed, and naming the same digest.
    _dir=${_path%/*}
    gse_fetch "$_dir/SHA512SUMS" "$GSE_RUN/SHA512SUMS" && gse_fetch "$_dir/SHA512SUMS.asc" "$GSE_RUN/SHA512SUMS.asc" \
        || { gse_warn "image refused: SHA512SUMS missing"; return 2; }
    gse_verify_detached "$GSE_RUN/SHA512SUMS.asc" "$GSE_RUN/SHA512SUMS" \
        || { gse_warn "image refused: SHA512SUMS signature: $GSE_VERIFY_REASON"; return 2; }
    grep -Eq "^$_sha [ *]${_path##*/}\$" "$GSE_RUN/SHA512SUMS" \
        || { gse_warn "image refused: SHA512SUMS does not list the pointer's digest"; return 2; }

    # The chunked transfer when the pointer names an index (format 2) and
    # GSE_TRANSFER allows it; else the tarball in verified chunks when the
    # pointer names the tarball's index; else the verified tarball stream.
    # The indexes are verified before anything is wiped.  auto (the
    # default) takes casync only when an installed system can seed the
    # chunks (from nothing, casync's one-chunk-at-a-time extract is slow),
    # and for a target nothing seeds the tarball's chunks, each checked
    # before tar reads it.
    _index=$(gse_pointer_get "$_b" index)
    _tindex=$(gse_pointer_get "$_b" tarball_index)
    _transfer=tarball
    case "${GSE_TRANSFER:-auto}" in
        auto | casync | ranges | tarball) ;;
        *) gse_warn "unknown GSE_TRANSFER '${GSE_TRANSFER}': auto is used"; GSE_TRANSFER=auto ;;
    esac
    case "${GSE_TRANSFER:-auto}" in
        auto | casync)
            if [ -z "$_index" ]; then
                :
            elif command -v casync > /dev/null 2>&1; then
                _transfer=casync
            else
                gse_warn "version: this controller has no casync: the chunks of the root cannot be used"
            fi
            ;;
    esac
    if [ $_transfer = casync ]; then
        gse_pointer_index "$_b" index "$GSE_RUN/image.caidx" \
            || { gse_warn "image refused: $GSE_VERIFY_REASON"; return 2; }
        # shellcheck disable=SC2034 # read by gse_casync_extract (gse-net-lib.sh)
        GSE_STORE_PATH=$(gse_pointer_get "$_b" store) || GSE_STORE_PATH=store
        # The installed complete systems that stay: the seeds.
        _seeds="" _n=0
        for _p in $(gse_system_parts); do
            [ "$_p" != "$_target" ] && gse_installed "$_p" > /dev/null || continue
            _n=$((_n + 1))
            gse_mount_root "$_p" "$GSE_RUN/mnt.seed$_n" ro && _seeds="$_seeds $GSE_RUN/mnt.seed$_n"
        done
        if [ -z "$_seeds" ] && [ "${GSE_TRANSFER:-auto}" = auto ]; then
            gse_log "version: no installed system to seed the chunks from: the chunks of the root are not used"
            _transfer=tarball
        fi
    fi
    # The tarball in verified chunks (gse-ranges-lib.sh): its signed index
    # checked and read, and the chunks it holds at once fit in RAM; else the
    # verified stream.
    if [ $_transfer = tarball ] && [ -n "$_tindex" ]; then
        case "${GSE_TRANSFER:-auto}" in auto | ranges) _transfer=ranges ;; esac
    fi
    if [ $_transfer = ranges ]; then
        gse_pointer_index "$_b" tarball_index "$GSE_RUN/tarball.caibx" \
            || { gse_warn "image refused: tarball index: $GSE_VERIFY_REASON"; return 2; }
        # (Not in a command substitution: the reason of a refusal is set
        # in this shell.)
        gse_caibx_ranges "$GSE_RUN/tarball.caibx" "$_size" "$GSE_RUN/ranges.list" > "$GSE_RUN/ranges.sum" \
            || { gse_warn "image refused: $GSE_VERIFY_REASON"; return 2; }
        read -r _rs_n _rs_big < "$GSE_RUN/ranges.sum"
        gse_ranges_fit "$_rs_big" || _transfer=tarball
    fi
    if [ $_transfer = tarball ]; then
        gse_log "version: the tarball is streamed, its digest checked at the end (the target stays unmarked until then)"
    fi
    # No seed: every chunk travels.  They are fetched in parallel into a
    # staging store (gse-chunks-lib.sh): in RAM when it fits the memory
    # available, else on the target when it fits beside the image, else
    # casync fetches them one at a time.
    _stage="" _ram=""
    if [ $_transfer = casync ] && [ -z "$_seeds" ]; then
        gse_caidx_chunks "$GSE_RUN/image.caidx" "$GSE_RUN/chunks.list" > "$GSE_RUN/chunks.sum" \
            || { gse_warn "image refused: $GSE_VERIFY_REASON"; return 2; }
        read -r _cs < "$GSE_RUN/chunks.sum"
        # shellcheck disable=SC2086 # "COUNT BYTES"
        _sb=$(gse_staging_bytes $_cs)
        if gse_chunks_ram_fits "$_sb"; then
            _ram=$GSE_RUN/chunks
        elif gse_fits $((${_root_bytes:-0} + _sb)) "$_target"; then
            _stage=$GSE_STAGING_NAME
        else
            gse_log "version: no room for a staging store of ${_cs% *} chunks in RAM or beside the image: casync fetches them one at a time"
        fi
    fi

    gse_log "installing $_version on $_target ($_transfer)"
    # Not BACKUPFS while unverified bytes go in.
    if [ "$_target" != "$_sys" ] && [ "$(gse_label_of "$_target")" != "$GSE_LABEL_DEPRIVED" ]; then
        gse_set_label "$_target" "$GSE_LABEL_DEPRIVED" || return 2
    fi
    gse_wipe_system "$_target" || { gse_warn "cannot wipe $_target"; return 2; }
    _m=$GSE_RUN/mnt.target
    gse_mount_top "$_target" "$_m" || return 2
    _root=$(gse_sysroot "$_m")
    _rc=0
    if [ $_transfer = casync ]; then
        if [ -n "$_ram" ] && ! gse_chunks_ram "$_ram" "$_sb"; then
            gse_warn "cannot mount a staging store in RAM: casync fetches the chunks one at a time"
            _ram=""
        fi
        if [ -n "$_ram$_stage" ]; then
            GSE_CHUNK_STAGING=${_ram:-$_m/$_stage}
            gse_chunks_stage "$GSE_RUN/chunks.list" "$GSE_CHUNK_STAGING"
            [ $? -eq 2 ] && _rc=2
            [ -d "$GSE_CHUNK_STAGING" ] || GSE_CHUNK_STAGING=
        fi
        # shellcheck disable=SC2086
        [ $_rc -eq 0 ] && { gse_casync_extract "$GSE_RUN/image.caidx" "$_root" $_seeds || _rc=2; }
        # The staging store is never part of the system.
        [ -n "$_stage" ] && { gse_chunks_unstage "${_m:?}/$_stage" "$_root" || _rc=2; }
        [ -n "$_ram" ] && { gse_chunks_ram_release "$_ram" || _rc=2; }
        GSE_CHUNK_STAGING=
        for _s in $_seeds; do umount "$_s"; done
    elif [ $_transfer = ranges ]; then
        gse_ranges_image "$_path" "$_size" "$GSE_RUN/ranges.list" "$_root" "$(gse_pointer_get "$_b" compression)" "$_rs_big" || _rc=2
    else
        gse_stream_image "$_path" "$_root" "$_sha" "$_size" "$(gse_pointer_get "$_b" compression)" || _rc=2
    fi
    if [ $_rc -eq 0 ] && [ -e "$_root/$GSE_MARK" ]; then
        # Never read, but no image names the controller's records.
        gse_warn "image entry /$GSE_MARK stripped (a name the controller keeps for itself)"
        rm -rf "${_root:?}/$GSE_MARK"
    fi
    sync
    umount "$_m"
    if [ $_rc -ne 0 ]; then
        gse_install_failed "$_target" "$_version" "$_sha"
        return 2
    fi
    # Verified: only now the record says "complete system".
    gse_mark "$_target" "$_version" "$_serial" "$_sha" || return 2
    gse_backoff_clear "$_sha"
    if [ "$_target" != "$_sys" ]; then
        # BACKUPFS only ever holds a system that completed a healthy cycle.
        gse_set_label "$_sys" "$_old_label"
        gse_set_label "$_target" "$GSE_LABEL_SYSFS"
    fi
    # The flag follows SYSFS (first install included).
    gse_bootflag "$_target"
    gse_cycle_forget
    gse_log "installed $_version (serial $_serial) on $_target"
    return 0
}

if [ "$(gse_result network)" = 0 ]; then
    ( gse_version_check )
    gse_result version $?
fi
