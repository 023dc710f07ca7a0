# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The client config.d of the publication tree: its tarball, the pinned groups it lists, and moving config.txt.

Part L publishes the administrator's config.d (``publish``); pinning or
unpinning a group (``publication``) publishes the config.d clients have now
again with another ``pinned`` list.  Both end in publish(): a new
``config/<serial>/`` directory, signed and verified, then config.txt moved,
under the tree lock; the same bytes as the config.d config.txt names
publish nothing.
"""

from __future__ import annotations

import gzip
import io
import os
import shutil
import tarfile

from ansible_collections.gse.stateless.plugins.module_utils import openpgp_sign as pgp
from ansible_collections.gse.stateless.plugins.module_utils import pubstaging
from ansible_collections.gse.stateless.plugins.module_utils import pubtree as tree
from ansible_collections.gse.stateless.plugins.module_utils.atomic_file import fsync_dir, rename_durable
from ansible_collections.gse.stateless.plugins.module_utils.checksums import sha512_file
from ansible_collections.gse.stateless.plugins.module_utils.image_verify import VerifyError, verify_signature
from ansible_collections.gse.stateless.plugins.module_utils.pointers import read_verified, write_pointer

PINNED_MEMBER = "./" + tree.PINNED


def is_pinned_member(name):
    return name in (tree.PINNED, PINNED_MEMBER)


def with_pins(raw_in, raw_out, groups):
    """Copy the tar ``raw_in`` (None: an empty config.d) to ``raw_out`` with
    ``./pinned`` listing ``groups`` (sorted, one a line; no member without
    groups).  Owner 0, mode 0644, mtime 0: the same groups give the same bytes."""
    with tarfile.open(raw_out, "w", format=tarfile.GNU_FORMAT) as out:
        if raw_in is not None:
            with tarfile.open(raw_in, "r:") as src:
                for member in src:
                    if is_pinned_member(member.name):
                        continue
                    out.addfile(member, src.extractfile(member) if member.isreg() else None)
        if groups:
            data = "".join("%s\n" % tree.check_group(g) for g in sorted(groups)).encode("ascii")
            info = tarfile.TarInfo(PINNED_MEMBER)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            out.addfile(info, io.BytesIO(data))


def gzip_tar(raw, gz):
    """gzip without a name or a time: the same tar gives the same bytes."""
    with open(raw, "rb") as fin, open(gz, "wb") as fout:
        with gzip.GzipFile(filename="", mode="wb", fileobj=fout, compresslevel=9, mtime=0) as z:
            shutil.copyfileobj(fin, z, 1 << 20)


def gunzip_verified(run, pub, keyring, workdir, raw):
    """Write the tar of the config.d that the verified config.txt names to
    ``raw``; False when none is published.  Its SHA-512 and size must be the
    signed pointer's (VerifyError otherwise): it is signed again as it is."""
    current = read_verified(run, keyring, os.path.join(pub, tree.CONFIG_POINTER), workdir)
    if current is None:
        if os.path.exists(os.path.join(pub, tree.CONFIG_POINTER)):
            raise VerifyError("config.txt does not verify with %s" % keyring)
        return False
    path = os.path.join(pub, current.get("path", ""))
    if not os.path.isfile(path) or sha512_file(path) != current.get("sha512") \
            or str(os.path.getsize(path)) != current.get("size"):
        raise VerifyError("%s does not match the signed config.txt" % current.get("path"))
    with gzip.open(path, "rb") as fin, open(raw, "wb") as fout:
        shutil.copyfileobj(fin, fout, 1 << 20)
    return True


def stage(run, pub, keyring, gz, serial, signer):
    """Write, sign and verify config/<serial>/ (through a staging directory)."""
    home, key, passphrase = signer
    configs = os.path.join(pub, tree.CONFIG)
    staging = os.path.join(configs, tree.staging_name(str(serial)))
    if os.path.lexists(staging):
        pubstaging.remove_tree(staging)  # left by an interrupted publish; the caller holds the lock
    os.mkdir(staging, 0o755)
    try:
        target = os.path.join(staging, tree.CONFIG_TARBALL)
        shutil.copyfile(gz, target)
        os.chmod(target, 0o644)
        with open(target, "rb+") as f:
            os.fsync(f.fileno())
        argv = pgp.detach_sign_argv(home, key, target, passphrase)
        rc, out, err = run(argv, passphrase)
        if rc != 0:
            raise VerifyError("gpg could not sign config.d", argv, rc, out, err)
        verify_signature(run, keyring, staging, tree.CONFIG_TARBALL)
        fsync_dir(staging)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    rename_durable(staging, os.path.join(configs, str(serial)))


def publish(run, pub, keyring, gz, signer, check, workdir, stamp):
    """Publish the config.d tarball ``gz`` and move config.txt to it, unless
    config.txt names the same bytes; returns dict(serial, sha512, size, published, path)."""
    sha, size = sha512_file(gz), os.path.getsize(gz)
    current = read_verified(run, keyring, os.path.join(pub, tree.CONFIG_POINTER), workdir)
    if current and current.get("sha512") == sha:
        return dict(serial=int(current["serial"]), sha512=sha, size=size, published=False,
                    path=os.path.join(pub, current["path"]))
    floor = int(current["serial"]) if current else 0  # clients refuse a lower serial
    if check:
        serial = max(tree.read_serial(pub, tree.CONFIG_POINTER), floor) + 1
        return dict(serial=serial, sha512=sha, size=size, published=True,
                    path=os.path.join(pub, tree.CONFIG, str(serial), tree.CONFIG_TARBALL))
    serial = tree.take_serial(pub, tree.CONFIG_POINTER, floor)
    stage(run, pub, keyring, gz, serial, signer)
    rel = "%s/%d/%s" % (tree.CONFIG, serial, tree.CONFIG_TARBALL)
    body = tree.pointer_body(dict(format=tree.FORMAT, serial=serial, version=serial, path=rel, sha512=sha,
                                  size=size, compression="gzip", published=stamp))
    home, key, passphrase = signer
    write_pointer(run, pub, tree.CONFIG_POINTER, body, home, key, passphrase, keyring)
    return dict(serial=serial, sha512=sha, size=size, published=True, path=os.path.join(pub, rel))
