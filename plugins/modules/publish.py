#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Publish an image and the client config.d into the publication tree (part L, gmark)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: publish
short_description: Publish a signed image and the client config.d into the publication tree
version_added: 0.1.0
description:
  - Implements docs/publication.md. The image directory is copied to C(images/.staging-<version>), checked
    (C(SHA512SUMS) names exactly the published files and matches them; the tarball's and C(SHA512SUMS)'
    signatures verify with O(keyring)) and renamed to C(images/<version>). Anything that fails is refused,
    the staging directory is removed and nothing visible changes.
  - An image directory with a casync chunk index (C(image.caidx), made by M(gse.stateless.chunk_index), with
    its C(.asc), listed in C(SHA512SUMS)) also publishes its chunks, taken from O(chunk_store), into the
    tree's C(store/) before the directory is renamed into place. A chunk already there is never rewritten;
    a new one is copied into C(.gse/chunks.partial/), fsynced and renamed into C(store/). The whole index
    is then read back from C(store/) with C(casync --store=STORE digest INDEX), which checks every chunk
    against its id, before anything becomes visible; on a failure the chunks added by this run are removed.
  - With O(default=true) the clearsigned C(version.txt) pointer is moved to the image with the next serial,
    taken under C(flock(2)) on C(.gse/lock) from C(.gse/serial). When the image has a chunk index the pointer
    has format 2 and also names the index (C(index), C(index_sha512), C(index_size)), the chunk store
    (C(store)) and the space the unpacked root needs (C(root_bytes), from C(build-report.json)).
  - An image directory with the casync blob index of its tarball (C(image.tar.zst.caibx) or
    C(image.tar.xz.caibx), made by M(gse.stateless.tarball_index), with its C(.asc), listed in C(SHA512SUMS))
    publishes it beside the tarball, and the pointer also names it (C(tarball_index), C(tarball_index_sha512),
    C(tarball_index_size)) in the same format (clients ignore keys they do not know). A client without an
    installed system checks the tarball by it chunk by chunk as it arrives. An image directory without it still
    publishes. A pointer without the blob index is moved to identical content that has one, so clients
    learn of it.
  - An image directory with the controller (C(vmlinuz), the image's own kernel, and C(initramfs), built by
    dracut against the image's C(/lib/modules); both or neither, both covered by C(SHA512SUMS)) gets a pointer
    that also names them (C(kernel), C(kernel_sha512), C(kernel_size), C(initramfs), C(initramfs_sha512),
    C(initramfs_size)), in the same format (clients ignore keys they do not know). With the pointer, the
    iPXE script C(boot.ipxe) at the top of the tree is replaced atomically; it boots that kernel and
    initramfs with O(boot_cmdline), for network boot.
  - 'When C(version.txt) already names identical content (the same tarball SHA512, or the same index SHA512)
    under another version, nothing is published and the pointer does not move; the result has
    C(changed=false), C(image.unchanged=true) and C(msg) "unchanged: <version> is already published".'
  - The publication keyring is published, armored, as C(publication-key.asc) at the top of the tree (for
    administrators, and for installing on clients), replaced atomically when it changes.
  - With O(config_dir) the client config.d is published as C(config/<serial>/config.d.tar.gz) with a detached
    signature, and C(config.txt) is moved to it (serial from C(.gse/config-serial)) when its content changed.
    The groups pinned to a version (C(groups/<GROUP>/version.txt), M(gse.stateless.publication)) are listed in
    the tarball's C(pinned) file, one a line; a O(config_dir) holding a C(pinned) of its own is refused.
  - Idempotent. Publishing a version again with identical files changes nothing; the same version with
    different files is refused (a published directory is never rewritten).
  - Under the lock, before anything else, what an interrupted publish left is removed and reported in
    C(stale) - its staging directories (C(images/.staging-<version>), C(config/.staging-<serial>); never a
    prune's C(images/.staging-.prune-<version>), which no version's staging name can be) and the chunks of
    C(store/) that their index names and no published index does. An older release's prune leftover
    C(images/.staging-prune-<version>) is the staging name of a version C(prune-<version>) and is removed
    alike (a leftover either way). A symlink with a staging name is neither followed nor removed, and neither is a
    directory with anything mounted at or below it (C(/proc/self/mountinfo)); both are named in
    C(stale.skipped) and warned about.
options:
  src:
    description:
      - The image directory (from part K) holding C(image.tar.zst) or C(image.tar.xz), its C(.asc),
        C(SHA512SUMS), C(SHA512SUMS.asc), C(build-report.json) and optionally C(image.caidx) and the tarball's
        blob index (C(<tarball>.caibx)), each with its C(.asc), C(vmlinuz) and C(initramfs).
    type: path
  version:
    description: The image version (the build id); required with O(src).
    type: str
  publish_dir:
    description: The publication tree.
    type: path
    default: /var/lib/gse/publish
  default:
    description: Mark the image as the default (move C(version.txt) to it).
    type: bool
    default: false
  config_dir:
    description: A client config.d directory to publish.
    type: path
  keyring:
    description:
      - The publication keyring (binary public keys, as clients have it) that every signature must verify with.
        Published armored as C(publication-key.asc).
    type: path
    required: true
  chunk_store:
    description:
      - The casync chunk store the image's index was made with (the O(gse.stateless.chunk_index#module:store) option of M(gse.stateless.chunk_index)); needed
        when the image directory holds C(image.caidx) and is not published yet.
    type: path
  casync:
    description: The casync program.
    type: path
    default: casync
  gnupghome:
    description: GnuPG home with the secret key that signs the pointers and the config.d tarball.
    type: path
  signing_key:
    description:
      - The key that signs the pointers and the config.d tarball; required with O(default) or O(config_dir).
      - The same name as in M(gse.stateless.sign) and M(gse.stateless.pack).
    type: str
  passphrase:
    description: Passphrase of the signing key, given to gpg on stdin.
    type: str
  boot_cmdline:
    description: The kernel command line C(boot.ipxe) gives the controller (after C(initrd=initramfs)).
    type: str
    default: root=gse panic=-1 rd.emergency=reboot
attributes:
  check_mode:
    support: full
    description: Verifies the image directory and says what would be published and which serials would be used.
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Publish the image and make it the default
  gse.stateless.publish:
    src: "{{ gse_cdistdir }}/images/{{ gse_build_id }}"
    version: "{{ gse_build_id }}"
    publish_dir: "{{ gse_publish_dir }}"
    default: true
    keyring: /etc/gse/publication-keyring.gpg
    gnupghome: "{{ gse_gnupghome }}"
    signing_key: "{{ gse_signing_key }}"
    config_dir: /etc/gse/config.d

- name: Publish an image with a chunk index (its chunks come from the build's store)
  gse.stateless.publish:
    src: "{{ gse_image_dir }}"
    version: "{{ gse_build_id }}"
    publish_dir: "{{ gse_publish_dir }}"
    chunk_store: "{{ gse_chunk_store }}"
    default: true
    keyring: "{{ gse_cdistdir }}/publication-keyring.gpg"
    gnupghome: "{{ gse_gnupghome }}"
    signing_key: "{{ gse_signing_key }}"
  register: published

- name: Say when nothing new was published
  ansible.builtin.debug:
    msg: "{{ published.msg }}"
  when: published.image.unchanged
"""

RETURN = r"""
image:
  description:
    - What happened to the image (version, path, published, pointer_moved, serial, sha512, size, files; with
      an index also index_sha512, index_size, root_bytes, chunks, chunks_added, chunk_bytes_added; with the
      tarball's blob index also tarball_index_sha512, tarball_index_size; with the controller also
      kernel_sha512, kernel_size, initramfs_sha512, initramfs_size and boot_script, the path of C(boot.ipxe)
      when this run wrote it).
    - C(unchanged) is true when the default already named identical content; C(version) then names the
      published version and C(requested) the one that was not published.
  type: dict
  returned: when src is given
msg:
  description: '"unchanged: <version> is already published" when nothing was published for that reason.'
  type: str
  returned: when the image was unchanged
public_key:
  description: The published C(publication-key.asc) (path, changed).
  type: dict
  returned: always
config:
  description: What happened to the config.d (serial, path, published, sha512).
  type: dict
  returned: when config_dir is given
stale:
  description:
    - What an interrupted publish had left and this run removed (in check mode, would remove) - C(removed),
      the staging directories relative to the tree; C(chunks_removed), how many chunk files of C(store/);
      C(skipped), what has a staging name but was left alone, and why.
  type: dict
  returned: always
  sample: {"removed": ["images/.staging-20261130-1"], "chunks_removed": 12, "skipped": []}
"""

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gse.stateless.plugins.module_utils import caindex
from ansible_collections.gse.stateless.plugins.module_utils import config_tarball
from ansible_collections.gse.stateless.plugins.module_utils import grouppins
from ansible_collections.gse.stateless.plugins.module_utils import image_pointer
from ansible_collections.gse.stateless.plugins.module_utils import openpgp
from ansible_collections.gse.stateless.plugins.module_utils import pubstaging
from ansible_collections.gse.stateless.plugins.module_utils import pubtree as tree
from ansible_collections.gse.stateless.plugins.module_utils.atomic_file import fsync_dir, rename_durable, write_atomic
from ansible_collections.gse.stateless.plugins.module_utils.checksums import parse_sums, sha512_file
from ansible_collections.gse.stateless.plugins.module_utils.image_verify import (
    VerifyError, covered, verify_image_dir, verify_signature, verify_sums)
from ansible_collections.gse.stateless.plugins.module_utils.pointers import read_verified
from ansible_collections.gse.stateless.plugins.module_utils.pubmodule import TreeModule


def copy_durable(src, dst):
    shutil.copyfile(src, dst)
    os.chmod(dst, 0o644)
    with open(dst, "rb+") as f:
        os.fsync(f.fileno())


def same_bytes(a, b):
    with open(a, "rb") as fa, open(b, "rb") as fb:
        return fa.read() == fb.read()


class Publisher(TreeModule):
    def state_dir(self):
        return os.path.join(self.pub, tree.STATE)

    def move_pointer(self, fields):
        """Move version.txt to the image unless it already names this content; returns (moved, serial)."""
        return image_pointer.move(self.run, self.pub, self.keyring, fields,
                                  (self.p["gnupghome"], self.p["signing_key"], self.p["passphrase"]), self.check)

    # -- the image -------------------------------------------------------
    def existing_matches(self, src, final, names):
        """True when the published directory holds exactly the same files; TreeError when it differs."""
        if sorted(os.listdir(final)) != names:
            raise tree.TreeError("version already published with other files: %s" % sorted(os.listdir(final)))
        for name in names:
            if name not in covered(names) and not same_bytes(os.path.join(src, name), os.path.join(final, name)):
                raise tree.TreeError("version already published with a different %s" % name)
        with open(os.path.join(final, tree.SUMS), encoding="utf-8") as f:
            sums = parse_sums(f.read())
        for name in covered(names):
            if sha512_file(os.path.join(src, name)) != sums[name]:
                raise tree.TreeError("version already published with a different %s" % name)
        return sums

    def stage_image(self, src, version, names, tarball, res):
        images = os.path.join(self.pub, tree.IMAGES)
        staging = os.path.join(images, tree.staging_name(version))
        if os.path.lexists(staging):
            pubstaging.remove_tree(staging)  # left by an interrupted publish; we hold the lock
        os.mkdir(staging, 0o755)
        added = []
        try:
            for name in names:
                copy_durable(os.path.join(src, name), os.path.join(staging, name))
            fsync_dir(staging)
            sums = verify_image_dir(self.run, staging, names, tarball, self.keyring)
            if tree.INDEX in names:
                self.publish_chunks(staging, added, res)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            # Nothing names them: the directory never became visible.
            for path in added:
                if os.path.lexists(path):
                    os.unlink(path)
            raise
        rename_durable(staging, os.path.join(images, version))
        return sums

    # -- the chunk store -------------------------------------------------
    def publish_chunks(self, staging, added, res):
        """Copy the chunks the (verified) index names into store/, durably, then read the index back.

        ``added`` receives every chunk file this run creates, so that the
        caller can remove them when the publication fails.
        """
        if not self.p["chunk_store"]:
            raise tree.TreeError("the image has a chunk index: chunk_store must name the store it was made with")
        src_store = os.path.abspath(self.p["chunk_store"])
        store = os.path.join(self.pub, tree.STORE)
        partial = os.path.join(self.pub, tree.STATE, "chunks.partial")
        if os.path.lexists(partial):
            shutil.rmtree(partial)  # left by an interrupted publish; we hold the lock
        os.mkdir(partial, 0o700)
        index = os.path.join(staging, tree.INDEX)
        try:
            _flags, _size, chunks = caindex.read_index(index)
        except (caindex.CaIndexError, OSError) as e:
            raise VerifyError("cannot read the chunk index: %s" % e) from None
        dirs, nbytes = set(), 0
        try:
            for chunk in sorted(set(chunks)):
                dst = caindex.chunk_path(store, chunk)
                if os.path.lexists(dst):
                    continue  # chunks are immutable: one that is there stays as it is
                src = caindex.chunk_path(src_store, chunk)
                if not os.path.isfile(src) or os.path.islink(src):
                    raise VerifyError("chunk %s of the index is not in %s" % (chunk, src_store))
                tmp = os.path.join(partial, chunk)
                copy_durable(src, tmp)
                if not os.path.isdir(os.path.dirname(dst)):
                    os.mkdir(os.path.dirname(dst), 0o755)
                    dirs.add(store)
                os.rename(tmp, dst)
                added.append(dst)
                dirs.add(os.path.dirname(dst))
                nbytes += os.path.getsize(dst)
            for d in sorted(dirs, reverse=True):  # chunk directories before the store that holds them
                fsync_dir(d)
        finally:
            shutil.rmtree(partial, ignore_errors=True)
        # casync reads every chunk the index names from the published store
        # and checks each against its id: a missing or damaged chunk fails here.
        argv = [self.p["casync"], "--store=" + store, "digest", index]
        rc, out, err = self.run(argv)
        if rc != 0:
            raise VerifyError("the chunk index does not read back from %s" % store, argv, rc, out, err)
        res.update(chunks=len(set(chunks)), chunks_added=len(added), chunk_bytes_added=nbytes)

    def unchanged(self, src, names, tarball):
        """The verified version.txt when it already names this content (same index or same tarball), else None.

        The content is verified as publishing would verify it before it is
        called unchanged: an index by its signature and SHA512SUMS (small
        files: no read of the tarball), a tarball by the whole image check.
        """
        if not os.path.isdir(self.state_dir()):
            return None
        current = read_verified(self.run, self.keyring, os.path.join(self.pub, tree.VERSION_POINTER),
                                self.state_dir())
        if not current:
            return None
        if tarball + tree.TARBALL_INDEX_SUFFIX in names and "tarball_index" not in current:
            # The same content, but clients do not know its blob index yet: published anew.
            return None
        sums = verify_sums(self.run, src, self.keyring)
        if tree.INDEX in names and current.get("index_sha512") == sums.get(tree.INDEX):
            verify_signature(self.run, self.keyring, src, tree.INDEX)
            if sha512_file(os.path.join(src, tree.INDEX)) != sums[tree.INDEX]:
                raise VerifyError("%s does not match its SHA512SUMS entry" % tree.INDEX)
            return current
        if current.get("sha512") == sums.get(tarball):
            verify_image_dir(self.run, src, names, tarball, self.keyring)
            return current
        return None

    def image(self):
        src, version = os.path.abspath(self.p["src"]), tree.check_version(self.p["version"])
        names, tarball = tree.image_names(src)
        final = os.path.join(self.pub, tree.IMAGES, version)
        res = dict(version=version, path=final, files=names, published=False, pointer_moved=False,
                   unchanged=False)
        if os.path.exists(final):
            sums = self.existing_matches(src, final, names)
        else:
            current = self.unchanged(src, names, tarball)
            if current:
                # An unchanged build: clients keep what they have and fetch nothing.
                return dict(res, unchanged=True, requested=version, version=current.get("version"),
                            path=os.path.join(self.pub, tree.IMAGES, current.get("version", "")),
                            serial=int(current["serial"]), sha512=current.get("sha512"))
            if self.check:
                sums = verify_image_dir(self.run, src, names, tarball, self.keyring)
            else:
                sums = self.stage_image(src, version, names, tarball, res)
            res["published"] = True
        # The published copy when there is one: the bytes that were verified there.
        fields = image_pointer.fields(final if os.path.isdir(final) else src, version, names, tarball, sums)
        res.update(sha512=fields["sha512"], size=fields["size"])
        if tree.INDEX in names:
            res.update(index_sha512=fields["index_sha512"], index_size=fields["index_size"],
                       root_bytes=fields["root_bytes"])
        if "tarball_index" in fields:
            res.update(tarball_index_sha512=fields["tarball_index_sha512"],
                       tarball_index_size=fields["tarball_index_size"])
        if tree.KERNEL in names:
            res.update({k: fields[k] for k in ("kernel_sha512", "kernel_size", "initramfs_sha512", "initramfs_size")})
        if self.p["default"]:
            res["pointer_moved"], res["serial"] = self.move_pointer(fields)
            written = image_pointer.boot_script(self.pub, dict(fields, serial=res["serial"]), self.p["boot_cmdline"],
                                                self.check)
            if written:
                res["boot_script"] = written
        return res

    # -- the public key --------------------------------------------------
    def public_key(self):
        """publication-key.asc: the keyring, armored; replaced atomically when it differs."""
        with open(self.keyring, "rb") as f:
            data = f.read()
        text = data if data.lstrip().startswith(openpgp.ARMOR_BEGIN) else openpgp.armor(data).encode("ascii")
        path = os.path.join(self.pub, tree.PUBLIC_KEY)
        try:
            with open(path, "rb") as f:
                changed = f.read() != text
        except FileNotFoundError:
            changed = True
        if changed and not self.check:
            write_atomic(path, text, mode=0o644)
        return dict(path=path, changed=changed)

    # -- the client config.d ---------------------------------------------
    def pack_config(self, workdir):
        """config.d as a reproducible tar.gz (sorted, owner 0, mtime 0, gzip without name or time), with the
        tree's pinned groups listed in ``pinned``."""
        if os.path.lexists(os.path.join(self.p["config_dir"], tree.PINNED)):
            raise tree.TreeError("config_dir %s holds %s: that file is written by part L (gse publish --pin)"
                                 % (self.p["config_dir"], tree.PINNED))
        raw = os.path.join(workdir, "config.d.tar")
        argv = ["tar", "--create", "--file", raw, "--directory", self.p["config_dir"], "--sort=name",
                "--numeric-owner", "--owner=0", "--group=0", "--mtime=@0", "--format=gnu", "."]
        rc, out, err = self.run(argv)
        if rc != 0:
            raise VerifyError("tar of config.d failed", argv, rc, out, err)
        pins = grouppins.groups(self.pub)
        if pins:
            config_tarball.with_pins(raw, raw + ".pinned", pins)
            raw += ".pinned"
        gz = os.path.join(workdir, tree.CONFIG_TARBALL)
        config_tarball.gzip_tar(raw, gz)
        return gz

    def config(self):
        if not os.path.isdir(self.p["config_dir"]):
            raise tree.TreeError("config_dir %s is not a directory" % self.p["config_dir"])
        workdir = tempfile.mkdtemp(prefix="gse-config-")
        try:
            gz = self.pack_config(workdir)
            return config_tarball.publish(self.run, self.pub, self.keyring, gz,
                                          (self.p["gnupghome"], self.p["signing_key"], self.p["passphrase"]),
                                          self.check, workdir, image_pointer.now())
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def publish(self):
        # Under the lock no publish is under way: every staging directory of ours is a leftover.
        out = {"stale": pubstaging.clear_stale(self.pub, self.check)}
        if self.p["src"]:
            out["image"] = self.image()
        if self.p["config_dir"]:
            out["config"] = self.config()
        changed = any(v.get("published") or v.get("pointer_moved") or v.get("boot_script")
                      or v.get("removed") or v.get("chunks_removed") for v in out.values())
        out["public_key"] = self.public_key()
        if out.get("image", {}).get("unchanged"):
            out["msg"] = "unchanged: %s is already published" % out["image"]["version"]
        return dict(out, changed=changed or out["public_key"]["changed"])


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type="path"),
            version=dict(type="str"),
            publish_dir=dict(type="path", default="/var/lib/gse/publish"),
            default=dict(type="bool", default=False),
            config_dir=dict(type="path"),
            keyring=dict(type="path", required=True),
            gnupghome=dict(type="path"),
            # A key id or fingerprint names the key; it is no secret.
            signing_key=dict(type="str", no_log=False),
            passphrase=dict(type="str", no_log=True),
            boot_cmdline=dict(type="str", default="root=gse panic=-1 rd.emergency=reboot"),
            chunk_store=dict(type="path"),
            casync=dict(type="path", default="casync"),
        ),
        required_one_of=[("src", "config_dir")],
        required_together=[("src", "version")],
        required_if=[("default", True, ("src", "gnupghome", "signing_key"))],
        supports_check_mode=True,
    )
    if module.params["config_dir"] and not (module.params["gnupghome"] and module.params["signing_key"]):
        module.fail_json(msg="config_dir needs gnupghome and signing_key to sign the config.d")
    if not os.path.isfile(module.params["keyring"]):
        module.fail_json(msg="keyring %s is not a file" % module.params["keyring"])
    pub = Publisher(module)
    try:
        if module.check_mode:
            result = pub.publish()
        else:
            tree.make_tree(pub.pub)
            with tree.TreeLock(pub.pub):
                result = pub.publish()
    except VerifyError as e:
        module.fail_json(**e.fail_args())
    except (tree.TreeError, OSError) as e:
        module.fail_json(msg="refusing to publish: %s" % e)
    for why in result.get("stale", {}).get("skipped", []):
        module.warn(why)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
