#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fetch Gentoo's latest stage3 for a variant and keep it only when it verifies."""

from __future__ import annotations

DOCUMENTATION = r"""
module: stage3
short_description: Download and verify the latest Gentoo stage3 tarball (the precomp base)
version_added: 0.1.0
description:
  - Reads C(releases/<arch>/autobuilds/latest-stage3-<variant>.txt) under O(base_url), verifies it as a
    clearsigned document with C(gpgv) against O(keyring), and takes the tarball it names from the signed body
    only (never from text outside the signature).
  - Downloads the tarball into C(<name>.part), continuing an existing partial file with an HTTP Range request,
    plus its C(.asc), C(.DIGESTS) and C(.sha256) files.
  - The tarball gets its real name only after its detached signature, the signed C(.DIGESTS) (SHA512 required,
    BLAKE2B and SHA256 when listed), the signed C(.sha256) and the size from the pointer all verify.  Anything
    that does not verify is deleted and the task fails naming what failed.
  - A tarball already in O(dest) that verifies against its signature files is left alone (not changed).
options:
  base_url:
    description:
      - The mirror root, the directory that holds C(releases/). C(http://), C(https://) or C(file://).
    type: str
    required: true
  variant:
    description: The stage3 variant, for example C(amd64-openrc) or C(amd64-systemd).
    type: str
    required: true
  arch:
    description:
      - The architecture directory under C(releases/). Defaults to the part of O(variant) before the first
        C(-) (right for amd64, arm64, ppc64, ...; give C(x86) for C(i686-*) variants).
    type: str
  dest:
    description: Directory that receives the tarball and its C(.asc), C(.DIGESTS) and C(.sha256) files.
    type: path
    required: true
  keyring:
    description:
      - OpenPGP keys trusted to sign releases, armored (C(.asc)) or binary.  The default is Gentoo's release
        key as installed by C(sec-keys/openpgp-keys-gentoo-release).
    type: path
    default: /usr/share/openpgp-keys/gentoo-release.asc
  gpgv:
    description: The gpgv program.
    type: str
    default: gpgv
  force:
    description:
      - Download again even when a verified tarball is present (C(--enforce=gseed)), discarding any partial file.
    type: bool
    default: false
  require_signed_digests:
    description:
      - Refuse C(.DIGESTS) and C(.sha256) files that are not clearsigned.  Gentoo signs them; turn this off
        only for a mirror of your own that does not.
    type: bool
    default: true
  timeout:
    description: Network timeout in seconds for each request.
    type: int
    default: 60
notes:
  - Check mode fetches and verifies the pointer only, and reports whether the tarball would be downloaded
    (a tarball already present is checked against the signature files next to it).
  - Supports C(check_mode).
requirements:
  - gpgv (GnuPG 2.2 or later)
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Fetch and verify the latest amd64 OpenRC stage3
  gse.stateless.stage3:
    base_url: "{{ gse_mirror }}"
    variant: amd64-openrc
    dest: "{{ gse_cdistdir }}/downloads"
    force: "{{ gse_enforce | gse.stateless.enforced('gseed', gse_lawful_good) }}"
  register: stage3

- name: Show what was verified
  ansible.builtin.debug:
    msg: "{{ stage3.path }} {{ stage3.sha512 }} ({{ stage3.date }})"
"""

RETURN = r"""
path:
  description: The verified tarball.
  returned: success, not in check mode
  type: str
  sample: /var/tmp/gse/downloads/stage3-amd64-openrc-20261125T170321Z.tar.xz
name:
  description: The tarball's file name as the pointer names it.
  returned: always
  type: str
url:
  description: Where the tarball is downloaded from.
  returned: always
  type: str
sha512:
  description: SHA512 of the verified tarball.
  returned: success, not in check mode
  type: str
size:
  description: Size in bytes, as the signed pointer states it.
  returned: always
  type: int
date:
  description: The build's timestamp, the directory part of the pointer's path (for example C(20261125T170321Z)).
  returned: always
  type: str
latest_as_of:
  description: The date in the pointer's C(# Latest as of) comment, when there is one.
  returned: always
  type: str
downloaded:
  description: Whether the tarball was (or in check mode would be) downloaded in this run.
  returned: always
  type: bool
resumed_from:
  description: Bytes of an earlier partial download that were kept (0 for a fresh download).
  returned: when downloaded
  type: int
verified:
  description: What was verified, with the signing key's fingerprint and the digest algorithms that matched.
  returned: always
  type: dict
  sample:
    pointer: 13EBBDBEDE7A12775DFDB1BABB572E0E2D182910
    signature: 13EBBDBEDE7A12775DFDB1BABB572E0E2D182910
    digests: [BLAKE2B, SHA512]
    digests_signer: 13EBBDBEDE7A12775DFDB1BABB572E0E2D182910
    sha256: [SHA256]
    size: true
"""

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gse.stateless.plugins.module_utils import download as dl
from ansible_collections.gse.stateless.plugins.module_utils import gentoo_release as rel
from ansible_collections.gse.stateless.plugins.module_utils import openpgp

SIDECARS = (".asc", ".DIGESTS", ".sha256")


class Refused(Exception):
    """The release did not verify; ``fields`` go to fail_json."""

    def __init__(self, msg, **fields):
        super().__init__(msg)
        self.msg = msg
        self.fields = fields


class Verifier(object):
    """gpgv checks against one keyring, in one private home directory."""

    def __init__(self, module, workdir):
        self.module = module
        self.homedir = workdir
        self.gpgv = module.get_bin_path(module.params["gpgv"], required=True)
        try:
            self.keyring = openpgp.prepare_keyring(module.params["keyring"], workdir)
        except openpgp.VerifyError as exc:
            raise Refused(exc.msg)

    def run(self, argv):
        return self.module.run_command(argv)

    def clearsigned(self, path, what):
        try:
            return openpgp.verify_clearsigned(self.run, self.gpgv, self.keyring, self.homedir, path, what)
        except openpgp.VerifyError as exc:
            raise Refused(exc.msg, cmd=exc.cmd, rc=exc.rc, stdout=exc.stdout, stderr=exc.stderr)

    def detached(self, signature, data, what):
        try:
            return openpgp.verify_detached(self.run, self.gpgv, self.keyring, self.homedir,
                                           signature, data, what)
        except openpgp.VerifyError as exc:
            raise Refused(exc.msg, cmd=exc.cmd, rc=exc.rc, stdout=exc.stdout, stderr=exc.stderr)

    def digest_list(self, path, what, default_algo, require_signed):
        """Digests from a DIGESTS/.sha256 file; (listing, signer or None)."""
        with open(path, "rb") as f:
            data = f.read()
        if data.lstrip().startswith(openpgp.CLEARSIGN_BEGIN):
            body, signer = self.clearsigned(path, what)
        elif require_signed:
            raise Refused("%s is not signed (require_signed_digests is on)" % what)
        else:
            body, signer = data, None
        try:
            return rel.parse_digests(body, default_algo), signer
        except rel.ReleaseError as exc:
            raise Refused("%s: %s" % (what, exc))

    def tarball(self, tarball, name, sidecar_dir, size):
        """Verify ``tarball`` (named ``name`` upstream) with the files in ``sidecar_dir``."""
        require_signed = self.module.params["require_signed_digests"]
        for ext in SIDECARS:
            if not os.path.isfile(os.path.join(sidecar_dir, name + ext)):
                raise Refused("%s%s is missing" % (name, ext))
        actual_size = os.path.getsize(tarball)
        if actual_size != size:
            raise Refused("%s is %d bytes, the signed pointer says %d" % (name, actual_size, size))
        verified = {"size": True}
        verified["signature"] = self.detached(os.path.join(sidecar_dir, name + ".asc"), tarball,
                                              "%s (detached signature %s.asc)" % (name, name))
        digests, verified["digests_signer"] = self.digest_list(
            os.path.join(sidecar_dir, name + ".DIGESTS"), name + ".DIGESTS", None, require_signed)
        sums, verified["sha256_signer"] = self.digest_list(
            os.path.join(sidecar_dir, name + ".sha256"), name + ".sha256", "SHA256", require_signed)
        actual = rel.file_hashes(tarball)
        try:
            verified["digests"] = rel.check_digests(digests, name, actual)
            if "SHA512" not in verified["digests"]:
                raise rel.ReleaseError("%s.DIGESTS lists no SHA512 for %s" % (name, name))
            verified["sha256"] = rel.check_digests(sums, name, actual)
        except rel.ReleaseError as exc:
            raise Refused(str(exc))
        return verified, actual["sha512"]


def remove(*paths):
    for path in paths:
        if os.path.lexists(path):
            os.unlink(path)


def run(module, workdir):
    p = module.params
    arch = p["arch"] or p["variant"].split("-")[0]
    autobuilds = dl.join(p["base_url"], "releases", arch, "autobuilds")
    verifier = Verifier(module, workdir)

    pointer_name = "latest-stage3-%s.txt" % p["variant"]
    pointer_url = dl.join(autobuilds, pointer_name)
    pointer_file = os.path.join(workdir, pointer_name)
    with open(pointer_file, "wb") as f:
        f.write(dl.fetch_bytes(pointer_url, limit=64 * 1024, timeout=p["timeout"]))
    body, pointer_signer = verifier.clearsigned(pointer_file, pointer_name)
    try:
        pointer = rel.parse_pointer(body)
    except rel.ReleaseError as exc:
        raise Refused("%s: %s" % (pointer_name, exc))

    name = os.path.basename(pointer["path"])
    url = dl.join(autobuilds, pointer["path"])
    final = os.path.join(p["dest"], name)
    result = dict(changed=False, name=name, url=url, size=pointer["size"], date=pointer["date"],
                  latest_as_of=pointer["latest_as_of"], pointer_url=pointer_url)

    # Is a verified copy already here?  Checked with the signature files next to it.
    # (With force too: a copy that does not verify is removed below, one
    # that does stays until its replacement has verified.)
    local_error = None
    if os.path.isfile(final):
        try:
            verified, sha512 = verifier.tarball(final, name, p["dest"], pointer["size"])
            if not p["force"]:
                verified["pointer"] = pointer_signer
                result.update(path=final, sha512=sha512, verified=verified, downloaded=False)
                return result
        except Refused as exc:
            local_error = exc.msg
    result.update(downloaded=True, local_error=local_error,
                  verified={"pointer": pointer_signer})
    if module.check_mode:
        result["changed"] = True
        return result

    if not os.path.isdir(p["dest"]):
        os.makedirs(p["dest"], 0o755)
    if local_error or not os.path.isfile(final):
        # A copy that does not verify must not stay under the name of a good one.
        remove(final, *[final + ext for ext in SIDECARS])
    part = final + ".part"
    if p["force"]:
        remove(part)

    for ext in SIDECARS:
        with open(os.path.join(workdir, name + ext), "wb") as f:
            f.write(dl.fetch_bytes(url + ext, timeout=p["timeout"]))
    transfer = dl.fetch_to_part(url, part, timeout=p["timeout"])
    result["changed"] = True
    try:
        verified, sha512 = verifier.tarball(part, name, workdir, pointer["size"])
    except Refused:
        # Not resumable either: a later run must not build on bad bytes.
        remove(part)
        raise
    for ext in SIDECARS:
        shutil.move(os.path.join(workdir, name + ext), final + ext)
    os.replace(part, final)
    verified["pointer"] = pointer_signer
    result.update(path=final, sha512=sha512, verified=verified, resumed_from=transfer["resumed_from"])
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            base_url=dict(type="str", required=True),
            variant=dict(type="str", required=True),
            arch=dict(type="str"),
            dest=dict(type="path", required=True),
            keyring=dict(type="path", default="/usr/share/openpgp-keys/gentoo-release.asc"),
            gpgv=dict(type="str", default="gpgv"),
            force=dict(type="bool", default=False),
            require_signed_digests=dict(type="bool", default=True),
            timeout=dict(type="int", default=60),
        ),
        supports_check_mode=True,
    )
    workdir = tempfile.mkdtemp(prefix="gse-stage3-")
    try:
        result = run(module, workdir)
    except Refused as exc:
        fields = dict(exc.fields)
        fields.setdefault("changed", False)
        module.fail_json(msg="stage3 refused: " + exc.msg, **fields)
    except dl.DownloadError as exc:
        module.fail_json(msg="stage3 download failed: " + exc.msg, url=exc.url, status=exc.status)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
