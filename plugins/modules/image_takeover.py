#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Take the last image directory of an unchanged root over as this build's (part K, garchive)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: image_takeover
short_description: Take over the image directory of the last completed build of an unchanged root
version_added: 0.1.0
description:
  - A rebuild with nothing changed (M(gse.stateless.build_record) found the root and the inputs of parts A to J
    equal to the last completed build's) would pack, index, report and sign exactly what the last build's image
    directory already holds. This module records that directory beside the root and, in the next such rebuild,
    hard-links all of it into the new image directory in one call.
  - O(state=recorded) writes C(<root>.image.json) naming O(dest) as the image of O(build), with O(inputs)
    (the settings that shape the image directory besides the root) and the identity (inode, size and
    modification time; not the change time, which publishing's hard links set) of every file of O(dest).
  - O(state=taken_over) takes the recorded directory over into O(dest) only when the record names O(build),
    O(inputs) are equal to the recorded ones, every recorded file is still the very file recorded (anything
    that wrote, replaced or removed one changes its identity) and every file but the tarball still has the
    digest C(SHA512SUMS) gives it (the tarball is not read again). The files (the signed tarball, the chunk index,
    the tarball's blob index, the build report, C(SHA512SUMS) and the signatures, the controller) are hard-linked
    (copied across filesystems), and the record is written again for O(dest). Otherwise nothing is written, RV(taken_over) is
    false and RV(reason) says why; the caller then packs as for any build.
  - The build report keeps the version of the build that made the image (its digest is in the signed
    C(SHA512SUMS)).
  - With O(signing_key), the primary fingerprint of that key in the secret keyring of O(gnupghome) is recorded
    and, in a take-over, asked again (one C(gpg --list-secret-keys) call) and compared. Another key under the
    same name or user ID (a key replaced in the keyring) did not make the recorded signatures, so nothing is
    taken over and the caller packs and signs again. A record without a fingerprint, or a key that is not
    (or not exactly once) in the keyring, is not taken over either.
options:
  root:
    description: The build root; the record is C(<root>.image.json).
    type: path
    required: true
  dest:
    description: This build's image directory.
    type: path
    required: true
  build:
    description: The completed build whose root this is (the build named in C(<root>.built.json)).
    type: str
    required: true
  inputs:
    description: Everything besides the root that shapes the image directory (compression, excludes, signing,
      controller, the fields of the build report).
    type: raw
    required: true
  state:
    description: Record O(dest) as the image of O(build), or take the recorded image over into O(dest).
    type: str
    choices: [recorded, taken_over]
    default: taken_over
  store:
    description: The chunk store of the image's index. With O(state=taken_over), every chunk that the recorded
      C(image.caidx) names must still be in it (a chunk pruned since would leave the publication short).
    type: path
  report_copy:
    description: With O(state=taken_over), where the build report is copied as well (the build's log directory).
    type: path
  signing_key:
    description: The key that signs the image (a fingerprint, key ID or user ID, as C(gpg --local-user) takes
      it). Omitted when the image is not signed in this run.
    type: str
  gnupghome:
    description: The GnuPG home whose secret keyring holds O(signing_key).
    type: path
    default: /var/lib/gse/gnupg
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Take the last image over
  gse.stateless.image_takeover:
    root: /var/tmp/cdist/work
    dest: /var/tmp/cdist/images/20260101-1200
    build: 20260101-1100
    inputs: {compression: zstd, level: 3}
    signing_key: images@example.org
    store: /var/tmp/cdist/chunks
    report_copy: /var/log/gse/20260101-1200/build-report.json
  register: gse_image_taken_over

- name: Record the image of this build
  gse.stateless.image_takeover:
    root: /var/tmp/cdist/work
    dest: /var/tmp/cdist/images/20260101-1100
    build: 20260101-1100
    inputs: {compression: zstd, level: 3}
    signing_key: images@example.org
    state: recorded
"""

RETURN = r"""
taken_over:
  description: Whether the recorded image directory was (in check mode, would be) taken over into O(dest).
  type: bool
  returned: always
reason:
  description: Why nothing was taken over.
  type: str
  returned: when RV(taken_over) is false and O(state=taken_over)
src:
  description: The image directory taken over.
  type: str
  returned: when RV(taken_over) is true
files:
  description: The names of the files taken over (or recorded).
  type: list
  elements: str
  returned: when RV(taken_over) is true or O(state=recorded)
signatures_reused:
  description: The files of O(dest) whose signature (C(.asc)) was taken over with them.
  type: list
  elements: str
  returned: when RV(taken_over) is true
signer:
  description: The primary fingerprint of O(signing_key) (recorded, or compared with the recorded one).
  type: str
  returned: when O(signing_key) is given and the key was found
"""

import json
import os
import shutil

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gse.stateless.plugins.module_utils import caindex
from ansible_collections.gse.stateless.plugins.module_utils import openpgp_sign as pgp
from ansible_collections.gse.stateless.plugins.module_utils.atomic_file import fsync_dir, read_json_dict, write_atomic
from ansible_collections.gse.stateless.plugins.module_utils.checksums import parse_sums, sha512_file
from ansible_collections.gse.stateless.plugins.module_utils.command_error import SignError


def record_path(root):
    return os.path.abspath(root).rstrip("/") + ".image.json"


def file_id(path):
    """What tells that a file is still the one recorded: inode, size and modification time.

    Not the change time: publishing (part L) hard-links the files, which sets
    it without touching their content.
    """
    st = os.lstat(path)
    return [st.st_ino, st.st_size, st.st_mtime_ns]


def listing(directory):
    """{name: identity} of the regular files of an image directory (it has no subdirectories)."""
    return {n: file_id(os.path.join(directory, n)) for n in sorted(os.listdir(directory))
            if os.path.isfile(os.path.join(directory, n)) and not os.path.islink(os.path.join(directory, n))}


def read_record(root):
    return read_json_dict(record_path(root))


def write_record(root, dest, build, inputs, signer):
    files = listing(dest)
    data = dict(build=build, dir=dest, inputs=inputs, files=files, signer=signer)
    write_atomic(record_path(root), json.dumps(data, indent=1, sort_keys=True) + "\n", mode=0o644)
    return sorted(files)


def chunks_missing(index, store):
    """Whether the store lacks a chunk the index names (or the index cannot be read)."""
    try:
        _flags, _size, chunks = caindex.read_index(index)
    except (OSError, caindex.CaIndexError):
        return True
    return not all(os.path.isfile(caindex.chunk_path(store, c)) for c in set(chunks))


def wrong_digests(src, files):
    """The files SHA512SUMS covers, but the tarball, whose content does not match it (or all, when unreadable)."""
    try:
        with open(os.path.join(src, "SHA512SUMS"), encoding="utf-8") as f:
            sums = parse_sums(f.read())
    except (OSError, ValueError):
        return ["SHA512SUMS"]
    return [n for n, digest in sorted(sums.items())
            if not n.startswith("image.tar.") and (n not in files or sha512_file(os.path.join(src, n)) != digest)]


def signer_of(module):
    """The primary fingerprint of the signing key, None when no key is given; SignError when gpg finds none.

    The key's name (inputs' signing_key) does not tell the key: a key
    replaced in the keyring under the same user ID keeps the name, so the
    fingerprint is what is recorded and compared."""
    p = module.params
    if p["signing_key"] is None:
        return None
    return pgp.secret_key(module.run_command, p["gnupghome"], p["signing_key"])


def why_not(record, dest, build, inputs, store, signer):
    """None when the recorded image can be taken over into dest, else the reason.

    ``signer``: the signing key's fingerprint now (None: not signed in this run)."""
    if not record:
        return "no record of an image of this root"
    src = record.get("dir")
    if record.get("build") != build:
        return "the recorded image is of build %s, not %s" % (record.get("build"), build)
    if not isinstance(src, str) or os.path.abspath(src) == dest:
        return "the recorded image is this build's own directory"
    if json.dumps(record.get("inputs"), sort_keys=True) != json.dumps(inputs, sort_keys=True):
        return "the image's inputs changed"
    if record.get("signer") != signer:
        return "the signing key is %s, the recorded image's signatures are by %s" % (
            signer or "none", record.get("signer") or "no recorded key")
    files = record.get("files")
    if not isinstance(files, dict) or "SHA512SUMS" not in files:
        return "the record names no SHA512SUMS"
    try:
        if listing(src) != files:
            return "the files of %s are not those recorded" % src
    except OSError as e:
        return "cannot read %s: %s" % (src, e)
    bad = wrong_digests(src, files)
    if bad:
        return "%s of %s do not match SHA512SUMS" % (", ".join(bad), src)
    if "image.caidx" in files and (not store or chunks_missing(os.path.join(src, "image.caidx"), store)):
        return "the chunk store lacks chunks of the recorded index"
    if os.path.exists(dest) and os.listdir(dest):
        return "%s is not empty" % dest
    return None


def link_or_copy(src, dst):
    tmp = os.path.join(os.path.dirname(dst), ".%s.partial" % os.path.basename(dst))
    if os.path.lexists(tmp):
        os.unlink(tmp)
    try:
        os.link(src, tmp)
    except OSError:  # another filesystem
        shutil.copy2(src, tmp)
    os.rename(tmp, dst)


def take_over(module, record, dest, build, inputs, report_copy, signer):
    src = record["dir"]
    names = sorted(record["files"])
    signed = [os.path.join(dest, n[:-4]) for n in names if n.endswith(".asc") and n[:-4] in record["files"]]
    result = dict(changed=True, taken_over=True, src=src, files=names, signatures_reused=signed)
    if signer:
        result["signer"] = signer
    if module.check_mode:
        module.exit_json(**result)
    try:
        os.makedirs(dest, mode=0o755, exist_ok=True)
        # The signatures last: none stands in dest before the file it covers.
        for n in sorted(names, key=lambda n: n.endswith(".asc")):
            link_or_copy(os.path.join(src, n), os.path.join(dest, n))
        fsync_dir(dest)
        if report_copy and "build-report.json" in names:
            shutil.copyfile(os.path.join(dest, "build-report.json"), report_copy)
            os.chmod(report_copy, 0o640)
        # Linking changed the files' change times: the record names them as they are now.
        write_record(module.params["root"], dest, build, inputs, signer)
    except OSError as e:
        module.fail_json(msg="cannot take over %s as %s: %s" % (src, dest, e))
    module.exit_json(**result)


def run(module):
    p = module.params
    dest = os.path.abspath(p["dest"])
    if p["state"] == "recorded":
        if not os.path.isdir(dest):
            module.fail_json(msg="%s is not a directory" % dest)
        try:
            signer = signer_of(module)
        except SignError as e:
            # The image was just signed by this key: not finding it now is an error, not a reason.
            module.fail_json(**e.fail_args())
        extra = dict(signer=signer) if signer else {}
        if module.check_mode:
            module.exit_json(changed=True, taken_over=False, files=sorted(listing(dest)), **extra)
        try:
            files = write_record(p["root"], dest, p["build"], p["inputs"], signer)
        except OSError as e:
            module.fail_json(msg="cannot record %s: %s" % (dest, e))
        module.exit_json(changed=True, taken_over=False, files=files, **extra)
    record = read_record(p["root"])
    try:
        signer = signer_of(module)
    except SignError as e:
        # Packing asks for the key again and fails with gpg's answer.
        module.exit_json(changed=False, taken_over=False, reason=e.msg)
    reason = why_not(record, dest, p["build"], p["inputs"], p["store"], signer)
    if reason:
        module.exit_json(changed=False, taken_over=False, reason=reason)
    take_over(module, record, dest, p["build"], p["inputs"], p["report_copy"], signer)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            build=dict(type="str", required=True),
            inputs=dict(type="raw", required=True),
            state=dict(type="str", choices=["recorded", "taken_over"], default="taken_over"),
            store=dict(type="path"),
            report_copy=dict(type="path"),
            signing_key=dict(type="str", no_log=False),
            gnupghome=dict(type="path", default="/var/lib/gse/gnupg"),
        ),
        supports_check_mode=True,
    )
    run(module)


if __name__ == "__main__":
    main()
