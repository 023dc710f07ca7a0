# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Check an image directory before it becomes visible: digests and signatures.

``SHA512SUMS`` must name exactly the published files other than itself and
the signatures, every digest must match, and every detached signature
(the tarball's, SHA512SUMS', the chunk index's) must verify with the
publication keyring.
"""

from __future__ import annotations

import os

from ansible_collections.gse.stateless.plugins.module_utils import openpgp_sign as pgp
from ansible_collections.gse.stateless.plugins.module_utils.command_error import VerifyError
from ansible_collections.gse.stateless.plugins.module_utils.checksums import parse_sums, sha512_file
from ansible_collections.gse.stateless.plugins.module_utils.pubtree import SUMS


def covered(names):
    return sorted(n for n in names if n != SUMS and not n.endswith(".asc"))


def verify_signature(run, keyring, directory, name):
    """gpgv on ``name.asc``; VerifyError unless some key of the keyring made a good signature."""
    argv = pgp.gpgv_argv(keyring, os.path.join(directory, name + ".asc"), os.path.join(directory, name))
    rc, out, err = run(argv)
    if rc != 0 or not pgp.valid_signers(out):
        raise VerifyError("signature of %s does not verify with %s" % (name, keyring), argv, rc, out, err)


def read_sums(directory):
    try:
        with open(os.path.join(directory, SUMS), encoding="utf-8") as f:
            return parse_sums(f.read())
    except (OSError, ValueError, UnicodeDecodeError) as e:
        raise VerifyError("cannot read %s: %s" % (SUMS, e)) from None


def verify_sums(run, directory, keyring):
    """SHA512SUMS of the directory as {name: sha512}, once its signature verifies."""
    verify_signature(run, keyring, directory, SUMS)
    return read_sums(directory)


def verify_image_dir(run, directory, names, tarball, keyring):
    """Verify the directory; returns {name: sha512} of the covered files."""
    sums = read_sums(directory)
    want = covered(names)
    if sorted(sums) != want:
        raise VerifyError("%s must cover exactly %s; it lists %s" % (SUMS, want, sorted(sums)))
    for name in [SUMS, tarball] + [n[:-len(".asc")] for n in names if n.endswith(".asc")
                                   and n[:-len(".asc")] not in (SUMS, tarball)]:
        verify_signature(run, keyring, directory, name)
    for name in want:
        if sha512_file(os.path.join(directory, name)) != sums[name]:
            raise VerifyError("%s does not match its SHA512SUMS entry" % name)
    return sums
