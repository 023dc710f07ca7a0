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
    C(gpg --batch --yes --pinentry-mode loopback --homedir H --local-user KEY --status-fd 1 --armor --detach-sign
    --output .F.asc.partial F), renamed to C(F.asc) only when gpg succeeded and its C(SIG_CREATED) status line
    names the signing key (gpg-agent checks every signature it creates against the digest).
  - A file whose C(F.asc) already holds a signature that C(gpgv) accepts for that key (against the public key
    exported from H) is left alone (not changed); this is how a signature made by M(gse.stateless.pack)
    while packing is taken over. A found signature is always verified with gpgv, as its origin is unknown.
  - A signature made by this run is not read back with gpgv (that would hash the whole file again for what
    gpg has just proved); part L (M(gse.stateless.publish)) verifies every signature with gpgv before
    anything is published, so nothing unverified becomes visible.
  - Fails when the key is not in the secret keyring of H; a file is never reported as signed without gpg's
    proof of a signature by that key.
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
  signing_key:
    description:
      - The signing key (fingerprint, key id or user id); it must match exactly one secret key.
      - The same name as in M(gse.stateless.pack) and M(gse.stateless.publish); C(key) is its former name,
        kept as an alias.
    type: str
    required: true
    aliases: [key]
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
    signing_key: "{{ gse_signing_key }}"
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
    home, key, passphrase = p["gnupghome"], p["signing_key"], p["passphrase"]
    for path in p["files"]:
        if not os.path.isfile(path):
            module.fail_json(msg="nothing to sign: %s is not a file" % path)

    def cmd(argv, data=None):
        return module.run_command(argv, data=data, binary_data=True)

    tmp = tempfile.mkdtemp(prefix="gse-sign-")
    try:
        fpr, fprs = pgp.signing_key(cmd, home, key)
        keyring = None
        signed = []
        for path in p["files"]:
            asc = path + ".asc"
            if os.path.exists(asc):
                if keyring is None:  # exported once, when the first found signature needs it
                    keyring = os.path.join(tmp, "signer.gpg")
                    pgp.export_keyring(cmd, home, fpr, keyring)
                if pgp.signed_by(cmd, keyring, fpr, asc, path):
                    continue
            signed.append(path)
            if not module.check_mode:
                pgp.sign_file(cmd, home, key, path, fprs, passphrase)
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
            signing_key=dict(type="str", required=True, no_log=False, aliases=["key"]),
            passphrase=dict(type="str", no_log=True),
        ),
        supports_check_mode=True,
    )
    run(module)


if __name__ == "__main__":
    main()
