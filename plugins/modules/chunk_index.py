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
  - With O(tarball) (what part K does), the index is made of the root as that tarball presents it. The
    tarball, packed from O(root) by M(gse.stateless.pack), is extracted (C(tar --extract --numeric-owner
    --xattrs --xattrs-include=* --acls --same-permissions --same-owner)) into a view next to the root, and
    the view is indexed. So the index holds exactly what the tarball holds, with the same excludes and the
    same modification times clamped to SOURCE_DATE_EPOCH, and a client installing from the index gets
    the system a tarball install gives. The root itself is only read, never touched; its inodes keep their
    change times, so M(gse.stateless.pack) can take over an unchanged root's tarball at the next build.
    The view is removed afterwards.
  - With O(tarball), the index is reused when the same tarball (by SHA-512) was indexed with the same casync
    options before; the recorded index (C(<root>.indexed.json), beside the root) is hard-linked (copied across
    filesystems) to O(dest) when it is still the very file made then (inode, size, modification and change
    time) and the store still holds every chunk it names. casync's index is a function of the tree it reads,
    and the view is a function of the tarball's bytes, so the index would come out byte for byte the same.
    RV(reused) then names the source.
  - With O(excludes) and no O(tarball), the index is made from a view of the root without those entries, so
    that it holds exactly what M(gse.stateless.pack) packs with the same O(excludes). That view is a
    hard-linked copy of the root (C(cp -a --link ROOT VIEW), next to the root, on its filesystem) from which
    the matching entries are removed and whose directory mtimes are put back; linking sets the change time of
    every inode of the root. The view is removed afterwards.
  - Refuses a root that holds C(.gse-installed) at its top (the controller's own record that a system
    partition holds a complete, verified system, written only by the controller and never by an image),
    a root with anything mounted at or under it, and a O(dest) inside the root. Nothing is written then.
    With O(tarball), a tarball that carries C(.gse-installed) is refused the same way (checked in the view).
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
  tarball:
    description:
      - The image tarball packed from O(root) (C(.tar.zst) or C(.tar.xz)); the index is made of the tree it
        holds. Excludes are then already applied, so O(excludes) must stay empty.
    type: path
attributes:
  check_mode:
    support: full
    description: Checks the root and says that the index would be made; writes nothing.
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Make the chunk index of the root as the tarball presents it
  gse.stateless.chunk_index:
    root: "{{ gse_workdir }}"
    tarball: "{{ gse_image_dir }}/image.tar.zst"
    dest: "{{ gse_image_dir }}/image.caidx"
    store: "{{ gse_cdistdir }}/chunks"

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
  description: Seconds spent by casync (0 when the index was reused).
  type: float
  returned: always
reused:
  description: The earlier index of the same tarball, taken over (hard-linked) instead of indexing again.
  type: str
  returned: when O(tarball) was indexed before with the same options and that index is intact
"""

import hashlib
import json
import os
import shutil
import time

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gse.stateless.plugins.module_utils import caindex, safe_paths, tar_stream
from ansible_collections.gse.stateless.plugins.module_utils.atomic_file import discard, fsync_dir, read_json_dict, settle, write_atomic
from ansible_collections.gse.stateless.plugins.module_utils.checksums import sha512_file


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


def view_path(root):
    """Where the view of the root is made: next to the root, on its filesystem."""
    return os.path.join(os.path.dirname(root), ".%s.index-view" % os.path.basename(root))


def make_view(module, root, excludes):
    """A hard-linked copy of ``root`` without the excluded entries, next to it; returns its path."""
    view = view_path(root)
    drop_view(module, view)  # left by an interrupted run
    argv = ["cp", "-a", "--link", "--no-target-directory", root, view]
    rc, out, err = module.run_command(argv)
    if rc != 0:
        drop_view(module, view)
        module.fail_json(msg="cannot make the view of %s without the excluded entries" % root, cmd=argv, rc=rc,
                         stdout=out, stderr=err)
    remove_excluded(view, root, patterns(excludes))
    return view


def tarball_view(module, root, tarball):
    """The tree ``tarball`` holds, extracted next to ``root``; returns its path.

    Extracting the image rather than linking the root gives casync the very
    metadata the tarball stores (modification times clamped to
    SOURCE_DATE_EPOCH, excludes applied) without touching a single inode of
    the root (a hard link would set its change time, and pack would then
    see a changed root at every build).
    """
    view = view_path(root)
    drop_view(module, view)  # left by an interrupted run
    os.mkdir(view, 0o700)
    argv = caindex.extract_argv(tarball, view)
    rc, out, err = module.run_command(argv)
    if rc != 0:
        drop_view(module, view)
        module.fail_json(msg="cannot extract %s to index it" % tarball, cmd=argv, rc=rc, stdout=out, stderr=err)
    records = caindex.controller_records(view)
    if records:
        drop_view(module, view)
        module.fail_json(msg="refusing to index %s: it holds %s, the controller's own record of a complete "
                             "system; an image must never carry it" % (tarball, ", ".join(records)),
                         records=records)
    return view


def drop_view(module, view):
    """Remove the module's own copy of the root; never anything mounted in it."""
    mounts = safe_paths.remove_unmounted(view)
    if mounts:
        module.fail_json(msg="refusing to remove %s: mounted at or under it: %s" % (view, ", ".join(mounts)))


def record_path(root):
    """Beside the root (like pack's record): the last index made of a tarball of this root."""
    return root.rstrip("/") + ".indexed.json"


def options_fingerprint(store):
    """Everything but the tree that shapes the index: casync's options and the store."""
    return hashlib.sha256(json.dumps(caindex.make_argv(store, "", "")).encode()).hexdigest()


def file_id(path):
    """What tells that a file is still the one recorded: inode, size, modification and change time."""
    st = os.stat(path)
    return [st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns]


def read_record(root):
    return read_json_dict(record_path(root))


def reusable(record, tarball_sha512, fingerprint, store):
    """The recorded index when it was made of the same tarball with the same options and is still intact."""
    if not record or record.get("tarball_sha512") != tarball_sha512 or record.get("fingerprint") != fingerprint:
        return None
    index = record.get("index")
    try:
        if file_id(index) != record.get("index_id"):
            return None
        _flags, _size, chunks = caindex.read_index(index)
    except (OSError, TypeError, caindex.CaIndexError):
        return None
    # A chunk pruned from the store since would leave the publication short.
    if not all(os.path.isfile(caindex.chunk_path(store, c)) for c in set(chunks)):
        return None
    return index


def write_record(root, data):
    write_atomic(record_path(root), json.dumps(data, indent=1) + "\n", mode=0o644, unique=True)


def take_over(module, index, dest):
    """Put the recorded index at dest (a hard link); changed when dest did not hold those bytes."""
    if os.path.isfile(dest) and os.path.samefile(index, dest):
        return False
    changed = not (os.path.isfile(dest) and sha512_file(dest) == sha512_file(index))
    tmp = os.path.join(os.path.dirname(dest), ".partial-" + os.path.basename(dest))
    discard(tmp)
    try:
        os.link(index, tmp)
    except OSError:  # another filesystem
        shutil.copyfile(index, tmp)
    os.rename(tmp, dest)
    fsync_dir(os.path.dirname(dest))
    return changed


def make(module, root, dest, store, excludes, tarball=None):
    outdir = os.path.dirname(dest)
    os.makedirs(outdir, mode=0o755, exist_ok=True)
    os.makedirs(store, mode=0o755, exist_ok=True)
    fingerprint = tarball_sha512 = None
    if tarball:
        fingerprint, tarball_sha512 = options_fingerprint(store), sha512_file(tarball)
        record = read_record(root)
        index = reusable(record, tarball_sha512, fingerprint, store)
        if index:
            changed = take_over(module, index, dest)
            write_record(root, dict(record, index=dest, index_id=file_id(dest)))
            return dict(changed=changed, reused=index, duration=0.0,
                        **{k: record[k] for k in ("sha512", "size", "digest", "chunks", "archive_size",
                                                  "root_bytes")})
    # casync wants the .caidx suffix on the file it creates.
    tmp = os.path.join(outdir, ".partial-" + os.path.basename(dest))
    discard(tmp)
    if tarball:
        view = tarball_view(module, root, tarball)
    else:
        view = make_view(module, root, excludes) if excludes else None
    try:
        argv = caindex.make_argv(store, tmp, view or root)
        start = time.monotonic()
        rc, out, err = module.run_command(argv)
        seconds = time.monotonic() - start
        if rc != 0:
            discard(tmp)
            module.fail_json(msg="casync make failed", cmd=argv, rc=rc, stdout=out, stderr=err)
        root_bytes = caindex.root_bytes(view) if tarball else caindex.root_bytes(root, patterns(excludes))
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
    changed = settle(tmp, dest)
    result = dict(changed=changed, sha512=sha512_file(dest), size=os.path.getsize(dest), digest=out.strip(),
                  chunks=len(chunks), archive_size=archive_size, root_bytes=root_bytes,
                  duration=round(seconds, 3))
    if tarball:
        write_record(root, dict(tarball_sha512=tarball_sha512, fingerprint=fingerprint, index=dest,
                                index_id=file_id(dest),
                                **{k: result[k] for k in ("sha512", "size", "digest", "chunks", "archive_size",
                                                          "root_bytes")}))
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            dest=dict(type="path", required=True),
            store=dict(type="path", required=True),
            excludes=dict(type="list", elements="str", default=[]),
            tarball=dict(type="path"),
        ),
        mutually_exclusive=[("tarball", "excludes")],
        supports_check_mode=True,
    )
    p = module.params
    dest, store = os.path.abspath(p["dest"]), os.path.abspath(p["store"])
    root = check_root(module, p["root"], dest, store)
    tarball = os.path.abspath(p["tarball"]) if p["tarball"] else None
    if tarball and not os.path.isfile(tarball):
        module.fail_json(msg="tarball %s is not a file" % p["tarball"])
    result = dict(path=dest, store=store, duration=0.0)
    if module.check_mode:
        module.exit_json(changed=True, root_bytes=caindex.root_bytes(root, patterns(p["excludes"])), **result)
    result.update(make(module, root, dest, store, p["excludes"], tarball))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
