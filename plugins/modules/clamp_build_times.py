#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Clamp the times a build records in file contents to SOURCE_DATE_EPOCH (part K, before packing)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: clamp_build_times
short_description: Clamp the build times recorded inside Portage's package database and /etc/shadow
version_added: 0.2.0
description:
  - M(gse.stateless.pack) clamps the modification times tar stores; this module clamps the times that the build
    wrote into file contents, which tar cannot see, so that two builds of the same inputs in fresh work
    directories give the same image. Every value later than O(source_date_epoch) becomes it; earlier values
    stay.
  - C(var/db/pkg/*/*/BUILD_TIME) (Portage writes C(time.time()) when it builds a package and does not read
    SOURCE_DATE_EPOCH).
  - The modification times in C(CONTENTS) (C(obj) and C(sym) lines). A merged file whose own modification time
    is the one C(CONTENTS) records gets the clamped time too, so Portage still recognises it as unmodified and
    removes it when the package is replaced by a later build in this work directory. A file the build changed
    after the merge keeps its time (Portage keeps treating it as modified).
  - The consolidated C(metadata) file of a package directory (its C(BUILD_TIME=) line and C(#dir_mtime=), the
    package directory's modification time in nanoseconds that Portage checks before trusting the file). The
    package directory's modification time is clamped with it, so a file that was valid stays valid, also in the
    image (where tar clamps the directory's time the same way); a stale one loses its C(#dir_mtime=) line and
    stays rejected.
  - The day of the last password change in C(etc/shadow) and C(etc/shadow-) (days since 1970; C(useradd)
    writes the day it runs).
  - Files are rewritten through a temporary file and a rename, with their mode and owner, and only when a value
    changes. A second run, and a build that wrote nothing new, change nothing (no inode of the root is touched,
    so M(gse.stateless.pack) can take over the last tarball of an unchanged root).
  - Refuses a root with anything mounted at or under it.
options:
  root:
    description: The system root (the work directory, outside the chroot).
    type: path
    required: true
  source_date_epoch:
    description: Seconds since 1970 (SOURCE_DATE_EPOCH), the same value M(gse.stateless.pack) clamps to.
    type: int
    required: true
attributes:
  check_mode:
    support: full
    description: Reports what would be clamped; writes nothing.
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Clamp the build times recorded in the system
  gse.stateless.clamp_build_times:
    root: "{{ gse_workdir }}"
    source_date_epoch: "{{ gse_image_epoch | int }}"
"""

RETURN = r"""
packages:
  description: Package directories (C(category/name-version)) whose records were clamped.
  type: list
  elements: str
  returned: always
files:
  description: Number of merged files whose modification time was clamped with their C(CONTENTS) entry.
  type: int
  returned: always
shadow:
  description: The shadow files whose last-change days were clamped (relative to the root).
  type: list
  elements: str
  returned: always
"""

import os
import stat
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gse.stateless.plugins.module_utils import safe_paths

VDB = "var/db/pkg"
SHADOW_FILES = ("etc/shadow", "etc/shadow-")
DIR_MTIME = "#dir_mtime="


def rewrite(path, text):
    """Replace ``path`` by ``text`` through a temporary file and a rename, keeping mode and owner."""
    st = os.lstat(path)
    fd, tmp = tempfile.mkstemp(prefix=".%s." % os.path.basename(path), dir=os.path.dirname(path))
    try:
        with os.fdopen(fd, "w", encoding="utf-8", errors="surrogateescape") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chown(tmp, st.st_uid, st.st_gid)
        os.chmod(tmp, stat.S_IMODE(st.st_mode))
        os.rename(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def read(path):
    try:
        with open(path, encoding="utf-8", errors="surrogateescape") as f:
            return f.read()
    except FileNotFoundError:
        return None


def clamp_int(text, epoch):
    """``text`` (a decimal number) clamped to ``epoch``, or None when it is not later or not a number."""
    try:
        value = int(text)
    except ValueError:
        return None
    return str(epoch) if value > epoch else None


def clamp_contents(root, text, epoch, check):
    """(new CONTENTS text, files clamped).  ``obj PATH MD5 MTIME`` and ``sym PATH -> TARGET MTIME`` lines."""
    out, files = [], 0
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\n")
        kind = body[:4]
        if kind not in ("obj ", "sym ") or " " not in body[4:]:
            out.append(line)
            continue
        head, mtime = body.rsplit(" ", 1)
        new = clamp_int(mtime, epoch)
        if new is None:
            out.append(line)
            continue
        rel = head[4:].rsplit(" ", 1)[0] if kind == "obj " else head[4:].split(" -> ", 1)[0]
        path = os.path.join(root, rel.lstrip("/"))
        try:
            st = os.lstat(path)
        except OSError:
            st = None
        # Only a file Portage would find unmodified (same whole second) follows
        # its record; one the build changed keeps its own time.
        if st is not None and int(st.st_mtime) == int(mtime):
            files += 1
            if not check:
                os.utime(path, ns=(st.st_atime_ns, epoch * 10**9), follow_symlinks=False)
        out.append(head + " " + new + "\n")
    return "".join(out), files


def clamp_metadata(text, epoch, dir_ns, new_dir_ns):
    """The metadata file with BUILD_TIME clamped and #dir_mtime following the clamped directory time."""
    out = []
    for line in text.splitlines(keepends=True):
        body = line.rstrip("\n")
        if body.startswith("BUILD_TIME="):
            new = clamp_int(body[len("BUILD_TIME="):], epoch)
            out.append("BUILD_TIME=%s\n" % new if new else line)
        elif body.startswith(DIR_MTIME):
            # Valid before, valid after; a stale file stays rejected (and the
            # same in every build) without the line.
            if body[len(DIR_MTIME):] == str(dir_ns):
                out.append("%s%d\n" % (DIR_MTIME, new_dir_ns))
        else:
            out.append(line)
    return "".join(out)


def clamp_package(root, pkgdir, epoch, check):
    """(changed, files clamped) for one package directory of the vdb."""
    dir_st = os.lstat(pkgdir)
    new_dir_ns = min(dir_st.st_mtime_ns, epoch * 10**9)
    changes, files = {}, 0
    text = read(os.path.join(pkgdir, "BUILD_TIME"))
    if text is not None and clamp_int(text.strip(), epoch):
        changes["BUILD_TIME"] = "%d\n" % epoch
    text = read(os.path.join(pkgdir, "CONTENTS"))
    if text is not None:
        new, files = clamp_contents(root, text, epoch, check)
        if new != text:
            changes["CONTENTS"] = new
    text = read(os.path.join(pkgdir, "metadata"))
    if text is not None:
        new = clamp_metadata(text, epoch, dir_st.st_mtime_ns, new_dir_ns)
        if new != text:
            changes["metadata"] = new
    changed = bool(changes) or files > 0 or new_dir_ns != dir_st.st_mtime_ns
    if changed and not check:
        for name, new in changes.items():
            rewrite(os.path.join(pkgdir, name), new)
        # Last: the renames above set the directory's time.
        os.utime(pkgdir, ns=(dir_st.st_atime_ns, new_dir_ns))
    return changed, files


def clamp_shadow(path, epoch, check):
    """Whether the last-change days (third field) of a shadow file were (or would be) clamped."""
    text = read(path)
    if text is None:
        return False
    day = epoch // 86400
    out = []
    for line in text.splitlines(keepends=True):
        fields = line.rstrip("\n").split(":")
        if len(fields) >= 3 and fields[2].isdigit() and int(fields[2]) > day:
            fields[2] = str(day)
            line = ":".join(fields) + "\n"
        out.append(line)
    new = "".join(out)
    if new == text:
        return False
    if not check:
        rewrite(path, new)
    return True


def run(module):
    p = module.params
    root = os.path.realpath(p["root"])
    epoch = p["source_date_epoch"]
    if not os.path.isdir(root) or root == "/":
        module.fail_json(msg="root %s must be a directory other than /" % p["root"])
    mounts = safe_paths.mounts_at_or_under(root)
    if mounts:
        module.fail_json(msg="refusing to change %s: mounted at or under it: %s" % (root, ", ".join(mounts)),
                         mounts=mounts)
    packages, files, shadow = [], 0, []
    vdb = os.path.join(root, VDB)
    for category in sorted(os.listdir(vdb)) if os.path.isdir(vdb) else []:
        cdir = os.path.join(vdb, category)
        if category.startswith(".") or not os.path.isdir(cdir) or os.path.islink(cdir):
            continue
        for name in sorted(os.listdir(cdir)):
            pkgdir = os.path.join(cdir, name)
            # Portage's own work in progress (-MERGING-) and hidden entries are not packages.
            if name.startswith((".", "-")) or not os.path.isdir(pkgdir) or os.path.islink(pkgdir):
                continue
            changed, n = clamp_package(root, pkgdir, epoch, module.check_mode)
            files += n
            if changed:
                packages.append("%s/%s" % (category, name))
    for rel in SHADOW_FILES:
        if clamp_shadow(os.path.join(root, rel), epoch, module.check_mode):
            shadow.append(rel)
    module.exit_json(changed=bool(packages or shadow), packages=packages, files=files, shadow=shadow)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            root=dict(type="path", required=True),
            source_date_epoch=dict(type="int", required=True),
        ),
        supports_check_mode=True,
    )
    run(module)


if __name__ == "__main__":
    main()
