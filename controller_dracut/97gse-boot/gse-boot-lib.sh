#!/bin/sh
# gse-boot-lib.sh: the boot partition (GSE_BOOT_PART), where a boot loader
# finds the kernel and initramfs pair of the installed system and the
# previous pair as its fallback.  Return codes as in gse-lib.sh (0 ok,
# 1 no / nothing to do, 2 error, with GSE_BOOT_REASON saying which).
#
# Layout, from the partition's root:
#   gse/<version>/vmlinuz, gse/<version>/initramfs
#   gse/<version>/pair       "<kernel SHA512> <initramfs SHA512>" of the
#                            signed pointer: written last, read to decide
#                            whether a pair is installed (never re-hashed)
#   loader/entries/gse-<version>[+LEFT[-DONE]].conf
#                            Boot Loader Specification type #1 entries
#                            (systemd-boot; GRUB with blscfg); +LEFT-DONE is
#                            the automatic boot assessment's counter
#   gse/grub.cfg             the same entries as GRUB menu entries
#
# Power-cut order: files go under temporary names (a directory gse/.new-*,
# an entry *.conf.new that no boot loader reads), are synced, then renamed
# and synced again; an entry is written only after its pair is complete,
# and a pair is removed only after its entry.  So every entry, at every
# instant, names a complete pair that verified against a signed pointer.
# The filesystem itself (vfat, ext2) has no journal: a cut in the middle
# of a rename is fsck's; the order above is what the controller can give.

GSE_BOOT_MNT=$GSE_RUN/boot
GSE_BOOT_ENTRIES=loader/entries

# gse_boot_name_ok VERSION: 0 when VERSION can name a directory and an
# entry (letters, digits, ".", "_", "-"; not starting with "." or "-");
# "+" would read as a boot counter, "/" as a path.
gse_boot_name_ok() {
    case "$1" in
        '' | .* | -* | *[!A-Za-z0-9._-]*) return 1 ;;
    esac
    return 0
}

# gse_boot_setting NAME VALUE DEFAULT: print VALUE when it is a whole number
# of at most 4 digits, else DEFAULT with a warning naming NAME.  A config.d
# value of the wrong type ("5s") must neither stop the controller's shell in
# an arithmetic error nor lift a bound.  Always 0.
gse_boot_setting() {
    # shellcheck disable=SC2154 # _gse_dec is set by gse_decimal (gse-lib.sh)
    if gse_decimal "$2" && [ ${#_gse_dec} -le 4 ]; then
        echo "$_gse_dec"
    else
        gse_warn "boot partition: $1='$2' is not a whole number up to 9999: $3 is used"
        echo "$3"
    fi
}

# gse_boot_dev SPEC SECONDS: print the device SPEC names (/dev/..., LABEL=,
# PARTLABEL=, UUID=, PARTUUID=), waiting for it at most SECONDS (a whole
# number: udev may still be naming devices); 1 when none appeared, 2 when
# SPEC is none of those forms.
gse_boot_dev() {
    _gse_i=0
    while :; do
        case "$1" in
            /dev/*) [ -b "$1" ] && { echo "$1"; return 0; } ;;
            LABEL=?* | PARTLABEL=?* | UUID=?* | PARTUUID=?*)
                _gse_d=$(blkid -c /dev/null -l -o device -t "$1" 2> /dev/null)
                [ -n "$_gse_d" ] && { echo "$_gse_d"; return 0; }
                ;;
            *) return 2 ;;
        esac
        [ $_gse_i -ge $(($2 * 10)) ] && return 1
        sleep 0.1
        _gse_i=$((_gse_i + 1))
    done
}

# gse_boot_split NAME: from an entry file name (gse-V+LEFT-DONE.conf) set
# _gse_bv (the version) and _gse_bleft (tries left; empty: no counter).
gse_boot_split() {
    _gse_n=${1##*/}
    _gse_n=${_gse_n#gse-}
    _gse_n=${_gse_n%.conf}
    case "$_gse_n" in
        *+*) _gse_bv=${_gse_n%+*} _gse_bleft=${_gse_n##*+} _gse_bleft=${_gse_bleft%%-*} ;;
        *) _gse_bv=$_gse_n _gse_bleft= ;;
    esac
}

# gse_boot_key FILE KEY: print the value of the "KEY value" line of a BLS
# entry FILE; 1 when it has none.
gse_boot_key() {
    while IFS= read -r _gse_l || [ -n "$_gse_l" ]; do
        case "$_gse_l" in
            "$2 "*) _gse_l=${_gse_l#"$2 "}; printf '%s\n' "${_gse_l#"${_gse_l%%[! ]*}"}"; return 0 ;;
        esac
    done < "$1"
    return 1
}

# gse_boot_entries DIR: print "VERSION SERIAL LEFT FILE" for every gse entry
# on the boot partition mounted on DIR (LEFT "-": no counter).
gse_boot_entries() {
    for _gse_f in "$1/$GSE_BOOT_ENTRIES"/gse-*.conf; do
        [ -f "$_gse_f" ] || continue
        gse_boot_split "$_gse_f"
        _gse_s=$(gse_boot_key "$_gse_f" version) || _gse_s=0
        printf '%s %s %s %s\n' "$_gse_bv" "$_gse_s" "${_gse_bleft:--}" "$_gse_f"
    done
}

# gse_boot_entry DIR VERSION: print VERSION's entry file; 1 when none.
gse_boot_entry() {
    for _gse_f in "$1/$GSE_BOOT_ENTRIES/gse-$2.conf" "$1/$GSE_BOOT_ENTRIES/gse-$2+"*.conf; do
        [ -f "$_gse_f" ] && { echo "$_gse_f"; return 0; }
    done
    return 1
}

# gse_boot_complete DIR VERSION: 0 when VERSION has an entry and a
# complete pair (its record is written last); 1 when not.
gse_boot_complete() {
    gse_boot_entry "$1" "$2" > /dev/null || return 1
    [ -f "$1/gse/$2/vmlinuz" ] && [ -f "$1/gse/$2/initramfs" ] && [ -f "$1/gse/$2/pair" ]
}

# gse_boot_has DIR VERSION KSHA ISHA: 0 when VERSION's pair with these
# digests is complete and has an entry; 1 when not.
gse_boot_has() {
    gse_boot_complete "$1" "$2" || return 1
    read -r _gse_k _gse_i < "$1/gse/$2/pair" || return 1
    [ "$_gse_k" = "$3" ] && [ "$_gse_i" = "$4" ]
}

# gse_boot_first DIR [EXCEPT]: print the version a BLS boot loader takes by
# default among the gse entries (but EXCEPT's): the highest serial among
# those not judged bad (tries left 0), else the highest serial; 1 when
# there is no entry.
gse_boot_first() {
    _gse_best='' _gse_bs='' _gse_bad=1
    while read -r _gse_v _gse_s _gse_l _gse_f; do
        { [ -z "$_gse_v" ] || [ "$_gse_v" = "$2" ]; } && continue
        _gse_b=0
        [ "$_gse_l" = 0 ] && _gse_b=1
        if [ -z "$_gse_best" ] || [ $_gse_b -lt $_gse_bad ] \
            || { [ $_gse_b -eq $_gse_bad ] && gse_serial_lt "$_gse_bs" "$_gse_s"; }; then
            _gse_best=$_gse_v _gse_bs=$_gse_s _gse_bad=$_gse_b
        fi
    done << EOF
$(gse_boot_entries "$1")
EOF
    [ -n "$_gse_best" ] || return 1
    echo "$_gse_best"
}

# gse_boot_space DIR: print the bytes free on the filesystem mounted on DIR.
gse_boot_space() {
    df -P -k "$1" 2> /dev/null | awk 'NR == 2 { printf "%.0f\n", $4 * 1024 }'
}

# gse_boot_sync FILE...: flush FILE's data (fsync), then the filesystem.
gse_boot_sync() {
    sync "$@" 2> /dev/null
    sync
}

# gse_boot_mv FROM TO: rename FROM to TO and make the rename durable.
gse_boot_mv() {
    mv -f "$1" "$2" && sync
}

# gse_boot_entry_write DIR VERSION SERIAL: write VERSION's entry, with the
# boot counter +GSE_BOOT_TRIES (3 when unset; none when 0): the new entry is
# the default (highest serial) and, when it fails to boot that many times,
# the boot loader goes back to the previous one.
gse_boot_entry_write() {
    _gse_e=$1/$GSE_BOOT_ENTRIES
    mkdir -p "$_gse_e" || return 2
    _gse_t=
    # shellcheck disable=SC2154 # _gse_dec is set by gse_decimal (gse-lib.sh)
    gse_decimal "${GSE_BOOT_TRIES:-3}" && [ "$_gse_dec" != 0 ] && _gse_t=+$_gse_dec
    {
        printf 'title GSE %s\n' "$2"
        # The serial: higher for every newer pointer, so the newest
        # installed pair sorts first whatever its version string.
        printf 'version %s\n' "$3"
        printf 'sort-key gse\n'
        printf 'linux /gse/%s/vmlinuz\n' "$2"
        printf 'initrd /gse/%s/initramfs\n' "$2"
        printf 'options %s gse.pair=%s\n' "${GSE_BOOT_CMDLINE:-root=gse panic=-1 rd.emergency=reboot}" "$2"
    } > "$_gse_e/gse-$2.conf.new" || return 2
    gse_boot_sync "$_gse_e/gse-$2.conf.new"
    gse_boot_mv "$_gse_e/gse-$2.conf.new" "$_gse_e/gse-$2$_gse_t.conf"
}

# gse_boot_grub DIR: write gse/grub.cfg, the gse entries as GRUB menu
# entries, newest (highest serial) first, for a grub.cfg that sources it.
gse_boot_grub() {
    gse_boot_entries "$1" | sort -k2,2 -r -n | while read -r _gse_v _gse_s _gse_l _gse_f; do
        _gse_o=$(gse_boot_key "$_gse_f" options)
        printf "menuentry 'GSE %s' {\n\tlinux /gse/%s/vmlinuz %s\n\tinitrd /gse/%s/initramfs\n}\n" \
            "$_gse_v" "$_gse_v" "$_gse_o" "$_gse_v"
    done > "$1/gse/grub.cfg.new" || return 2
    gse_boot_sync "$1/gse/grub.cfg.new"
    gse_boot_mv "$1/gse/grub.cfg.new" "$1/gse/grub.cfg"
}

# gse_boot_drop DIR VERSION: remove VERSION's entry, then its pair.
gse_boot_drop() {
    for _gse_f in "$1/$GSE_BOOT_ENTRIES/gse-$2.conf" "$1/$GSE_BOOT_ENTRIES/gse-$2+"*.conf; do
        [ -f "$_gse_f" ] && rm -f "$_gse_f"
    done
    sync
    rm -rf "${1:?}/gse/${2:?}"
    sync
}

# gse_boot_rotate DIR KEEP [KEEP2]: remove every gse entry and pair but
# KEEP's and KEEP2's (entries first), and what a cut install left
# (gse/.new-*, *.conf.new).
gse_boot_rotate() {
    gse_boot_entries "$1" | while read -r _gse_v _gse_s _gse_l _gse_f; do
        [ "$_gse_v" = "$2" ] || [ "$_gse_v" = "$3" ] || { rm -f "$_gse_f"; gse_log "boot partition: entry of $_gse_v removed"; }
    done
    rm -f "$1/$GSE_BOOT_ENTRIES"/gse-*.conf.new
    sync
    for _gse_d in "$1"/gse/* "$1"/gse/.new-*; do
        [ -d "$_gse_d" ] || continue
        case "${_gse_d##*/}" in "$2" | "$3") continue ;; esac
        rm -rf "$_gse_d"
    done
    sync
}

# gse_boot_install DIR VERSION SERIAL KERNEL INITRAMFS KSHA ISHA NEED: put
# VERSION's verified pair (KERNEL and INITRAMFS, files in RAM whose digests
# were checked) on the boot partition mounted read-write on DIR, with its
# entry as the default, the previous default kept as the fallback and any
# older pair removed after that.  NEED: the bytes the pair takes.  2 with
# GSE_BOOT_REASON when the partition lacks the room (after removing the
# pairs that are neither the previous default nor VERSION's) or a write
# failed; what was there before stays bootable.
gse_boot_install() {
    GSE_BOOT_REASON=
    _gse_prev=$(gse_boot_first "$1" "$2") || _gse_prev=
    # Leftovers of a cut install first (they hold room, no entry).
    rm -rf "$1/gse/.new-$2"
    _gse_free=$(gse_boot_space "$1")
    if [ -z "$_gse_free" ] || [ "$_gse_free" -lt "$8" ]; then
        # Room from the pairs no boot loader would fall back to: VERSION's
        # own is kept while it has an entry, the previous default always.
        gse_boot_rotate "$1" "$_gse_prev" "$2"
        _gse_free=$(gse_boot_space "$1")
        if [ -z "$_gse_free" ] || [ "$_gse_free" -lt "$8" ]; then
            GSE_BOOT_REASON="no space: the pair needs $8 bytes, the boot partition has ${_gse_free:-?} free"
            return 2
        fi
    fi
    _gse_new=$1/gse/.new-$2
    mkdir -p "$_gse_new" || { GSE_BOOT_REASON="cannot write gse/.new-$2"; return 2; }
    if ! cp "$4" "$_gse_new/vmlinuz" || ! cp "$5" "$_gse_new/initramfs" \
        || ! printf '%s %s\n' "$6" "$7" > "$_gse_new/pair"; then
        rm -rf "$_gse_new"
        sync
        GSE_BOOT_REASON="writing the pair failed (no space?)"
        return 2
    fi
    gse_boot_sync "$_gse_new/vmlinuz" "$_gse_new/initramfs" "$_gse_new/pair"
    if [ -e "$1/gse/$2" ]; then
        # Another pair under the same version (republished): its entry goes
        # first, and only when another entry stays to boot from.
        if gse_boot_entry "$1" "$2" > /dev/null && [ -z "$_gse_prev" ]; then
            rm -rf "$_gse_new"
            sync
            GSE_BOOT_REASON="gse/$2 holds another pair of $2, the only one with an entry: left as it is"
            return 2
        fi
        gse_boot_drop "$1" "$2"
    fi
    gse_boot_mv "$_gse_new" "$1/gse/$2" || { GSE_BOOT_REASON="cannot rename gse/.new-$2"; return 2; }
    gse_boot_entry_write "$1" "$2" "$3" || { GSE_BOOT_REASON="cannot write the entry of $2"; return 2; }
    # Only now, with the new entry in place: older pairs go.
    gse_boot_rotate "$1" "$2" "$_gse_prev"
    gse_boot_grub "$1" || gse_warn "boot partition: gse/grub.cfg not written"
    # shellcheck disable=SC2034 # read by the boot partition hook (gse-boot.sh)
    GSE_BOOT_PREVIOUS=$_gse_prev
    return 0
}

# gse_boot_bless DIR VERSION: drop the boot counter of VERSION's entry
# (the pair booted into its system): 0 when blessed now, 1 when it had no
# counter or no entry.
gse_boot_bless() {
    _gse_f=$(gse_boot_entry "$1" "$2") || return 1
    case "${_gse_f##*/}" in *+*) ;; *) return 1 ;; esac
    gse_boot_mv "$_gse_f" "$1/$GSE_BOOT_ENTRIES/gse-$2.conf"
}

# gse_boot_prefer DIR VERSION: make VERSION's entry the one a BLS boot
# loader takes: the entries that sort before it are marked bad (tries left
# 0, kept as entries, sorted last).  1 when VERSION has no entry or its own
# tries are used up (its pair failed to boot).
gse_boot_prefer() {
    _gse_f=$(gse_boot_entry "$1" "$2") || return 1
    gse_boot_split "$_gse_f"
    [ "$_gse_bleft" = 0 ] && return 1
    while [ "$(gse_boot_first "$1")" != "$2" ]; do
        _gse_x=$(gse_boot_first "$1")
        _gse_g=$(gse_boot_entry "$1" "$_gse_x") || return 2
        _gse_n=${_gse_g##*/}
        _gse_n=${_gse_n%.conf}
        case "$_gse_n" in
            *+*-*) _gse_n="${_gse_n%+*}+0-${_gse_n##*-}" ;;
            *+*) _gse_n="${_gse_n%+*}+0" ;;
            *) _gse_n="$_gse_n+0" ;;
        esac
        gse_boot_mv "$_gse_g" "$1/$GSE_BOOT_ENTRIES/$_gse_n.conf" || return 2
        gse_log "boot partition: entry of $_gse_x marked bad (tries left 0): the pair of $2 boots next"
    done
    return 0
}

# gse_boot_running: print the version whose pair this controller booted
# from (gse.pair= of the command line its entry gave); 1 when none.
gse_boot_running() {
    read -r _gse_cl < "${GSE_PROC_CMDLINE:-/proc/cmdline}" || return 1
    for _gse_w in $_gse_cl; do
        case "$_gse_w" in gse.pair=?*) echo "${_gse_w#gse.pair=}"; return 0 ;; esac
    done
    return 1
}

# gse_boot_mount MODE: mount the boot partition on $GSE_BOOT_MNT (ro or
# rw); 1 when it is not found, 2 when it does not mount (GSE_BOOT_REASON).
gse_boot_mount() {
    GSE_BOOT_REASON=
    if gse_mounted "$GSE_BOOT_MNT"; then
        mount -o "remount,$1" "$GSE_BOOT_MNT" && return 0
        GSE_BOOT_REASON="cannot remount $GSE_BOOT_MNT $1"
        return 2
    fi
    _gse_wait=$(gse_boot_setting GSE_BOOT_WAIT "${GSE_BOOT_WAIT:-5}" 5)
    _gse_dev=$(gse_boot_dev "$GSE_BOOT_PART" "$_gse_wait")
    case $? in
        1) GSE_BOOT_REASON="partition not found: $GSE_BOOT_PART (waited $_gse_wait s)"; return 1 ;;
        2) GSE_BOOT_REASON="GSE_BOOT_PART '$GSE_BOOT_PART' is no /dev path, LABEL=, PARTLABEL=, UUID= or PARTUUID="; return 2 ;;
    esac
    mkdir -p "$GSE_BOOT_MNT"
    mount -o "$1" "$_gse_dev" "$GSE_BOOT_MNT" 2> "$GSE_RUN/boot.mount.err" && return 0
    GSE_BOOT_REASON="$_gse_dev does not mount: $(cat "$GSE_RUN/boot.mount.err")"
    return 2
}

# gse_boot_umount: flush and unmount the boot partition.
gse_boot_umount() {
    gse_mounted "$GSE_BOOT_MNT" || return 0
    sync
    umount "$GSE_BOOT_MNT"
}

# gse_boot_reboot VERSION: SYSFS holds VERSION and lacks the running
# kernel's modules.  When the boot partition has VERSION's pair and this
# boot did not come from it, make its entry the boot loader's choice and
# reboot into it, at most GSE_BOOT_REBOOTS times (1) in a row for VERSION
# (state file boot/reboot): a boot loader that does not take the entry
# must not make a loop.  1, the reason logged, when it does not reboot
# (the caller falls back to BACKUPFS); after `reboot -f` it does not return.
gse_boot_reboot() {
    [ -n "$GSE_BOOT_PART" ] || return 1
    if [ "$(gse_boot_running)" = "$1" ]; then
        gse_warn "boot partition: this boot came from the pair of $1 and its system still lacks the running kernel's modules: no reboot"
        return 1
    fi
    _gse_cnt=0
    if [ -r "$GSE_STATE_MNT/boot/reboot" ] && read -r _gse_rv _gse_rn < "$GSE_STATE_MNT/boot/reboot" \
        && [ "$_gse_rv" = "$1" ] && gse_decimal "$_gse_rn"; then
        _gse_cnt=$_gse_dec
    fi
    if [ ${#_gse_cnt} -gt 9 ] || [ "$_gse_cnt" -ge "$(gse_boot_setting GSE_BOOT_REBOOTS "${GSE_BOOT_REBOOTS:-1}" 1)" ]; then
        gse_warn "boot partition: rebooted $_gse_cnt time(s) for the pair of $1 and the boot loader did not take it: no reboot"
        return 1
    fi
    if ! gse_boot_mount rw; then
        gse_warn "boot partition: $GSE_BOOT_REASON: no reboot into the pair of $1"
        return 1
    fi
    if ! gse_boot_complete "$GSE_BOOT_MNT" "$1"; then
        gse_boot_umount
        gse_log "boot partition: no pair of $1 to reboot into"
        return 1
    fi
    if ! gse_boot_prefer "$GSE_BOOT_MNT" "$1"; then
        gse_boot_umount
        gse_warn "boot partition: the entry of $1 used up its tries (its pair did not boot): no reboot"
        return 1
    fi
    gse_boot_umount
    gse_state_write boot/reboot "$1 $((_gse_cnt + 1))" || {
        gse_warn "boot partition: the state area cannot count the reboot: no reboot"
        return 1
    }
    gse_log "boot partition: rebooting into the pair of $1 (the kernel its /lib/modules is for)"
    gse_log_save
    sync
    reboot -f
    return 0
}
