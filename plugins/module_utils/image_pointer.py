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

from ansible_collections.gse.stateless.plugins.module_utils import pubhistory
from ansible_collections.gse.stateless.plugins.module_utils import pubtree as tree
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
    same = ("version", "path", "sha512") + (("index", "index_sha512") if "index" in new else ())
    if named and all(named.get(k) == str(new[k]) for k in same):
        return False, int(named["serial"])
    floor = int(named["serial"]) if named else 0
    if check:
        return True, max(tree.read_serial(pub, tree.VERSION_POINTER), floor) + 1
    serial = tree.take_serial(pub, tree.VERSION_POINTER, floor)
    stamp = now()
    body = tree.pointer_body(dict(new, serial=serial, published=stamp))
    home, key, passphrase = signer
    write_pointer(run, pub, tree.VERSION_POINTER, body, home, key, passphrase, keyring)
    pubhistory.append(pub, serial, new["version"], stamp, action)
    return True, serial
