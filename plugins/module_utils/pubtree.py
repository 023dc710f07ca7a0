# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The publication tree of docs/publication.md: layout, lock, serials and pointers.

This file is the code side of that document; a change here is a change of
the interface and needs a new ``format`` number there.
"""

from __future__ import annotations

import fcntl
import os
import re

from ansible_collections.gse.stateless.plugins.module_utils.atomic_file import write_atomic

FORMAT = 1
# A version.txt that names a chunk index (INDEX_KEYS) has format 2; clients
# read 1 and 2.  config.txt stays at FORMAT.
FORMAT_INDEX = 2
VERSION_POINTER = "version.txt"
CONFIG_POINTER = "config.txt"
IMAGES = "images"
CONFIG = "config"
STATE = ".gse"
# The casync chunk store every published index takes its chunks from.
STORE = "store"
INDEX = "image.caidx"
# The publication keyring, armored, for administrators and clients.
PUBLIC_KEY = "publication-key.asc"
LOCK = "lock"
# One counter per pointer: each pointer's serial grows by exactly one per move.
SERIAL_FILES = {VERSION_POINTER: "serial", CONFIG_POINTER: "config-serial"}
CONFIG_TARBALL = "config.d.tar.gz"
SUMS = "SHA512SUMS"
TARBALLS = {"image.tar.zst": "zstd", "image.tar.xz": "xz"}
# The casync blob index of the tarball (``<tarball>.caibx``, SHA-256 ids of
# its byte ranges): a client without an installed system fetches the tarball
# by it, checking it chunk by chunk as it arrives.  Optional.
TARBALL_INDEX_SUFFIX = ".caibx"
REPORT = "build-report.json"
# The controller of the image (product II): its own kernel and the
# initramfs built against its /lib/modules.  Published as a pair or not at all.
KERNEL = "vmlinuz"
INITRAMFS = "initramfs"
OPTIONAL = (KERNEL, INITRAMFS)
POINTER_KEYS = ("format", "serial", "version", "path", "sha512", "size", "compression", "published")
INDEX_KEYS = ("index", "index_sha512", "index_size", "store", "root_bytes")
# Added to a format 1 or 2 pointer when the image carries the controller:
# older clients ignore keys they do not know, so the format stays.
# Added to a format 1 or 2 pointer when the image carries the tarball's blob
# index: older clients ignore keys they do not know, so the format stays.
TARBALL_INDEX_KEYS = ("tarball_index", "tarball_index_sha512", "tarball_index_size")
CONTROLLER_KEYS = ("kernel", "kernel_sha512", "kernel_size", "initramfs", "initramfs_sha512", "initramfs_size")
# The network boot script (iPXE) of the default version's controller, moved
# with version.txt; not signed (iPXE cannot check OpenPGP).
BOOT_SCRIPT = "boot.ipxe"
BOOT_CMDLINE = "root=gse panic=-1 rd.emergency=reboot"
# A group pinned to a version gets its own pointer, groups/<GROUP>/version.txt:
# version.txt's keys naming the pinned image plus GROUP_KEY, its serial from
# version.txt's counter.  The client config.d lists the pinned groups in
# PINNED (one name a line), so a client of such a group never silently
# follows the default pointer.
GROUPS = "groups"
GROUP_KEY = "group"
PINNED = "pinned"
# The names the client config.d's members file gives groups (docs/groups.md).
_GROUP_NAME = re.compile(r"^[A-Za-z0-9_-][A-Za-z0-9._-]{0,63}$")
_SAFE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._+-]{0,127}$")


class TreeError(Exception):
    pass


def check_version(version):
    """A version names a directory: plain characters only, no leading dot (staging names start with one)."""
    if not _SAFE_NAME.match(version or ""):
        raise TreeError("version %r must match %s" % (version, _SAFE_NAME.pattern))
    return version


def check_group(group):
    """A group names a directory of the tree and of the config.d: letters, digits, ``.``, ``_``, ``-``, no
    leading dot, at most 64 characters."""
    if not _GROUP_NAME.match(group or ""):
        raise TreeError("group %r must match %s" % (group, _GROUP_NAME.pattern))
    return group


def group_pointer(group):
    """The pointer of a pinned group, relative to the tree."""
    return "%s/%s/%s" % (GROUPS, check_group(group), VERSION_POINTER)


def staging_name(name):
    """A publish's staging directory of a version (or config serial): ``.staging-<name>``."""
    return ".staging-" + name


def pruning_name(version):
    """Where a prune hides an image before deleting it: ``.staging-.prune-<version>``.

    Still a staging name (servers refuse ``.staging-`` names), but the dot
    after ``.staging-`` is one no version can start with (check_version):
    no publish's staging name can be a prune's, whatever the version is
    called (a version ``prune-x`` stages in ``.staging-prune-x``)."""
    return staging_name(".prune-" + version)


def make_tree(pub):
    for sub in (IMAGES, CONFIG, STATE, STORE):
        os.makedirs(os.path.join(pub, sub), mode=0o755, exist_ok=True)
    os.chmod(os.path.join(pub, STATE), 0o700)


class TreeLock:
    """flock(2) on ``.gse/lock``: one publisher at a time changes the tree."""

    def __init__(self, pub):
        self.path = os.path.join(pub, STATE, LOCK)
        self.fd = None

    def __enter__(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, fcntl.LOCK_EX)
        return self

    def __exit__(self, *exc):
        fcntl.flock(self.fd, fcntl.LOCK_UN)
        os.close(self.fd)


def serial_path(pub, pointer):
    return os.path.join(pub, STATE, SERIAL_FILES[pointer])


def read_serial(pub, pointer):
    try:
        with open(serial_path(pub, pointer), encoding="ascii") as f:
            text = f.read().strip()
    except FileNotFoundError:
        return 0
    if not text.isdigit():
        raise TreeError("%s is corrupt: %r" % (serial_path(pub, pointer), text[:40]))
    return int(text)


def take_serial(pub, pointer, floor=0):
    """Increment and durably store the pointer's serial; call with the TreeLock held.

    The serial is stored before the pointer is written, so a failed publish
    burns a number and never hands it out twice.  ``floor`` is the serial
    of the pointer clients see now: the new one is always above it, also
    when ``.gse`` was lost or restored from an older backup (clients refuse
    a lower serial as a replay, so they would never update again).
    """
    serial = max(read_serial(pub, pointer), floor) + 1
    write_atomic(serial_path(pub, pointer), "%d\n" % serial, mode=0o600)
    return serial


def pointer_body(fields):
    """The signed body: POINTER_KEYS, then INDEX_KEYS when the pointer names
    an index (format 2), then TARBALL_INDEX_KEYS when it names the tarball's
    blob index, then CONTROLLER_KEYS when it names the controller, then
    GROUP_KEY for the pointer of a pinned group."""
    keys = POINTER_KEYS + (INDEX_KEYS if "index" in fields else ()) \
        + (TARBALL_INDEX_KEYS if "tarball_index" in fields else ()) \
        + (CONTROLLER_KEYS if "kernel" in fields else ()) + ((GROUP_KEY,) if GROUP_KEY in fields else ())
    missing = [k for k in keys if k not in fields]
    if missing:
        raise TreeError("pointer lacks %s" % ", ".join(missing))
    return "".join("%s: %s\n" % (k, fields[k]) for k in keys)


def parse_pointer(body):
    fields = {}
    for line in body.splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            fields[key.strip()] = value.strip()
    return fields


def image_names(src):
    """The files of an image directory that are published, and the tarball's name.

    Required: one ``image.tar.zst`` or ``image.tar.xz``, its ``.asc``,
    ``SHA512SUMS``, ``SHA512SUMS.asc`` and ``build-report.json``; optional:
    ``image.caidx`` and the tarball's blob index ``<tarball>.caibx`` (each
    then with its ``.asc``), ``vmlinuz``, ``initramfs``.
    Other files (such as pack's hidden record) stay behind.
    """
    present = set(os.listdir(src))
    tarballs = sorted(present & set(TARBALLS))
    if len(tarballs) != 1:
        raise TreeError("%s must hold exactly one of %s, found %s" % (src, ", ".join(TARBALLS), tarballs or "none"))
    tarball = tarballs[0]
    required = [tarball, tarball + ".asc", SUMS, SUMS + ".asc", REPORT]
    for index in (INDEX, tarball + TARBALL_INDEX_SUFFIX):
        if index in present:
            required += [index, index + ".asc"]
    missing = [n for n in required if n not in present]
    if missing:
        raise TreeError("%s lacks %s" % (src, ", ".join(missing)))
    pair = [n for n in OPTIONAL if n in present]
    if pair and len(pair) != len(OPTIONAL):
        raise TreeError("%s holds %s without %s: the controller is published as a pair (kernel and initramfs)"
                        % (src, pair[0], ", ".join(n for n in OPTIONAL if n not in present)))
    names = required + pair
    for n in names:
        if not os.path.isfile(os.path.join(src, n)) or os.path.islink(os.path.join(src, n)):
            raise TreeError("%s/%s must be a regular file" % (src, n))
    return sorted(names), tarball


def boot_script(fields, cmdline=BOOT_CMDLINE):
    """The iPXE script that boots the controller a pointer names (its kernel
    and initramfs, relative to the tree: iPXE resolves them against the
    script's own URL)."""
    return ("#!ipxe\n"
            "# GSE network boot: the controller of version %(version)s (version.txt serial %(serial)s).\n"
            "# Written by part L with version.txt; not signed: serve it over a network you trust, or HTTPS.\n"
            "kernel %(kernel)s initrd=%(initrd)s %(cmdline)s\n"
            "initrd %(initramfs)s\n"
            "boot\n") % dict(fields, initrd=os.path.basename(fields["initramfs"]), cmdline=cmdline)
