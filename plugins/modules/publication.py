#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""List, roll back and prune the published images of a publication tree (gse publish)."""

from __future__ import annotations

DOCUMENTATION = r"""
module: publication
short_description: List, roll back, prune the published images of a publication tree, pin groups to them
version_added: 0.2.0
description:
  - Works on the publication tree of docs/publication.md that M(gse.stateless.publish) writes. Every image
    published there is kept until a prune removes it; C(.gse/history) records every move of C(version.txt)
    (serial, version, time, C(publish), C(rollback) or C(resign), the same version signed again).
  - O(action=list) returns the published images, the one C(version.txt) names (verified with O(keyring)) and
    its fallback (the version C(version.txt) named before, which clients keep in their backup slot).
  - O(action=rollback) makes the published image O(version) the default again. Its directory is verified
    as a publication is (signatures of the tarball, the index and C(SHA512SUMS) with O(keyring), every
    digest of C(SHA512SUMS)) and, with a chunk index, every chunk it names is read back from C(store/)
    (C(casync digest)) before C(version.txt) moves. The pointer takes the next serial, higher than any
    serial clients have seen, so their anti-rollback check accepts it.
  - O(action=pin) pins the group O(group) (a group of the client config.d's C(members)) to the published
    image O(version). The image is verified as for a rollback, then the signed pointer
    C(groups/<group>/version.txt) names it (the keys of C(version.txt) plus a C(group) line naming the group), its serial
    taken from C(version.txt)'s counter, higher than every serial published before, and C(version.txt) is
    signed again with the next serial (it keeps the highest, so a client taken out of the group accepts it at
    once). Then the client config.d
    clients have now is published again with the group listed in its C(pinned) file (a new C(config.txt)
    serial), so that a client of that group installs only what its group's pointer names and refuses the
    default pointer. Pinning the group again to the same image changes nothing.
  - O(action=unpin) signs C(version.txt) again, unchanged but for a new, higher serial (the group's clients
    hold the pin's serial and would refuse the older one as a replay), publishes the client config.d again
    without the group in C(pinned), then removes C(groups/<group>/version.txt).
  - O(action=prune) removes the published images beyond the O(keep) most recently published or named
    ones, never the current version, its fallback or a version a group is pinned to, then the chunks of C(store/) that no remaining index
    names. An image directory is first renamed to C(images/.staging-.prune-<version>) (servers never serve
    C(.staging-) names; no version starts with a dot, so this is never the staging name of a publish), then
    deleted; an interrupted prune is finished by the next one, also one an older release left as
    C(images/.staging-prune-<version>). A tree whose
    C(version.txt) exists but does not verify with O(keyring) is not pruned (the current version could not
    be told), nor one with a group pointer that does not verify.
  - Everything that changes the tree runs under the tree's C(flock(2)) lock, as publishing does.
options:
  action:
    description: What to do.
    type: str
    choices: [list, rollback, prune, pin, unpin]
    default: list
  publish_dir:
    description: The publication tree.
    type: path
    default: /var/lib/gse/publish
  keyring:
    description: The publication keyring (binary or armored public keys) every signature must verify with.
    type: path
    required: true
  version:
    description:
      - The published image to make the default again (O(action=rollback)) or to pin O(group) to
        (O(action=pin)); required with them.
    type: str
  group:
    description:
      - The group to pin or unpin; required with O(action=pin) and O(action=unpin). Letters, digits, C(.),
        C(_) and C(-), not starting with a dot, at most 64 characters (the names of the config.d's C(members)).
    type: str
  keep:
    description:
      - With O(action=prune), how many of the most recently published or named images to keep (at least 1).
        The current version and its fallback are kept in addition when they are older.
    type: int
    default: 5
  casync:
    description: The casync program (to read a chunk index back from the store).
    type: path
    default: casync
  gnupghome:
    description:
      - GnuPG home with the secret key that signs the pointers and the config.d; required with O(action=rollback),
        O(action=pin) and O(action=unpin).
    type: path
  signing_key:
    description: The key that signs the pointers and the config.d; required with O(action=rollback), O(action=pin) and O(action=unpin).
    type: str
  passphrase:
    description: Passphrase of the signing key, given to gpg on stdin.
    type: str
attributes:
  check_mode:
    support: full
    description: A rollback or a pin verifies the image and reports the serial it would take; a prune reports what it would remove.
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: List the published images
  gse.stateless.publication:
    publish_dir: /var/lib/gse/publish
    keyring: /var/tmp/gse/publication-keyring.gpg
  register: published

- name: Take back a bad release
  gse.stateless.publication:
    action: rollback
    version: "20261128-1"
    publish_dir: /var/lib/gse/publish
    keyring: /var/tmp/gse/publication-keyring.gpg
    gnupghome: /root/.gnupg
    signing_key: releases@lab.example.org

- name: Keep room2 on last week's image while the others take the new one
  gse.stateless.publication:
    action: pin
    group: room2
    version: "20261123-1"
    publish_dir: /var/lib/gse/publish
    keyring: /var/tmp/gse/publication-keyring.gpg
    gnupghome: /root/.gnupg
    signing_key: releases@lab.example.org

- name: Let room2 follow the default again
  gse.stateless.publication:
    action: unpin
    group: room2
    publish_dir: /var/lib/gse/publish
    keyring: /var/tmp/gse/publication-keyring.gpg
    gnupghome: /root/.gnupg
    signing_key: releases@lab.example.org

- name: Keep the five most recent images (and always the current one and its fallback)
  gse.stateless.publication:
    action: prune
    keep: 5
    publish_dir: /var/lib/gse/publish
    keyring: /var/tmp/gse/publication-keyring.gpg
"""

RETURN = r"""
current:
  description: What the verified C(version.txt) names (version, serial), or null without a valid pointer.
  type: dict
  returned: always
fallback:
  description: The version C(version.txt) named before the current one, or null.
  type: str
  returned: always
versions:
  description:
    - The published images, most recently used first. Each has C(version), C(last_used) (UTC, when it was
      last published or named by C(version.txt)), C(serials) (the serials that named it), C(current),
      C(fallback), C(pinned) (the groups pinned to it), C(index) (has a chunk index) and C(bytes) (the size of
      its directory).
  type: list
  elements: dict
  returned: always
pins:
  description:
    - The pinned groups, each with the C(version) and C(serial) of its verified pointer (both null when the
      pointer does not verify).
  type: dict
  returned: always
config_serial:
  description: With O(action=pin) and O(action=unpin), the serial of C(config.txt) that lists the pinned groups.
  type: int
  returned: when action is pin or unpin
serial:
  description:
    - The serial C(version.txt) took (or would take in check mode) with O(action=rollback) and O(action=unpin)
      (null without a default), or the group's pointer with O(action=pin).
  type: int
  returned: when action is rollback, pin or unpin
removed:
  description: With O(action=prune), the versions removed (or that would be).
  type: list
  elements: str
  returned: when action is prune
chunks_removed:
  description: With O(action=prune), how many chunk files no remaining index names were removed.
  type: int
  returned: when action is prune
msg:
  description: One line saying what happened.
  type: str
  returned: always
"""

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.gse.stateless.plugins.module_utils import caindex
from ansible_collections.gse.stateless.plugins.module_utils import config_tarball
from ansible_collections.gse.stateless.plugins.module_utils import grouppins
from ansible_collections.gse.stateless.plugins.module_utils import image_pointer
from ansible_collections.gse.stateless.plugins.module_utils import pubhistory
from ansible_collections.gse.stateless.plugins.module_utils import pubstaging
from ansible_collections.gse.stateless.plugins.module_utils import pubtree as tree
from ansible_collections.gse.stateless.plugins.module_utils.atomic_file import fsync_dir
from ansible_collections.gse.stateless.plugins.module_utils.image_verify import VerifyError, verify_image_dir
from ansible_collections.gse.stateless.plugins.module_utils.pointers import read_verified
from ansible_collections.gse.stateless.plugins.module_utils.pubmodule import TreeModule


def dir_bytes(path):
    total = 0
    for top, _dirs, files in os.walk(path):
        for name in files:
            total += os.lstat(os.path.join(top, name)).st_size
    return total


class Publication(TreeModule):
    def pointer(self):
        """(verified version.txt or None, True when a version.txt exists but does not verify)."""
        named = image_pointer.current(self.run, self.pub, self.keyring)
        exists = os.path.exists(os.path.join(self.pub, tree.VERSION_POINTER))
        return named, exists and named is None

    def pins(self):
        """{group: verified pointer or None}."""
        workdir = tempfile.mkdtemp(prefix="gse-pins-")
        try:
            return grouppins.read(self.run, self.pub, self.keyring, workdir)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)

    def listing(self):
        named, _bad = self.pointer()
        pins = self.pins()
        entries = pubhistory.read(self.pub)
        current = named.get("version") if named else None
        fallback = pubhistory.fallback(entries, current)
        used = pubhistory.last_used(self.pub, entries)
        versions = []
        for version in sorted(used, key=lambda v: (used[v], v), reverse=True):
            directory = os.path.join(self.pub, tree.IMAGES, version)
            versions.append(dict(
                version=version, last_used=pubhistory.stamp(used[version][0]),
                serials=[e["serial"] for e in entries if e["version"] == version],
                current=version == current, fallback=version == fallback,
                pinned=sorted(g for g, p in pins.items() if p and p.get("version") == version),
                index=os.path.isfile(os.path.join(directory, tree.INDEX)), bytes=dir_bytes(directory)))
        return dict(current=dict(version=current, serial=int(named["serial"])) if named else None,
                    fallback=fallback, versions=versions,
                    pins={g: dict(version=p.get("version") if p else None,
                                  serial=int(p["serial"]) if p and str(p.get("serial", "")).isdigit() else None)
                          for g, p in pins.items()})

    def signer(self):
        return self.p["gnupghome"], self.p["signing_key"], self.p["passphrase"]

    def needs_signer(self, action):
        if not (self.p["gnupghome"] and self.p["signing_key"]):
            raise tree.TreeError("action=%s needs gnupghome and signing_key to sign the pointers" % action)

    def verified_fields(self, version):
        """The pointer fields of the published image ``version``, verified as a publication is."""
        version = tree.check_version(version)
        directory = os.path.join(self.pub, tree.IMAGES, version)
        if not os.path.isdir(directory) or os.path.islink(directory):
            known = ", ".join(pubhistory.image_versions(self.pub)) or "none"
            raise tree.TreeError("%s is not published here (published: %s)" % (version, known))
        names, tarball = tree.image_names(directory)
        sums = verify_image_dir(self.run, directory, names, tarball, self.keyring)
        if tree.INDEX in names:
            # Its chunks must all still be there: a client would fail on the first missing one.
            argv = [self.p["casync"], "--store=" + os.path.join(self.pub, tree.STORE), "digest",
                    os.path.join(directory, tree.INDEX)]
            rc, out, err = self.run(argv)
            if rc != 0:
                raise VerifyError("the chunk index of %s does not read back from the store" % version,
                                  argv, rc, out, err)
        return image_pointer.fields(directory, version, names, tarball, sums)

    def rollback(self):
        if not self.p["version"]:
            raise tree.TreeError("action=rollback needs the version to roll back to")
        self.needs_signer("rollback")
        fields = self.verified_fields(self.p["version"])
        version = fields["version"]
        moved, serial = image_pointer.move(self.run, self.pub, self.keyring, fields, self.signer(),
                                           self.check, action="rollback")
        # Network-booted clients follow the pointer: boot.ipxe names the
        # rolled-back version's controller (with the command line it had).
        image_pointer.boot_script(self.pub, dict(fields, serial=serial), None, self.check)
        if not moved:
            msg = "%s is already the default (serial %d)" % (version, serial)
        else:
            msg = "%s %s the default with serial %d" % (version, "would become" if self.check else "is", serial)
        return dict(self.listing(), changed=moved, serial=serial, msg=msg)

    def config_with(self, workdir, pinned):
        """The client config.d clients have now (verified), its ``pinned``
        list made ``pinned``, as a tarball in ``workdir``; made before any
        pointer moves, so a config.d that does not verify refuses the work."""
        raw = os.path.join(workdir, "config.d.tar")
        have = config_tarball.gunzip_verified(self.run, self.pub, self.keyring, workdir, raw)
        config_tarball.with_pins(raw if have else None, raw + ".pinned", pinned)
        gz = os.path.join(workdir, tree.CONFIG_TARBALL)
        config_tarball.gzip_tar(raw + ".pinned", gz)
        return gz

    def publish_config(self, workdir, gz):
        return config_tarball.publish(self.run, self.pub, self.keyring, gz, self.signer(), self.check, workdir,
                                      image_pointer.now())

    def pin(self):
        if not (self.p["group"] and self.p["version"]):
            raise tree.TreeError("action=pin needs the group and the version to pin it to")
        self.needs_signer("pin")
        group = tree.check_group(self.p["group"])
        fields = dict(self.verified_fields(self.p["version"]), group=group)
        version = fields["version"]
        path = grouppins.pointer_path(self.pub, group)
        pinned = sorted(set(grouppins.groups(self.pub)) | {group})
        workdir = tempfile.mkdtemp(prefix="gse-pins-")
        try:
            gz = self.config_with(workdir, pinned)
            named = read_verified(self.run, self.keyring, path, workdir)
            default = None
            same = named is not None and all(named.get(k) == str(v) for k, v in fields.items())
            if same:
                serial = int(named["serial"])
            else:
                if not self.check:
                    os.makedirs(os.path.dirname(path), mode=0o755, exist_ok=True)
                serial = image_pointer.write(self.run, self.pub, self.keyring, tree.group_pointer(group), fields,
                                             self.signer(), self.check,
                                             image_pointer.current(self.run, self.pub, self.keyring),
                                             image_pointer.now())
                # version.txt stays the highest serial: a client taken out of
                # the group (members) accepts the default at once.
                default, default_serial = image_pointer.resign(self.run, self.pub, self.keyring, self.signer(),
                                                               self.check)
                if default:
                    if self.check:
                        default_serial = serial + 1  # nothing was taken: the pin's would be
                    image_pointer.boot_script(self.pub, dict(default, serial=default_serial), None, self.check)
            # Also when the pointer was there: a pin interrupted before its
            # config.d was published is finished now.
            config = self.publish_config(workdir, gz)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        changed = not same or config["published"]
        if same and not config["published"]:
            msg = "group %s is already pinned to %s (serial %d)" % (group, version, serial)
        else:
            msg = "group %s %s pinned to %s with serial %d; config.d serial %d lists %s" % (
                group, "would be" if self.check else "is", version, serial, config["serial"], ", ".join(pinned))
            if not same and default:
                msg += "; version.txt (%s) signed again with serial %d" % (default["version"], default_serial)
        return dict(self.listing(), changed=changed, serial=serial, config_serial=config["serial"], msg=msg)

    def unpin(self):
        if not self.p["group"]:
            raise tree.TreeError("action=unpin needs the group")
        self.needs_signer("unpin")
        group = tree.check_group(self.p["group"])
        pinned = grouppins.groups(self.pub)
        if group not in pinned:
            return dict(self.listing(), changed=False, serial=None, msg="group %s is not pinned" % group)
        # First the default with a serial above the pin's: the group's
        # clients hold the pin's serial and would refuse the default's as a
        # replay.  Then the config.d that no longer lists the group, then the
        # pointer goes.  Interrupted anywhere, a client of the group either
        # still follows its pin or takes a default it accepts.
        workdir = tempfile.mkdtemp(prefix="gse-pins-")
        try:
            gz = self.config_with(workdir, [g for g in pinned if g != group])
            fields, serial = image_pointer.resign(self.run, self.pub, self.keyring, self.signer(), self.check)
            if fields:
                image_pointer.boot_script(self.pub, dict(fields, serial=serial), None, self.check)
            config = self.publish_config(workdir, gz)
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
        if not self.check:
            grouppins.remove(self.pub, group)
        verb = "would be" if self.check else "is"
        msg = "group %s %s unpinned; %s; config.d serial %d" % (
            group, verb, ("version.txt (%s) %s signed again with serial %d" % (fields["version"], verb, serial))
            if fields else "no default version.txt to sign again", config["serial"])
        return dict(self.listing(), changed=True, serial=serial, config_serial=config["serial"], msg=msg)

    def finish_interrupted(self):
        """Remove what an interrupted prune left; under the lock, a leftover (see pubstaging)."""
        images = os.path.join(self.pub, tree.IMAGES)
        for name in os.listdir(images):
            if name.startswith((pubstaging.PRUNING, pubstaging.LEGACY_PRUNING)):
                pubstaging.remove_tree(os.path.join(images, name))

    def prune(self):
        keep = self.p["keep"]
        if keep < 1:
            raise tree.TreeError("keep must be at least 1 (got %d)" % keep)
        named, bad = self.pointer()
        if bad:
            raise tree.TreeError("version.txt does not verify with %s: the current version cannot be told, "
                                 "nothing is pruned" % self.keyring)
        pins = self.pins()
        unverified = sorted(g for g, p in pins.items() if p is None)
        if unverified:
            raise tree.TreeError("the pointer of group(s) %s does not verify with %s: the pinned versions cannot "
                                 "be told, nothing is pruned" % (", ".join(unverified), self.keyring))
        entries = pubhistory.read(self.pub)
        current = named.get("version") if named else None
        kept, removed = pubhistory.retained(self.pub, entries, current, keep,
                                            pinned=[p.get("version") for p in pins.values()])
        try:
            wanted = pubhistory.referenced_chunks(self.pub, kept)
        except (caindex.CaIndexError, OSError) as e:
            raise tree.TreeError("cannot read a kept chunk index, nothing is pruned: %s" % e) from None
        unreferenced = {c: p for c, p in pubhistory.stored_chunks(self.pub).items() if c not in wanted}
        if not self.check:
            images = os.path.join(self.pub, tree.IMAGES)
            self.finish_interrupted()
            for version in sorted(removed):
                hidden = os.path.join(images, tree.pruning_name(version))
                os.rename(os.path.join(images, version), hidden)
                fsync_dir(images)
                pubstaging.remove_tree(hidden)
            for path in unreferenced.values():
                os.unlink(path)
            if unreferenced:
                fsync_dir(os.path.join(self.pub, tree.STORE))
        verb = "would remove" if self.check else "removed"
        msg = "%s %d image(s)%s and %d unreferenced chunk(s); kept %s" % (
            verb, len(removed), (" (%s)" % ", ".join(sorted(removed))) if removed else "", len(unreferenced),
            ", ".join(sorted(kept)) or "nothing")
        return dict(self.listing(), changed=bool(removed or unreferenced),
                    removed=sorted(removed), chunks_removed=len(unreferenced), msg=msg)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            action=dict(type="str", choices=["list", "rollback", "prune", "pin", "unpin"], default="list"),
            publish_dir=dict(type="path", default="/var/lib/gse/publish"),
            keyring=dict(type="path", required=True),
            version=dict(type="str"),
            group=dict(type="str"),
            keep=dict(type="int", default=5),
            casync=dict(type="path", default="casync"),
            gnupghome=dict(type="path"),
            # A key id or fingerprint names the key; it is no secret.
            signing_key=dict(type="str", no_log=False),
            passphrase=dict(type="str", no_log=True),
        ),
        required_if=[("action", "rollback", ("version", "gnupghome", "signing_key")),
                     ("action", "pin", ("group", "version", "gnupghome", "signing_key")),
                     ("action", "unpin", ("group", "gnupghome", "signing_key"))],
        supports_check_mode=True,
    )
    if not os.path.isfile(module.params["keyring"]):
        module.fail_json(msg="keyring %s is not a file" % module.params["keyring"])
    pub = Publication(module)
    if not os.path.isdir(os.path.join(pub.pub, tree.IMAGES)):
        module.fail_json(msg="%s is not a publication tree (no %s/)" % (pub.pub, tree.IMAGES))
    action = module.params["action"]
    try:
        if action == "list":
            result = pub.listing()
            n = len(result["versions"])
            result.update(changed=False, msg="%d published image(s); default %s" % (
                n, result["current"]["version"] if result["current"] else "none"))
        elif module.check_mode:
            # Nothing is written, so no lock is taken (and no .gse/ made).
            result = getattr(pub, action)()
        else:
            tree.make_tree(pub.pub)  # a tree copied without its .gse/ gets one
            with tree.TreeLock(pub.pub):
                result = getattr(pub, action)()
    except VerifyError as e:
        module.fail_json(**e.fail_args())
    except (tree.TreeError, OSError) as e:
        module.fail_json(msg="refusing to %s: %s" % (action, e))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
