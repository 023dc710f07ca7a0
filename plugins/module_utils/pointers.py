# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read and move the clearsigned pointers (version.txt, config.txt).

A pointer is clearsigned into ``<pointer>.tmp``, verified with the
publication keyring exactly as a client would (gpgv, body taken from gpgv's
output), and only then renamed over the pointer.
"""

from __future__ import annotations

import os
import tempfile

from ansible_collections.gse.stateless.plugins.module_utils import openpgp_sign as pgp
from ansible_collections.gse.stateless.plugins.module_utils.atomic_file import fsync_dir, rename_durable
from ansible_collections.gse.stateless.plugins.module_utils.image_verify import VerifyError
from ansible_collections.gse.stateless.plugins.module_utils.pubtree import STATE, parse_pointer


def read_verified(run, keyring, path, workdir):
    """The verified body of a pointer as a dict, or None when it is missing or does not verify."""
    if not os.path.exists(path):
        return None
    fd, out = tempfile.mkstemp(dir=workdir, prefix=".pointer-")
    os.close(fd)
    os.unlink(out)  # gpgv refuses to overwrite
    try:
        rc, so, _se = run(pgp.gpgv_clearsigned_argv(keyring, path, out))
        if rc != 0 or not pgp.valid_signers(so):
            return None
        with open(out, encoding="utf-8") as f:
            return parse_pointer(f.read())
    finally:
        if os.path.exists(out):
            os.unlink(out)


def write_pointer(run, pub, name, body, home, key, passphrase, keyring):
    """Clearsign ``body`` and move it over ``pub/name`` once it verifies with the keyring.

    ``name`` is relative to the tree (``groups/<GROUP>/version.txt`` too); its
    directory must exist."""
    state = os.path.join(pub, STATE)
    src = os.path.join(state, name.replace("/", "_") + ".body")
    with open(src, "w", encoding="utf-8") as f:
        f.write(body)
        f.flush()
        os.fsync(f.fileno())
    tmp = os.path.join(pub, name + ".tmp")
    try:
        argv = pgp.clearsign_argv(home, key, src, tmp, passphrase)
        rc, so, se = run(argv, passphrase)
        if rc != 0:
            raise VerifyError("gpg could not clearsign %s" % name, argv, rc, so, se)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        check = read_verified(run, keyring, tmp, state)
        if check is None or check != parse_pointer(body):
            raise VerifyError("the new %s does not verify with %s" % (name, keyring))
        rename_durable(tmp, os.path.join(pub, name))
    finally:
        for leftover in (src, tmp):
            if os.path.exists(leftover):
                os.unlink(leftover)
        fsync_dir(os.path.dirname(os.path.join(pub, name)))
