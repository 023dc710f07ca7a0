#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Make the casync chunk index of the build root beside the tarball (part K, garchive)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: chunk_index
short_description: Make a casync chunk index of a root directory and add its chunks to a chunk store
version_added: 0.2.0
description:
  - Runs C(casync --exclude-file=no --exclude-nodump=no --exclude-submounts=yes --with=unix
    --with=nsec-time --without=user-names --with=xattrs --with=acl --with=fcaps --store=STORE make TMP ROOT),
    so the index records what the tarball records (numeric owners, permissions, nanosecond mtimes, symlinks,
    device nodes, xattrs, ACLs, file capabilities) and every entry of the root, then renames C(TMP) over
    O(dest).
  - The chunks go to O(store), a casync chunk store the builds share (C(<4 hex>/<sha256>.cacnk)); part L
    (M(gse.stateless.publish)) copies the chunks an index names into the publication tree.
  - With O(excludes), the index is made from a view of the root without those entries, so that it holds
    exactly what M(gse.stateless.pack) packs with the same O(excludes). The view is a hard-linked copy of the root
    (C(cp -a --link ROOT VIEW), next to the root, on its filesystem) from which the matching entries are
    removed and whose directory mtimes are put back. The view is removed afterwards.
  - Refuses a root that holds C(.gse-installed) at its top (the controller's own record that a system
    partition holds a complete, verified system, written only by the controller and never by an image),
    a root with anything mounted at or under it, and a O(dest) inside the root. Nothing is written then.
  - C(changed) is true when O(dest) did not exist or its bytes changed; making the same index again leaves
    O(dest) untouched.
  - Also returns C(root_bytes), the space the unpacked root needs (apparent sizes of its regular files plus
    4096 bytes per directory, symlink or special entry), which the signed pointer carries so that a client
    refuses an image that does not fit before it wipes anything.
options:
  root:
    description: The root directory to index.
    type: path
    required: true
  dest:
    description: The index to write (C(image.caidx) in the image directory).
    type: path
    required: true
  store:
    description: The casync chunk store the chunks are added to; created when missing.
    type: path
    required: true
  excludes:
    description:
      - Entries left out, relative to the root, exactly as M(gse.stateless.pack) takes them (shell wildcards;
        C(*) may cross C(/); a directory pattern leaves out the directory and its content).
    type: list
    elements: str
    default: []
attributes:
  check_mode:
    support: full
    description: Checks the root and says that the index would be made; writes nothing.
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Make the chunk index beside the tarball
  gse.stateless.chunk_index:
    root: "{{ gse_workdir }}"
    dest: "{{ gse_image_dir }}/image.caidx"
    store: "{{ gse_cdistdir }}/chunks"
    excludes: "{{ gse_pack_excludes | default([]) }}"
"""

RETURN = r"""
path:
  description: The index.
  type: str
  returned: always
store:
  description: The chunk store.
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
digest:
  description: casync's digest of the archive the index describes.
  type: str
  returned: when the index was made
chunks:
  description: Number of chunks the index names.
  type: int
  returned: when the index was made
archive_size:
  description: Bytes of the archive the chunks make up.
  type: int
  returned: when the index was made
root_bytes:
  description: Bytes the unpacked root needs (regular files' apparent sizes plus 4096 per other entry).
  type: int
  returned: always
duration:
  description: Seconds spent by casync.
  type: float
  returned: always
"""

import os
import shutil
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gse.stateless.plugins.module_utils import caindex, safe_paths, tar_stream
from ansible_collections.gse.stateless.plugins.module_utils.atomic_file import fsync_dir
from ansible_collections.gse.stateless.plugins.module_utils.checksums import sha512_file


def discard(path):
    if os.path.lexists(path):
        os.unlink(path)


def check_root(module, root, dest, store):
    """The real root; fails (nothing written) for a root that must not be indexed."""
    real = os.path.realpath(root)
    if not os.path.isdir(real):
        module.fail_json(msg="root %s is not a directory" % root)
    if real == "/":
        module.fail_json(msg="refusing to index /")
    records = caindex.controller_records(real)
    if records:
        module.fail_json(msg="refusing to index %s: it holds %s, the controller's own record of a complete "
                             "system; an image must never carry it (remove it from the root)"
                             % (real, ", ".join(records)), records=records)
    mounts = safe_paths.mounts_at_or_under(real)
    if mounts:
        module.fail_json(msg="refusing to index %s: mounted at or under it: %s" % (real, ", ".join(mounts)),
                         mounts=mounts)
    for what, path in (("dest", os.path.dirname(dest)), ("store", store)):
        inside = os.path.realpath(path)
        if inside == real or inside.startswith(real.rstrip("/") + "/"):
            module.fail_json(msg="%s %s lies inside the root %s" % (what, path, real))
    return real


def patterns(excludes):
    """The member-name patterns pack gives tar (``./path``), so both leave out the same entries."""
    return [arg[len("--exclude="):] for arg in tar_stream.exclude_args(excludes)]


def remove_excluded(view, root, pats):
    """Remove the entries of ``view`` whose member name matches; put back the mtimes of their parents."""
    touched = set()
    for dirpath, dirnames, filenames in os.walk(view):
        rel_dir = os.path.relpath(dirpath, view)
        member_dir = "." if rel_dir == "." else "./" + rel_dir
        for name in list(dirnames) + filenames:
            member = member_dir + "/" + name
            if not caindex.excluded(member, pats):
                continue
            path = os.path.join(dirpath, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path)
                dirnames.remove(name)
            else:
                os.unlink(path)
            touched.add(rel_dir)
    for rel in touched:
        st = os.lstat(os.path.join(root, rel))
        os.utime(os.path.join(view, rel), ns=(st.st_atime_ns, st.st_mtime_ns), follow_symlinks=False)


def make_view(module, root, excludes):
    """A hard-linked copy of ``root`` without the excluded entries, next to it; returns its path."""
    view = os.path.join(os.path.dirname(root), ".%s.index-view" % os.path.basename(root))
    drop_view(module, view)  # left by an interrupted run
    argv = ["cp", "-a", "--link", "--no-target-directory", root, view]
    rc, out, err = module.run_command(argv)
    if rc != 0:
        drop_view(module, view)
        module.fail_json(msg="cannot make the view of %s without the excluded entries" % root, cmd=argv, rc=rc,
                         stdout=out, stderr=err)
    remove_excluded(view, root, patterns(excludes))
    return view


def drop_view(module, view):
    if not os.path.lexists(view):
        return
    # Only ever our own hard-linked copy: never follow a mount out of it.
    mounts = safe_paths.mounts_at_or_under(os.path.realpath(view))
    if mounts:
        module.fail_json(msg="refusing to remove %s: mounted at or under it: %s" % (view, ", ".join(mounts)))
    shutil.rmtree(view)


def make(module, root, dest, store, excludes):
    outdir = os.path.dirname(dest)
    os.makedirs(outdir, mode=0o755, exist_ok=True)
    os.makedirs(store, mode=0o755, exist_ok=True)
    # casync wants the .caidx suffix on the file it creates.
    tmp = os.path.join(outdir, ".partial-" + os.path.basename(dest))
    discard(tmp)
    view = make_view(module, root, excludes) if excludes else None
    try:
        argv = caindex.make_argv(store, tmp, view or root)
        start = time.monotonic()
        rc, out, err = module.run_command(argv)
        seconds = time.monotonic() - start
        if rc != 0:
            discard(tmp)
            module.fail_json(msg="casync make failed", cmd=argv, rc=rc, stdout=out, stderr=err)
        root_bytes = caindex.root_bytes(root, patterns(excludes))
    except BaseException:
        discard(tmp)
        raise
    finally:
        if view:
            drop_view(module, view)
    try:
        _flags, archive_size, chunks = caindex.read_index(tmp)
    except caindex.CaIndexError as e:
        discard(tmp)
        module.fail_json(msg=str(e), cmd=argv, rc=rc, stdout=out, stderr=err)
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    changed = not (os.path.isfile(dest) and sha512_file(dest) == sha512_file(tmp))
    if changed:
        os.rename(tmp, dest)
        fsync_dir(outdir)
    else:
        discard(tmp)
    return dict(changed=changed, sha512=sha512_file(dest), size=os.path.getsize(dest), digest=out.strip(),
                chunks=len(chunks), archive_size=archive_size, root_bytes=root_bytes,
                duration=round(seconds, 3))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            store=dict(type="path", required=True),
            excludes=dict(type="list", elements="str", default=[]),
        ),
        supports_check_mode=True,
    )
    p = module.params
    dest, store = os.path.abspath(p["dest"]), os.path.abspath(p["store"])
    root = check_root(module, p["root"], dest, store)
    result = dict(path=dest, store=store, duration=0.0)
    if module.check_mode:
        module.exit_json(changed=True, root_bytes=caindex.root_bytes(root, patterns(p["excludes"])), **result)
    result.update(make(module, root, dest, store, p["excludes"]))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
