#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Detached OpenPGP signatures for the image files (part K, gsign)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: sign
short_description: Write and verify detached armored OpenPGP signatures
version_added: 0.1.0
description:
  - For each file F writes C(F.asc) with
    C(gpg --batch --yes --pinentry-mode loopback --homedir H --local-user KEY --armor --detach-sign --output F.asc F),
    then verifies it with C(gpgv) against the signing key's public key exported from H.
  - A file whose C(F.asc) already holds a valid signature by that key is left alone (not changed).
  - Fails when the key is not in the secret keyring of H; a file is never reported as signed without a
    signature that verifies.
options:
  files:
    description: Files to sign.
    type: list
    elements: path
    required: true
  gnupghome:
    description: The GnuPG home holding the secret key.
    type: path
    required: true
  key:
    description: The signing key (fingerprint, key id or user id); it must match exactly one secret key.
    type: str
    required: true
  passphrase:
    description: Passphrase of the key, given to gpg on stdin. Keys used unattended usually have none.
    type: str
attributes:
  check_mode:
    support: full
    description: Says which files would be signed.
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Sign the tarball and its digests
  gse.stateless.sign:
    files:
      - "{{ image_dir }}/image.tar.zst"
      - "{{ image_dir }}/SHA512SUMS"
    gnupghome: "{{ gse_gnupghome }}"
    key: "{{ gse_signing_key }}"
"""

RETURN = r"""
fingerprint:
  description: Primary key fingerprint of the signing key.
  type: str
  returned: always
signatures:
  description: The signature files, one per input file.
  type: list
  elements: str
  returned: always
signed:
  description: Files signed (or, in check mode, to be signed) by this run.
  type: list
  elements: str
  returned: always
"""

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gse.stateless.plugins.module_utils import openpgp_sign as pgp


def run(module):
    p = module.params
    home, key, passphrase = p["gnupghome"], p["key"], p["passphrase"]
    for path in p["files"]:
        if not os.path.isfile(path):
            module.fail_json(msg="nothing to sign: %s is not a file" % path)

    def cmd(argv, data=None):
        return module.run_command(argv, data=data, binary_data=True)

    tmp = tempfile.mkdtemp(prefix="gse-sign-")
    try:
        fpr = pgp.secret_key(cmd, home, key)
        keyring = os.path.join(tmp, "signer.gpg")
        pgp.export_keyring(cmd, home, fpr, keyring)
        signed = []
        for path in p["files"]:
            asc = path + ".asc"
            if os.path.exists(asc) and pgp.signed_by(cmd, keyring, fpr, asc, path):
                continue
            signed.append(path)
            if module.check_mode:
                continue
            argv = pgp.detach_sign_argv(home, key, path, passphrase)
            rc, out, err = cmd(argv, passphrase)
            if rc != 0:
                raise pgp.SignError("gpg could not sign %s" % path, argv, rc, out, err)
            vargv = pgp.gpgv_argv(keyring, asc, path)
            rc, out, err = cmd(vargv)
            if rc != 0 or fpr not in pgp.valid_signers(out):
                os.unlink(asc)
                raise pgp.SignError("the new signature of %s does not verify with key %s" % (path, fpr),
                                    vargv, rc, out, err)
    except pgp.SignError as e:
        module.fail_json(**e.fail_args())
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    module.exit_json(changed=bool(signed), fingerprint=fpr, signed=signed,
                     signatures=[f + ".asc" for f in p["files"]])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            files=dict(type="list", elements="path", required=True),
            gnupghome=dict(type="path", required=True),
            # A key id, fingerprint or user id names the key; it is no secret.
            key=dict(type="str", required=True, no_log=False),
            passphrase=dict(type="str", no_log=True),
        ),
        supports_check_mode=True,
    )
    run(module)


if __name__ == "__main__":
    main()
