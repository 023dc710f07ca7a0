# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""version.txt for a verified image directory: its fields, and moving the pointer to it.

Publishing an image (``publish``) and rolling back to an earlier one
(``publication``) move the pointer the same way: under the tree lock, with
the next serial, recorded in the tree's history.
"""

from __future__ import annotations

import datetime
import json
import os

from ansible_collections.gse.stateless.plugins.module_utils import grouppins
from ansible_collections.gse.stateless.plugins.module_utils import pubhistory
from ansible_collections.gse.stateless.plugins.module_utils import pubtree as tree
from ansible_collections.gse.stateless.plugins.module_utils.atomic_file import write_atomic
from ansible_collections.gse.stateless.plugins.module_utils.image_verify import VerifyError
from ansible_collections.gse.stateless.plugins.module_utils.pointers import read_verified, write_pointer


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime(pubhistory.STAMP)


def root_bytes(directory):
    """root_bytes from the (verified) build report of an image directory; VerifyError when absent."""
    try:
        with open(os.path.join(directory, tree.REPORT), encoding="utf-8") as f:
            value = json.load(f).get("root_bytes")
    except (OSError, ValueError, AttributeError) as e:
        raise VerifyError("cannot read %s: %s" % (tree.REPORT, e)) from None
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        raise VerifyError("%s must give root_bytes (a positive integer) for an image with a chunk index; it "
                          "gives %r" % (tree.REPORT, value))
    return value


def fields(directory, version, names, tarball, sums):
    """The pointer's fields for the verified image directory ``directory`` (format 2 with an index)."""
    out = dict(format=tree.FORMAT, version=version, path="%s/%s/%s" % (tree.IMAGES, version, tarball),
               sha512=sums[tarball], size=os.path.getsize(os.path.join(directory, tarball)),
               compression=tree.TARBALLS[tarball])
    if tree.INDEX in names:
        out.update(format=tree.FORMAT_INDEX, index="%s/%s/%s" % (tree.IMAGES, version, tree.INDEX),
                   index_sha512=sums[tree.INDEX], index_size=os.path.getsize(os.path.join(directory, tree.INDEX)),
                   store=tree.STORE, root_bytes=root_bytes(directory))
    blob_index = tarball + tree.TARBALL_INDEX_SUFFIX
    if blob_index in names:
        # The tarball's blob index: additive keys, the format stays.
        out.update(tarball_index="%s/%s/%s" % (tree.IMAGES, version, blob_index),
                   tarball_index_sha512=sums[blob_index],
                   tarball_index_size=os.path.getsize(os.path.join(directory, blob_index)))
    if tree.KERNEL in names:
        # The image's controller (product II): named with digest and size.
        for key, name in (("kernel", tree.KERNEL), ("initramfs", tree.INITRAMFS)):
            out.update({key: "%s/%s/%s" % (tree.IMAGES, version, name), key + "_sha512": sums[name],
                        key + "_size": os.path.getsize(os.path.join(directory, name))})
    return out


def current(run, pub, keyring):
    """The verified version.txt of the tree as a dict, or None."""
    state = os.path.join(pub, tree.STATE)
    if not os.path.isdir(state):
        return None
    return read_verified(run, keyring, os.path.join(pub, tree.VERSION_POINTER), state)


def move(run, pub, keyring, new, signer, check, action="publish"):
    """Move version.txt to ``new`` unless it already names this content; returns (moved, serial).

    ``signer`` is (gnupghome, signing_key, passphrase).  The move takes the
    next serial (so a rollback to earlier content still has a higher serial
    than anything clients saw) and is recorded in the history.
    """
    named = current(run, pub, keyring)
    same = ("version", "path", "sha512") + (("index", "index_sha512") if "index" in new else ()) \
        + (("kernel_sha512", "initramfs_sha512") if "kernel" in new else ()) \
        + (("tarball_index", "tarball_index_sha512") if "tarball_index" in new else ())
    # A pointer without the tarball's blob index is moved to the same image
    # with one (clients learn of it), and back.
    if named and ("tarball_index" in named) == ("tarball_index" in new) \
            and all(named.get(k) == str(new[k]) for k in same):
        return False, int(named["serial"])
    stamp = now()
    serial = write(run, pub, keyring, tree.VERSION_POINTER, new, signer, check, named, stamp)
    if not check:
        pubhistory.append(pub, serial, new["version"], stamp, action)
    return True, serial


def next_serial(pub, named, check):
    """The next serial of version.txt's counter, also for a group's pointer:
    above the counter, the pointer clients see (``named``) and every group
    pointer, so it is higher than anything clients have seen.  Taken (stored
    durably) unless ``check``."""
    floor = max(int(named["serial"]) if named else 0, grouppins.serial_floor(pub))
    if check:
        return max(tree.read_serial(pub, tree.VERSION_POINTER), floor) + 1
    return tree.take_serial(pub, tree.VERSION_POINTER, floor)


def write(run, pub, keyring, name, new, signer, check, named, stamp):
    """Sign the pointer ``name`` (version.txt or a group's) with the fields
    ``new`` and the next serial; returns the serial (in check mode, the one
    it would take, and nothing is written)."""
    serial = next_serial(pub, named, check)
    if check:
        return serial
    body = tree.pointer_body(dict(new, serial=serial, published=stamp))
    home, key, passphrase = signer
    write_pointer(run, pub, name, body, home, key, passphrase, keyring)
    return serial


def resign(run, pub, keyring, signer, check):
    """Sign the verified version.txt again, unchanged but for a new, higher
    serial and time (unpinning a group: its clients hold the pin's serial and
    would refuse the default's older one as a replay); recorded in the
    history.  Returns (fields, serial), or (None, None) without a verified
    version.txt."""
    named = current(run, pub, keyring)
    if named is None:
        return None, None
    fields = {k: v for k, v in named.items() if k not in ("serial", "published", tree.GROUP_KEY)}
    stamp = now()
    serial = write(run, pub, keyring, tree.VERSION_POINTER, fields, signer, check, named, stamp)
    if not check:
        pubhistory.append(pub, serial, fields["version"], stamp, "resign")
    return fields, serial


def boot_script(pub, fields, cmdline, check):
    """Write boot.ipxe for the controller the pointer ``fields`` name (with
    its serial), atomically, when it differs; returns its path when it was
    (or, in check mode, would be) written, else None.  A pointer without a
    controller leaves boot.ipxe as it is.  cmdline None (a rollback) keeps
    the command line of the script there, else the default."""
    if "kernel" not in fields:
        return None
    path = os.path.join(pub, tree.BOOT_SCRIPT)
    try:
        with open(path, encoding="utf-8") as f:
            old = f.read()
    except FileNotFoundError:
        old = None
    if cmdline is None:
        cmdline = tree.BOOT_CMDLINE
        for line in (old or "").splitlines():
            if line.startswith("kernel ") and " initrd=" in line:
                cmdline = line.split(" initrd=", 1)[1].partition(" ")[2] or cmdline
    text = tree.boot_script(fields, cmdline)
    if old == text:
        return None
    if not check:
        write_atomic(path, text, mode=0o644)
    return path
