#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make the casync blob index of the image tarball (part K, garchive)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: tarball_index
short_description: Make the casync blob index (C(.caibx)) of an image tarball
version_added: 0.2.0
description:
  - Runs C(casync --digest=sha256 --chunk-size=1048576:4194304:16777216 --compression=zstd --store=STORE make
    TMP.caibx TARBALL) and renames C(TMP.caibx) over O(dest). The index cuts the tarball, as it lies on disk
    (compressed), into chunks of 1 MiB to 16 MiB (4 MiB on average) and names each by the SHA-256 of its bytes.
  - A client without an installed system (first install, wipe) cuts the published tarball into these chunks as
    it arrives and checks every chunk against the signed index before a byte of it reaches tar. SHA-256 because
    the client's CPU hashes it fastest and its initramfs has C(sha256sum); large chunks because they cost the
    client less work per chunk and it holds at most three of them in memory.
  - casync also writes a compressed copy of every chunk into a chunk store. Nothing publishes that copy (the
    client reads the tarball itself), so the store is a private directory made under O(tmpdir) and removed
    afterwards, after checking that nothing is mounted in it.
  - The index is a function of the tarball's bytes and of the options above, so the same tarball gives a
    byte-identical index. C(changed) is true when O(dest) did not exist or its bytes changed; making the same
    index again leaves O(dest) untouched.
  - Fails, with casync's command line, exit code and output, when casync fails or writes an index that does
    not describe exactly the tarball's size; nothing is written to O(dest) then.
options:
  tarball:
    description: The image tarball (C(image.tar.zst) or C(image.tar.xz)).
    type: path
    required: true
  dest:
    description: The index to write; must end in C(.caibx) (C(<tarball>.caibx) in the image directory).
    type: path
    required: true
  tmpdir:
    description:
      - Where the private directory for casync's throwaway chunk store is made. Default the directory that
        holds the image directory (the same filesystem as the tarball, which the store needs room on).
    type: path
  casync:
    description: The casync program.
    type: path
    default: casync
attributes:
  check_mode:
    support: full
    description: Checks the tarball and says that the index would be made; writes nothing.
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Make the blob index of the image tarball
  gse.stateless.tarball_index:
    tarball: "{{ gse_image_dir }}/image.tar.zst"
    dest: "{{ gse_image_dir }}/image.tar.zst.caibx"
"""

RETURN = r"""
path:
  description: The index.
  type: str
  returned: always
sha512:
  description: SHA512 of the index file (hex).
  type: str
  returned: when the index was made
size:
  description: Bytes of the index file.
  type: int
  returned: when the index was made
chunks:
  description: Number of chunks (byte ranges of the tarball) the index names.
  type: int
  returned: when the index was made
tarball_size:
  description: Bytes of the tarball, which the last chunk ends at.
  type: int
  returned: when the index was made
digest:
  description: casync's digest of the tarball.
  type: str
  returned: when the index was made
duration:
  description: Seconds spent by casync.
  type: float
  returned: always
"""

import os
import tempfile
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gse.stateless.plugins.module_utils import caindex, safe_paths
from ansible_collections.gse.stateless.plugins.module_utils.atomic_file import discard, settle
from ansible_collections.gse.stateless.plugins.module_utils.checksums import sha512_file


def drop_store(module, path):
    """Remove the module's own throwaway store; never anything mounted in it."""
    mounts = safe_paths.remove_unmounted(path)
    if mounts:
        module.fail_json(msg="refusing to remove %s: mounted at or under it: %s" % (path, ", ".join(mounts)))


def make(module, tarball, dest, tmpdir):
    outdir = os.path.dirname(dest)
    # casync tells a blob index from an archive index by the suffix of the file it creates.
    tmp = os.path.join(outdir, ".partial-" + os.path.basename(dest))
    discard(tmp)
    scratch = tempfile.mkdtemp(prefix=".tarball-index-", dir=tmpdir)
    try:
        argv = caindex.blob_index_argv(os.path.join(scratch, "store"), tmp, tarball, module.params["casync"])
        start = time.monotonic()
        rc, out, err = module.run_command(argv)
        seconds = time.monotonic() - start
        if rc != 0:
            discard(tmp)
            module.fail_json(msg="casync make failed", cmd=argv, rc=rc, stdout=out, stderr=err)
    except BaseException:
        discard(tmp)
        raise
    finally:
        drop_store(module, scratch)
    tarball_size = os.path.getsize(tarball)
    try:
        _flags, table = caindex.read_table(tmp)
        end = table[-1][1] if table else 0
        if end != tarball_size:
            raise caindex.CaIndexError("%s ends at byte %d, the tarball has %d" % (tmp, end, tarball_size))
    except caindex.CaIndexError as e:
        discard(tmp)
        module.fail_json(msg=str(e), cmd=argv, rc=rc, stdout=out, stderr=err)
    changed = settle(tmp, dest)
    return dict(changed=changed, sha512=sha512_file(dest), size=os.path.getsize(dest), chunks=len(table),
                tarball_size=tarball_size, digest=out.strip(), duration=round(seconds, 3))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            tarball=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            tmpdir=dict(type="path"),
            casync=dict(type="path", default="casync"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    tarball, dest = os.path.abspath(p["tarball"]), os.path.abspath(p["dest"])
    if not os.path.isfile(tarball):
        module.fail_json(msg="tarball %s is not a file" % p["tarball"])
    if not dest.endswith(caindex.BLOB_INDEX_SUFFIX):
        module.fail_json(msg="dest %s must end in %s (casync makes a blob index by that name only)"
                             % (p["dest"], caindex.BLOB_INDEX_SUFFIX))
    if not os.path.isdir(os.path.dirname(dest)):
        module.fail_json(msg="the directory of dest %s does not exist" % p["dest"])
    tmpdir = os.path.abspath(p["tmpdir"]) if p["tmpdir"] else os.path.dirname(os.path.dirname(dest))
    if not os.path.isdir(tmpdir):
        module.fail_json(msg="tmpdir %s is not a directory" % tmpdir)
    result = dict(path=dest, duration=0.0)
    if module.check_mode:
        module.exit_json(changed=True, **result)
    result.update(make(module, tarball, dest, tmpdir))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
