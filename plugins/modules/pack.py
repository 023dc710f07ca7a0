#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pack the build root into the image tarball and write SHA512SUMS (part K, garchive)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: pack
short_description: Pack a root directory into a compressed tarball with SHA512SUMS
version_added: 0.1.0
description:
  - Runs C(tar --numeric-owner --xattrs --xattrs-include=* --acls --one-file-system --sort=name) on the root,
    piped into C(zstd -T0) or C(xz -T0); the compressed stream is hashed (SHA512) while it is written, into a
    temporary file renamed over O(dest) only on success.
  - Writes C(SHA512SUMS) (sha512sum format, basenames) next to O(dest), covering the tarball, O(checksum_files)
    and the files it already listed that still exist next to O(dest) (their digests are refreshed).
  - Refuses when anything is mounted at or under the root, and when O(dest) lies inside the root.
  - With O(signing_key), the tarball is signed in the same pass (C(gpg --batch --yes --pinentry-mode loopback
    --homedir H --local-user KEY --status-fd 1 --armor --detach-sign --output TMP) reading a copy of the
    compressed stream on stdin), so the tarball is not read a second time. C(O(dest).asc) is written, by rename, only
    when tar, the compressor and gpg all succeeded and gpg's C(SIG_CREATED) status line names the signing
    key (gpg-agent checks each signature it creates). Part L verifies every signature with gpgv before
    anything is published, and M(gse.stateless.sign) verifies with gpgv any signature it finds.
  - With O(signing_key), C(SHA512SUMS) is signed too whenever this run writes it (C(gpg ... --status-fd 1 --armor
    --detach-sign --output .SHA512SUMS.asc.partial SHA512SUMS), renamed on the same proof), so that the
    sign step has nothing left to do for the files packed here.
  - When the tarball or C(SHA512SUMS) is written again, its previous signature (C(.asc)) is removed before the
    new file takes its place, so no signature ever stands next to a file it does not cover.
  - Idempotent. The inputs that shape the tarball (root, excludes, compression, level, tar options) are
    recorded in C(.<dest name>.pack.json) next to O(dest); when O(dest) exists, that record matches and
    O(force) is false, the tarball is not packed again (SHA512SUMS is still brought up to date).
options:
  root:
    description: The root directory to pack.
    type: path
    required: true
  dest:
    description: The tarball to write; its name must end in C(.tar.zst) for zstd or C(.tar.xz) for xz.
    type: path
    required: true
  compression:
    description: The compressor.
    type: str
    choices: [zstd, xz]
    default: zstd
  level:
    description: Compression level (zstd 1..19, default 3; xz 0..9, default 6).
    type: int
  excludes:
    description:
      - Entries left out, relative to the root (the C(--build-minimal) list and the cleanup entries).
        Shell wildcards; C(*) may cross C(/). A directory pattern leaves out the directory and its content.
    type: list
    elements: str
    default: []
  checksum_files:
    description: Further files in the directory of O(dest) (for example C(build-report.json)) that SHA512SUMS covers.
    type: list
    elements: str
    default: []
  force:
    description: Pack again even when the recorded inputs match (C(--enforce=garchive)).
    type: bool
    default: false
  signing_key:
    description:
      - Sign the tarball while it is packed with this key (fingerprint, key id or user id; it must match
        exactly one secret key of O(gnupghome)). Only a tarball packed by this run is signed here; an
        existing one is left to M(gse.stateless.sign). Keys used this way need no passphrase (stdin carries
        the data); a key with a passphrase makes gpg fail and nothing is written.
      - The same name as in M(gse.stateless.sign) and M(gse.stateless.publish); C(sign_key) is its former
        name, kept as an alias.
    type: str
    aliases: [sign_key]
  gnupghome:
    description: The GnuPG home holding the secret key of O(signing_key).
    type: path
attributes:
  check_mode:
    support: full
    description: Says whether the tarball would be packed; writes nothing.
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Pack the system
  gse.stateless.pack:
    root: "{{ gse_workdir }}"
    dest: "{{ gse_cdistdir }}/images/{{ gse_build_id }}/image.tar.zst"
    excludes: "{{ gse_minimal_entries if gse_build_minimal else [] }}"
    force: "{{ gse_enforce | gse.stateless.enforced('garchive', gse_lawful_good) }}"

- name: Pack and sign in one pass
  gse.stateless.pack:
    root: "{{ gse_workdir }}"
    dest: "{{ gse_image_dir }}/image.tar.zst"
    signing_key: "{{ gse_signing_key }}"
    gnupghome: "{{ gse_gnupghome }}"
"""

RETURN = r"""
path:
  description: The tarball.
  type: str
  returned: always
size:
  description: Bytes of the tarball.
  type: int
  returned: when the tarball exists
sha512:
  description: SHA512 of the tarball (hex).
  type: str
  returned: when the tarball exists
duration:
  description: Seconds spent packing (0 when nothing was packed).
  type: float
  returned: always
packed:
  description: Whether the tarball was (or in check mode would be) packed by this run.
  type: bool
  returned: always
sums:
  description: The SHA512SUMS file.
  type: str
  returned: always
signed:
  description:
    - Files this run signed (the tarball in the same pass, C(SHA512SUMS) after writing it); in check mode the
      tarball when it would be packed and signed. Their signatures are C(<file>.asc).
  type: list
  elements: str
  returned: always
fingerprint:
  description: Primary key fingerprint of the signing key.
  type: str
  returned: when O(signing_key) is given (not in check mode)
"""

import hashlib
import json
import os

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gse.stateless.plugins.module_utils import openpgp_sign as pgp
from ansible_collections.gse.stateless.plugins.module_utils import safe_paths, tar_stream
from ansible_collections.gse.stateless.plugins.module_utils.atomic_file import fsync_dir, write_atomic
from ansible_collections.gse.stateless.plugins.module_utils.checksums import format_sums, parse_sums, sha512_file

SUMS = "SHA512SUMS"


def record_path(dest):
    return os.path.join(os.path.dirname(dest), ".%s.pack.json" % os.path.basename(dest))


def fingerprint(tar_cmd, comp_cmd):
    """Digest of everything that shapes the tarball: the exact commands (root, options, excludes, level)."""
    return hashlib.sha256(json.dumps([tar_cmd, comp_cmd]).encode()).hexdigest()


def read_record(dest):
    try:
        with open(record_path(dest), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def up_to_date(dest, record, fp):
    """The recorded tarball is still the one at dest (same inputs, same size)."""
    if not record or record.get("fingerprint") != fp:
        return False
    try:
        return os.stat(dest).st_size == record.get("size")
    except FileNotFoundError:
        return False


def refuse(module, root, dest):
    try:
        real = os.path.realpath(root)
        if not os.path.isdir(real):
            module.fail_json(msg="root %s is not a directory" % root)
    except OSError as e:
        module.fail_json(msg="root %s: %s" % (root, e))
    if real == "/":
        module.fail_json(msg="refusing to pack /")
    mounts = safe_paths.mounts_at_or_under(real)
    if mounts:
        module.fail_json(msg="refusing to pack %s: mounted at or under it: %s" % (real, ", ".join(mounts)),
                         mounts=mounts)
    dreal = os.path.realpath(os.path.dirname(dest))
    if dreal == real or dreal.startswith(real.rstrip("/") + "/"):
        module.fail_json(msg="dest %s lies inside the root %s" % (dest, real))
    return real


def discard(path):
    """Remove a file that must not stay: a partial file of an interrupted run, or a stale signature."""
    if os.path.lexists(path):
        os.unlink(path)


def pack_and_sign(module, tar_cmd, comp_cmd, dest, sign_key, home, key):
    """Stream the tarball (and its signature) into temporary files, then put them in place."""
    outdir = os.path.dirname(dest)
    if not os.path.isdir(outdir):
        os.makedirs(outdir, mode=0o755)
    tmp = os.path.join(outdir, ".%s.partial" % os.path.basename(dest))
    tmp_asc = os.path.join(outdir, ".%s.asc.partial" % os.path.basename(dest))
    discard(tmp)  # left by an interrupted run
    discard(tmp_asc)
    signer = fprs = primary = None
    if sign_key:
        primary, fprs = key
        signer = pgp.stream_sign_argv(home, sign_key, tmp_asc)
    try:
        streamed = tar_stream.stream_to_file(tar_cmd, comp_cmd, tmp, signer_cmd=signer)
    except tar_stream.PackError as e:
        discard(tmp_asc)
        module.fail_json(msg=e.msg, cmd=e.cmd, rc=e.rc, stdout="", stderr=e.stderr)
    except BaseException:
        discard(tmp_asc)  # interrupted: stream_to_file has removed tmp
        raise
    # gpg's own proof that it signed, with the key asked for.  Not followed by
    # gpgv here: it would read the whole tarball again only to hash the bytes
    # gpg has just hashed from the same buffer (and gpg-agent has checked the
    # signature against that digest).  Found signatures are verified with gpgv
    # by the sign module, and publish verifies every signature with gpgv before
    # anything is visible.
    if signer and not pgp.created_by(streamed.signer_status, fprs):
        discard(tmp)
        discard(tmp_asc)
        module.fail_json(msg="gpg reported no detached signature by key %s" % primary, cmd=signer, rc=0,
                         stdout=streamed.signer_status, stderr="")
    asc = dest + ".asc"
    # The old signature covers the old tarball: gone before the new tarball
    # takes its place; the new one follows the tarball.  An interruption in
    # between leaves a tarball without a signature, never a wrong pair.
    discard(asc)
    os.rename(tmp, dest)
    if signer:
        os.rename(tmp_asc, asc)
    fsync_dir(outdir)
    out = dict(changed=True, duration=round(streamed.seconds, 3), sha512=streamed.sha512, size=streamed.size,
               signed=[dest] if signer else [])
    return out


def run(module):
    p = module.params
    dest = os.path.abspath(p["dest"])
    suffix = tar_stream.COMPRESSORS[p["compression"]]
    if not dest.endswith(suffix):
        module.fail_json(msg="dest %s must end in %s for %s" % (dest, suffix, p["compression"]))
    root = refuse(module, p["root"], dest)
    try:
        comp_cmd = tar_stream.compressor_argv(p["compression"], p["level"])
    except ValueError as e:
        module.fail_json(msg=str(e))
    tar_cmd = tar_stream.tar_argv(root, p["excludes"])
    fp = fingerprint(tar_cmd, comp_cmd)
    record = read_record(dest)
    must_pack = p["force"] or not up_to_date(dest, record, fp)
    outdir = os.path.dirname(dest)
    sums_path = os.path.join(outdir, SUMS)
    result = dict(path=dest, sums=sums_path, packed=must_pack, duration=0.0, changed=False, signed=[])

    if module.check_mode:
        if not must_pack:
            result.update(size=record["size"], sha512=record["sha512"])
        elif p["sign_key"]:
            result["signed"] = [dest]
        result["changed"] = must_pack
        module.exit_json(**result)

    def cmd(argv, data=None):
        return module.run_command(argv, data=data, binary_data=True)

    key = None
    if p["sign_key"]:
        try:
            # Before packing: an unknown key fails at once, not after minutes of tar.
            key = pgp.signing_key(cmd, p["gnupghome"], p["sign_key"])
        except pgp.SignError as e:
            module.fail_json(**e.fail_args())
        result["fingerprint"] = key[0]

    if must_pack:
        result.update(pack_and_sign(module, tar_cmd, comp_cmd, dest, p["sign_key"], p["gnupghome"], key))
        record = dict(fingerprint=fp, sha512=result.pop("sha512"), size=result.pop("size"), tar=tar_cmd,
                      compressor=comp_cmd)
        write_atomic(record_path(dest), json.dumps(record, indent=1) + "\n")
    result.update(size=record["size"], sha512=record["sha512"])

    try:
        with open(sums_path, encoding="utf-8") as f:
            current = f.read()
    except FileNotFoundError:
        current = None
    # Files SHA512SUMS already covers stay covered (re-hashed) while they exist,
    # so a later pack call without checksum_files does not drop them again.
    try:
        listed = [n for n in parse_sums(current or "") if n != os.path.basename(dest)]
    except ValueError:
        listed = []
    entries = {os.path.basename(dest): record["sha512"]}
    for name in listed + p["checksum_files"]:
        if name in listed and not os.path.isfile(os.path.join(outdir, name)):
            continue
        path = name if os.path.isabs(name) else os.path.join(outdir, name)
        if os.path.dirname(os.path.abspath(path)) != outdir or not os.path.isfile(path):
            module.fail_json(msg="checksum file %s must be a file next to %s" % (name, dest))
        entries[os.path.basename(path)] = sha512_file(path)
    text = format_sums(entries)
    if current != text:
        discard(sums_path + ".asc")  # it covers the old content
        write_atomic(sums_path, text)
        result["changed"] = True
        if key:
            try:
                pgp.sign_file(cmd, p["gnupghome"], p["sign_key"], sums_path, key[1])
            except pgp.SignError as e:
                module.fail_json(**e.fail_args())
            result["signed"].append(sums_path)
    module.exit_json(**result)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            compression=dict(type="str", choices=["zstd", "xz"], default="zstd"),
            level=dict(type="int"),
            excludes=dict(type="list", elements="str", default=[]),
            checksum_files=dict(type="list", elements="str", default=[]),
            force=dict(type="bool", default=False),
            # A key name or fingerprint, not a secret.
            signing_key=dict(type="str", no_log=False, aliases=["sign_key"]),
            gnupghome=dict(type="path"),
        ),
        required_by=dict(signing_key=["gnupghome"]),
        supports_check_mode=True,
    )
    # run() reads the key under the name it had before the three signing
    # modules shared one.
    module.params["sign_key"] = module.params["signing_key"]
    run(module)


if __name__ == "__main__":
    main()
