#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Fetch the ebuild repository catalyst 4 makes its snapshot from, and verify its signed commit."""

from __future__ import annotations

DOCUMENTATION = r"""
module: catalyst_repo
short_description: Fetch and verify the git repository of catalyst's snapshot
version_added: 0.1.0
description:
  - catalyst 4 makes its snapshot with C(git archive <treeish>) from the bare repository
    C(<repos_storedir>/<repo_name>.git).  This module fills that repository and resolves the tree-ish to the
    commit catalyst is then given, so the snapshot is C(<storedir>/snapshots/<repo_name>-<commit>.sqfs).
  - With O(url), O(ref) is fetched (C(git fetch --depth)) into a quarantine repository first.  Its commit, or the
    annotated tag O(ref) names, must carry a good OpenPGP signature by a key of O(keyring) (C(git verify-commit)
    or C(git verify-tag) in a GnuPG home that holds only those keys).  Only then is it fetched into O(dest),
    under O(ref)'s name (a branch name as C(refs/heads/<name>)), and O(dest)'s C(HEAD) set to the commit; a
    refused fetch leaves O(dest) as it was.
  - Without O(url), O(ref) is resolved in the existing O(dest) and verified the same way; nothing is written.
  - O(dest) is fetched into only when the verified commit differs from its C(HEAD) or O(ref)'s name there
    does not name it yet (the task is changed then).
options:
  url:
    description:
      - URL of the git repository (any URL git fetches, for example C(https://...) or C(file:///...)).
        Empty or omitted, O(dest) must hold the repository already.
    type: str
    default: ""
  ref:
    description: The branch, tag or full commit id to fetch (with O(url)) or to resolve in O(dest).
    type: str
    default: stable
  dest:
    description: The bare repository catalyst reads, C(<repos_storedir>/<repo_name>.git).
    type: path
    required: true
  keyring:
    description:
      - The OpenPGP keys (armored or binary) whose signature is accepted, for example
        C(/usr/share/openpgp-keys/gentoo-release.asc).
    type: path
    required: true
  depth:
    description: History depth fetched (C(git fetch --depth)); the snapshot needs only the commit itself.
    type: int
    default: 1
  git:
    description: The git program.
    type: str
    default: git
  gpg:
    description: The gpg program git runs to check signatures.
    type: str
    default: gpg
notes:
  - Supports C(check_mode); with O(url) it still fetches into the quarantine and verifies, so it reports the
    commit a run would use, and writes nothing to O(dest).
requirements:
  - git
  - GnuPG 2.2 or later
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Fetch and verify the Gentoo repository for catalyst
  gse.stateless.catalyst_repo:
    url: "{{ gse_catalyst_repo_url }}"
    ref: stable
    dest: /var/tmp/gse/catalyst/repos/gentoo.git
    keyring: /usr/share/openpgp-keys/gentoo-release.asc
  register: repo

- name: Build from exactly that commit
  gse.stateless.catalyst:
    snapshot_treeish: "{{ repo.commit }}"
    config_dir: /var/tmp/gse/catalyst/config
    storedir: /var/tmp/gse/catalyst
    subarch: amd64
    version_stamp: "1"
    profile: default/linux/amd64/23.0
    seed: seeds/stage3-amd64-openrc-latest
"""

RETURN = r"""
commit:
  description: The full id of the verified commit, the tree-ish catalyst is given (and a time state records).
  returned: success
  type: str
  sample: 3f1c0e8a9b2d4c6e8f0a1b3c5d7e9f1a2b4c6d8e
object:
  description: The object whose signature was verified (the commit, or the annotated tag).
  returned: success
  type: str
object_type:
  description: C(commit) or C(tag).
  returned: success
  type: str
signer:
  description: Primary key fingerprint of the signature's key.
  returned: success
  type: str
previous:
  description: The commit O(dest)'s C(HEAD) named before this run, or null.
  returned: always
  type: str
fetched:
  description: Whether O(url) was fetched.
  returned: always
  type: bool
"""

import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gse.stateless.plugins.module_utils import git_verify
from ansible_collections.gse.stateless.plugins.module_utils.command_error import VerifyError


class Git(object):
    """git and gpg through the module, failures as VerifyError with the command."""

    def __init__(self, module):
        self.module = module
        self.git = module.get_bin_path(module.params["git"], required=True)
        self.gpg = module.get_bin_path(module.params["gpg"], required=True)

    def run(self, argv, env=None):
        return self.module.run_command(argv, environ_update=dict(env or {}, LC_ALL="C"))

    def must(self, argv, what):
        rc, out, err = self.run(argv)
        if rc != 0:
            raise VerifyError(what, cmd=argv, rc=rc, stdout=out, stderr=err)
        return out.strip()

    def head(self, gitdir):
        """The commit HEAD names in ``gitdir``, or None (no repository, or an empty one)."""
        if not os.path.isdir(gitdir):
            return None
        rc, out, _err = self.run([self.git, "-C", gitdir, "rev-parse", "--verify", "--quiet", "HEAD^{commit}"])
        return out.strip() if rc == 0 else None

    def names(self, gitdir, ref, obj):
        """Whether ``ref`` (None: nothing to check) names ``obj`` in ``gitdir``."""
        if ref is None:
            return True
        rc, out, _err = self.run([self.git, "-C", gitdir, "rev-parse", "--verify", "--quiet", ref])
        return rc == 0 and out.strip() == obj

    def resolve(self, gitdir, ref):
        """(object, commit) that ``ref`` names in ``gitdir``."""
        obj = self.must([self.git, "-C", gitdir, "rev-parse", "--verify", ref],
                        "%s does not name an object in %s" % (ref, gitdir))
        commit = self.must([self.git, "-C", gitdir, "rev-parse", "--verify", obj + "^{commit}"],
                           "%s does not name a commit in %s" % (ref, gitdir))
        return obj, commit


def fetch_quarantined(git, p, dest):
    """Fetch ``ref`` into a new bare repository borrowing ``dest``'s objects; return its path."""
    parent = os.path.dirname(dest)
    quarantine = tempfile.mkdtemp(prefix=".fetch-", dir=parent if os.path.isdir(parent) else None)
    git.must([git.git, "init", "--quiet", "--bare", quarantine], "git init failed")
    if os.path.isdir(os.path.join(dest, "objects")):
        # Only what dest lacks is downloaded; dest itself is not written.
        with open(os.path.join(quarantine, "objects", "info", "alternates"), "w") as f:
            f.write(os.path.join(os.path.abspath(dest), "objects") + "\n")
    git.must([git.git, "-C", quarantine, "fetch", "--quiet", "--no-tags", "--depth=%d" % p["depth"],
              p["url"], p["ref"]], "could not fetch %s from %s" % (p["ref"], p["url"]))
    return quarantine


def local_ref(ref):
    """The ref that keeps ``ref``'s name in dest (a branch name becomes refs/heads/<name>); None for a commit id."""
    if ref.startswith("refs/"):
        return ref
    if len(ref) in (40, 64) and all(c in "0123456789abcdef" for c in ref.lower()):
        return None
    return "refs/heads/" + ref


def adopt(git, quarantine, dest, obj, commit, ref):
    """Bring the verified object from the quarantine into dest, under ``ref``'s name too, and point HEAD at
    its commit, so that a later run without a URL resolves ``ref`` to what was verified here."""
    if not os.path.isdir(dest):
        os.makedirs(os.path.dirname(dest) or ".", 0o755, exist_ok=True)
        git.must([git.git, "init", "--quiet", "--bare", dest], "git init %s failed" % dest)
    git.must([git.git, "-C", quarantine, "update-ref", "refs/gse/verified", obj], "update-ref failed")
    # --update-shallow: the quarantine is shallow, and so is dest afterwards.
    git.must([git.git, "-C", dest, "fetch", "--quiet", "--no-tags", "--update-shallow", quarantine,
              "+refs/gse/verified:refs/gse/verified"], "could not move the verified commit into %s" % dest)
    name = local_ref(ref)
    if name:
        git.must([git.git, "-C", dest, "update-ref", name, obj], "could not set %s in %s" % (name, dest))
    git.must([git.git, "-C", dest, "update-ref", "--no-deref", "HEAD", commit], "could not set HEAD of %s" % dest)


def main():
    module = AnsibleModule(
        argument_spec=dict(
            url=dict(type="str", default=""),
            ref=dict(type="str", default="stable"),
            dest=dict(type="path", required=True),
            keyring=dict(type="path", required=True),
            depth=dict(type="int", default=1),
            git=dict(type="str", default="git"),
            gpg=dict(type="str", default="gpg"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    dest = p["dest"]
    git = Git(module)
    previous = git.head(dest)
    result = dict(changed=False, previous=previous, fetched=bool(p["url"]))
    if p["depth"] < 1:
        module.fail_json(msg="depth must be 1 or more", **result)
    if not p["url"] and previous is None:
        module.fail_json(msg="no repository at %s and no URL to fetch it from" % dest,
                         hint="set the repository's URL (gse_catalyst_repo_url)", **result)
    quarantine = None
    try:
        if p["url"]:
            quarantine = fetch_quarantined(git, p, dest)
            gitdir = quarantine
            obj, commit = git.resolve(gitdir, "FETCH_HEAD")
        else:
            gitdir = dest
            obj, commit = git.resolve(gitdir, p["ref"])
        with git_verify.CleanHome(git.run, git.gpg, p["keyring"]) as home:
            checked = git_verify.verify(git.run, git.git, git.gpg, gitdir, obj, home)
        result.update(commit=commit, object=obj, object_type=checked["type"], signer=checked["signer"])
        if quarantine and (commit != previous or not git.names(dest, local_ref(p["ref"]), obj)):
            result["changed"] = True
            if not module.check_mode:
                adopt(git, quarantine, dest, obj, commit, p["ref"])
    except VerifyError as exc:
        result.update(exc.fail_args())
        module.fail_json(**result)
    finally:
        if quarantine:
            shutil.rmtree(quarantine, ignore_errors=True)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
