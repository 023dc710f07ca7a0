#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Build stage1..3 with catalyst 4: write catalyst.conf and the specs, snapshot, build what is missing."""

from __future__ import annotations

DOCUMENTATION = r"""
module: catalyst
short_description: Build Gentoo stages with catalyst 4
version_added: 0.1.0
description:
  - Writes C(catalyst.conf) (TOML, catalyst 4) and one spec file per stage into O(config_dir), rewriting a file
    only when its content changes.
  - Makes the ebuild repository snapshot with C(catalyst -c <conf> -s <treeish>) unless
    C(<storedir>/snapshots/<repo_name>-<treeish>.sqfs) already exists.
  - Runs C(catalyst -c <conf> -f <spec>) stage by stage.  The first stage listed starts from O(seed); each later
    stage starts from the product of the one before it (C(source_subpath) chaining).
  - A stage is built when its product C(<storedir>/builds/<rel_type>/<target>-<subarch>-<version_stamp>.tar.<ext>)
    is missing (catalyst's autoresume continues an interrupted build), when its spec changed, when an earlier
    stage was rebuilt in this run (its seed changed; autoresume points are cleared with C(-a)), or when O(force)
    is set (C(-p), catalyst's purge of temporary directories, package cache and autoresume points; or C(-a)
    with O(force_purge=false)).  Otherwise it is skipped and the task is not changed.
  - On failure returns catalyst's command, exit code, output, the log file (C(--log-file)) and its last lines.
options:
  catalyst:
    description: The catalyst program (name on C(PATH) or a path).
    type: str
    default: catalyst
  config_dir:
    description: Directory for C(catalyst.conf) and the C(stage1.spec), C(stage2.spec), C(stage3.spec) files.
    type: path
    required: true
  log_dir:
    description:
      - Directory for catalyst's logs, one C(<target>.log) per run (given to catalyst as C(--log-file)).
        Defaults to C(<config_dir>/log).
    type: path
  storedir:
    description: catalyst's C(storedir) (builds, snapshots, tmp, packages).
    type: path
    required: true
  distdir:
    description: Source distfiles directory (C(distdir)). Created when missing.
    type: path
    default: /var/cache/distfiles
  repos_storedir:
    description: Where catalyst keeps the bare ebuild repository the snapshot is made from (C(repos_storedir)).
    type: path
  repo_name:
    description: Name of the main ebuild repository (C(repo_name)); names the snapshot file.
    type: str
    default: gentoo
  port_logdir:
    description: Where catalyst keeps the emerge build logs of each stage (C(port_logdir)).
    type: path
  options:
    description:
      - catalyst.conf C(options), for example C(autoresume), C(bindist), C(kerncache), C(pkgcache),
        C(seedcache), C(versioned_cache), C(sticky-config), C(ccache), C(distcc), C(keepwork).
    type: list
    elements: str
    default: [autoresume, bindist, kerncache, pkgcache, seedcache]
  pkgcache_dir:
    description:
      - With C(pkgcache) among O(options), every stage's spec names its binary package cache, C(pkgcache_path)
        set to C(<pkgcache_dir>/<rel_type>/<target>-<subarch>), the layout of catalyst's own default, so
        a stage of the next build (another O(version_stamp)) installs what an earlier one built as binary
        packages (catalyst runs emerge with C(--usepkg --buildpkg --binpkg-respect-use=y --newuse) unless
        O(update_seed) is set).  Unset, catalyst uses C(<storedir>/packages).  A purge (O(force) with
        O(force_purge)) empties the caches of the stages it rebuilds.
    type: path
  digests:
    description: catalyst.conf C(digests) (hashlib names) for the C(.DIGESTS) file next to each product.
    type: list
    elements: str
    default: [blake2b, sha512]
  compression_mode:
    description:
      - pyDeComp compression mode of the products, written to catalyst.conf and to every spec.  Must make a
        tarball, for example C(xz), C(pixz), C(lbzip2), C(gzip), C(tar), C(zstd).
    type: str
    default: xz
  jobs:
    description: catalyst.conf C(jobs) (emerge --jobs and MAKEOPTS).
    type: int
  load_average:
    description: catalyst.conf C(load-average) (emerge --load-average and MAKEOPTS).
    type: float
  envscript:
    description: catalyst.conf C(envscript), a shell file of exports for the builds.
    type: path
  extra_config:
    description: More catalyst.conf keys (only keys catalyst 4 knows are accepted).
    type: dict
    default: {}
  subarch:
    description: Spec C(subarch), for example C(amd64).
    type: str
    required: true
  rel_type:
    description: Spec C(rel_type), the directory under C(builds/) the products go to.
    type: str
    default: gse
  version_stamp:
    description: Spec C(version_stamp); part of every product's name.
    type: str
    required: true
  profile:
    description: Spec C(profile), for example C(default/linux/amd64/23.0).
    type: str
    required: true
  snapshot_treeish:
    description:
      - Spec C(snapshot_treeish), the git tree-ish of the ebuild repository the snapshot is made from.
        C(stable) makes catalyst fetch the repository first; that snapshot is made on every run because its
        name is only known afterwards.
    type: str
    required: true
  seed:
    description:
      - C(source_subpath) of the first stage built, relative to C(<storedir>/builds/), with or without its
        extension, for example C(seeds/stage3-amd64-openrc-latest).
    type: str
    required: true
  portage_confdir:
    description: Spec C(portage_confdir), copied to C(/etc/portage) in the stages.
    type: path
  portage_prefix:
    description: Spec C(portage_prefix).
    type: str
  repos:
    description: Spec C(repos), extra ebuild repositories for the builds.
    type: list
    elements: path
    default: []
  update_seed:
    description: Spec C(update_seed) of stage1 (update the seed before building).
    type: bool
    default: false
  update_seed_command:
    description: Spec C(update_seed_command) of stage1.
    type: str
  spec_extra:
    description: More spec keys written into every stage's spec.
    type: dict
    default: {}
  stage_extra:
    description: "More spec keys for one stage, keyed by stage, for example C({stage3: {chost: ...}})."
    type: dict
    default: {}
  stages:
    description: The stage targets to build, in order.
    type: list
    elements: str
    choices: [stage1, stage2, stage3]
    default: [stage1, stage2, stage3]
  snapshot:
    description: Make the snapshot when it is missing.  Off when the snapshot comes from elsewhere.
    type: bool
    default: true
  force:
    description: Rebuild every listed stage even when its product exists (C(--enforce=gcat)).
    type: bool
    default: false
  force_purge:
    description: With O(force), purge with C(-p) (temporary directories, package cache, autoresume points);
      when false only clear autoresume points with C(-a) and keep the package cache.
    type: bool
    default: true
  log_tail_lines:
    description: How many lines of catalyst's log a failure returns.
    type: int
    default: 40
notes:
  - Supports C(check_mode); it reports whether the files would change, whether the snapshot would be made and
    which stages would be built and why.
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Build stage1..3
  gse.stateless.catalyst:
    config_dir: "{{ gse_cdistdir }}/catalyst"
    storedir: /var/tmp/catalyst
    subarch: amd64
    version_stamp: "{{ gse_build_id }}"
    profile: default/linux/amd64/23.0
    snapshot_treeish: 3f1c0e8a9b
    seed: seeds/stage3-amd64-openrc-latest
    portage_confdir: /etc/gse/catalyst/portage
    force: "{{ gse_enforce | gse.stateless.enforced('gcat', gse_lawful_good) }}"
  register: stages
"""

RETURN = r"""
config:
  description: Path of catalyst.conf.
  returned: always
  type: str
specs:
  description: Spec file of each stage.
  returned: always
  type: dict
  sample: {stage1: /var/tmp/gse/catalyst/stage1.spec}
files_changed:
  description: The configuration and spec files that were (or in check mode would be) rewritten.
  returned: always
  type: list
  elements: str
snapshot:
  description: The snapshot file and whether it was made in this run.
  returned: always
  type: dict
  sample: {path: /var/tmp/catalyst/snapshots/gentoo-3f1c0e8a9b.sqfs, made: false}
stages:
  description:
    - One entry per stage, in order, saying whether it was built and why, and its package cache
      (C(pkgcache), when O(pkgcache_dir) is set and C(pkgcache) is among O(options)).
  returned: always
  type: list
  elements: dict
  sample:
    - {target: stage1, built: false, reason: null, product: /var/tmp/catalyst/builds/gse/stage1-amd64-1.tar.xz,
       pkgcache: /var/tmp/catalyst/packages/gse/stage1-amd64}
    - {target: stage2, built: true, reason: missing, cmd: [catalyst, -c, ..., -f, ...]}
commands:
  description: Every catalyst command run, in order.
  returned: always
  type: list
  elements: list
products:
  description: The stage tarballs with their size and SHA512.
  returned: success, not in check mode
  type: list
  elements: dict
  sample: [{target: stage3, path: /var/tmp/catalyst/builds/gse/stage3-amd64-1.tar.xz, size: 1024, sha512: ab12...}]
stage3:
  description: Path of the last stage's product (the tarball part A extracts).
  returned: success, not in check mode
  type: str
failed_target:
  description: The target (C(snapshot) or a stage) that failed.
  returned: failure
  type: str
log:
  description: catalyst's log file of the failed run.
  returned: failure
  type: str
log_tail:
  description: The last lines of that log.
  returned: failure
  type: list
  elements: str
"""

import hashlib
import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gse.stateless.plugins.module_utils import catalyst_spec as cs
from ansible_collections.gse.stateless.plugins.module_utils import toml_emit
from ansible_collections.gse.stateless.plugins.module_utils.atomic_file import write_atomic


def read(path):
    try:
        with open(path, "r") as f:
            return f.read()
    except (IOError, OSError):
        return None


def write_if_changed(module, path, text):
    """Write ``text`` atomically when it differs from the file; True when it (would have) changed."""
    if read(path) == text:
        return False
    if module.check_mode:
        return True
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o755)
    write_atomic(path, text, 0o644)
    return True


def conf_table(p):
    table = {
        "storedir": p["storedir"],
        "distdir": p["distdir"],
        "repos_storedir": p["repos_storedir"],
        "repo_name": p["repo_name"],
        "port_logdir": p["port_logdir"],
        "options": list(p["options"]),
        "digests": list(p["digests"]),
        "compression_mode": p["compression_mode"],
        "jobs": p["jobs"],
        "load-average": p["load_average"],
        "envscript": p["envscript"],
    }
    unknown = sorted(set(p["extra_config"]) - cs.CONF_KEYS)
    if unknown:
        raise ValueError("extra_config: catalyst 4 does not know %s" % ", ".join(unknown))
    table.update(p["extra_config"])
    return table


def common_spec(p):
    values = {
        "subarch": p["subarch"],
        "version_stamp": p["version_stamp"],
        "rel_type": p["rel_type"],
        "profile": p["profile"],
        "snapshot_treeish": p["snapshot_treeish"],
        "compression_mode": p["compression_mode"],
        "portage_confdir": p["portage_confdir"],
        "portage_prefix": p["portage_prefix"],
        "repos": p["repos"],
        "update_seed": p["update_seed"] if p["update_seed"] else None,
        "update_seed_command": p["update_seed_command"],
    }
    values.update(p["spec_extra"])
    return values


def sha512(path):
    h = hashlib.sha512()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1024 * 1024), b""):
            h.update(chunk)
    return h.hexdigest()


def tail(path, lines):
    text = read(path)
    if text is None:
        return []
    return text.splitlines()[-lines:]


class Runner(object):
    """Runs catalyst, one log file per target, and fails the task with the log's tail."""

    def __init__(self, module, conf, log_dir, result):
        self.module = module
        self.conf = conf
        self.log_dir = log_dir
        self.result = result

    def run(self, target, args):
        log = os.path.join(self.log_dir, "%s.log" % target)
        if not os.path.isdir(self.log_dir):
            os.makedirs(self.log_dir, 0o755)
        # catalyst 4's --log-file argument must name an existing file (its
        # FilePath check does not honour exists=False); start it empty so the
        # log holds this run only.
        open(log, "w").close()
        argv = [self.module.params["catalyst"], "-c", self.conf, "--log-file", log] + args
        self.result["commands"].append(argv)
        rc, out, err = self.module.run_command(argv)
        if rc != 0:
            self.module.fail_json(
                msg="catalyst failed on %s (rc=%d); see %s" % (target, rc, log),
                cmd=argv, rc=rc, stdout=out, stderr=err, log=log,
                log_tail=tail(log, self.module.params["log_tail_lines"]),
                failed_target=target, **self.result)
        return argv


def plan_stages(module, specs, spec_changed):
    """For each stage: (target, values, existing product, reason to build or None)."""
    p = module.params
    plan = []
    rebuilt = False
    for target, values in specs:
        product = cs.find_product(p["storedir"], p["rel_type"], target, p["subarch"],
                                  p["version_stamp"], p["compression_mode"])
        if p["force"]:
            reason = "forced"
        elif product is None:
            reason = "missing"
        elif spec_changed[target]:
            reason = "spec changed"
        elif rebuilt:
            reason = "seed rebuilt"
        else:
            reason = None
        rebuilt = rebuilt or reason is not None
        plan.append((target, values, product, reason))
    return plan


def build_flags(p, reason):
    if reason == "forced":
        return ["-p"] if p["force_purge"] else ["-a"]
    if reason in ("spec changed", "seed rebuilt"):
        # The product exists, so any autoresume points are from another build.
        return ["-a"]
    # Missing product: let autoresume continue what an earlier run began.
    return []


def main():
    module = AnsibleModule(
        argument_spec=dict(
            catalyst=dict(type="str", default="catalyst"),
            config_dir=dict(type="path", required=True),
            log_dir=dict(type="path"),
            storedir=dict(type="path", required=True),
            distdir=dict(type="path", default="/var/cache/distfiles"),
            repos_storedir=dict(type="path"),
            repo_name=dict(type="str", default=cs.DEFAULT_REPO_NAME),
            port_logdir=dict(type="path"),
            options=dict(type="list", elements="str",
                         default=["autoresume", "bindist", "kerncache", "pkgcache", "seedcache"]),
            pkgcache_dir=dict(type="path"),
            digests=dict(type="list", elements="str", default=["blake2b", "sha512"]),
            compression_mode=dict(type="str", default="xz"),
            jobs=dict(type="int"),
            load_average=dict(type="float"),
            envscript=dict(type="path"),
            extra_config=dict(type="dict", default={}),
            subarch=dict(type="str", required=True),
            rel_type=dict(type="str", default="gse"),
            version_stamp=dict(type="str", required=True),
            profile=dict(type="str", required=True),
            snapshot_treeish=dict(type="str", required=True),
            seed=dict(type="str", required=True),
            portage_confdir=dict(type="path"),
            portage_prefix=dict(type="str"),
            repos=dict(type="list", elements="path", default=[]),
            update_seed=dict(type="bool", default=False),
            update_seed_command=dict(type="str"),
            spec_extra=dict(type="dict", default={}),
            stage_extra=dict(type="dict", default={}),
            stages=dict(type="list", elements="str", choices=list(cs.STAGES), default=list(cs.STAGES)),
            snapshot=dict(type="bool", default=True),
            force=dict(type="bool", default=False),
            force_purge=dict(type="bool", default=True),
            log_tail_lines=dict(type="int", default=40),
        ),
        supports_check_mode=True,
    )
    p = module.params
    log_dir = p["log_dir"] or os.path.join(p["config_dir"], "log")
    conf = os.path.join(p["config_dir"], "catalyst.conf")
    try:
        cs.extensions(p["compression_mode"])
        conf_text = toml_emit.dumps(conf_table(p), header=[
            "catalyst 4 configuration, written by gse.stateless.catalyst.",
            "Edits are overwritten: set the module's options instead."])
        specs = cs.stage_specs(common_spec(p), p["stages"], seed=p["seed"], per_stage=p["stage_extra"])
        if p["pkgcache_dir"] and "pkgcache" in p["options"]:
            for target, values in specs:
                values.setdefault("pkgcache_path", cs.pkgcache_path(
                    p["pkgcache_dir"], p["rel_type"], target, p["subarch"]))
        spec_texts = [(t, os.path.join(p["config_dir"], "%s.spec" % t), cs.render_spec(v))
                      for t, v in specs]
    except ValueError as exc:
        module.fail_json(msg=str(exc))

    result = dict(changed=False, config=conf, specs={}, files_changed=[], commands=[], stages=[])
    if write_if_changed(module, conf, conf_text):
        result["files_changed"].append(conf)
    spec_changed = {}
    for target, path, text in spec_texts:
        result["specs"][target] = path
        spec_changed[target] = write_if_changed(module, path, text)
        if spec_changed[target]:
            result["files_changed"].append(path)
    result["changed"] = bool(result["files_changed"])

    for directory in (p["storedir"], p["distdir"]):
        if not os.path.isdir(directory) and not module.check_mode:
            os.makedirs(directory, 0o755)

    runner = Runner(module, conf, log_dir, result)
    snap = cs.snapshot_path(p["storedir"], p["snapshot_treeish"], p["repo_name"])
    need_snapshot = p["snapshot"] and (p["snapshot_treeish"] == "stable" or not os.path.isfile(snap))
    result["snapshot"] = dict(path=snap, made=need_snapshot)
    if need_snapshot:
        result["changed"] = True
        if not module.check_mode:
            runner.run("snapshot", ["-s", p["snapshot_treeish"]])

    plan = plan_stages(module, specs, spec_changed)
    first_built = next((t for t, _values, _product, reason in plan if reason), None)
    # stages may be empty: part A's seed step only makes the snapshot.
    if p["stages"] and first_built == p["stages"][0] and cs.find_seed(p["storedir"], p["seed"]) is None \
            and not module.check_mode:
        module.fail_json(msg="seed %s not found under %s/builds (with or without a tarball extension)"
                         % (p["seed"], p["storedir"]), failed_target=first_built, **result)

    for target, values, product, reason in plan:
        entry = dict(target=target, built=reason is not None, reason=reason,
                     spec=os.path.join(p["config_dir"], "%s.spec" % target))
        if values.get("pkgcache_path"):
            entry["pkgcache"] = values["pkgcache_path"]
        result["stages"].append(entry)
        if reason is None:
            entry["product"] = product
            continue
        result["changed"] = True
        if module.check_mode:
            continue
        entry["cmd"] = runner.run(target, build_flags(p, reason) + ["-f", entry["spec"]])
        entry["product"] = cs.find_product(p["storedir"], p["rel_type"], target, p["subarch"],
                                           p["version_stamp"], p["compression_mode"])
        if entry["product"] is None:
            module.fail_json(
                msg="catalyst reported success on %s but wrote no %s" % (target, cs.product_path(
                    p["storedir"], p["rel_type"], target, p["subarch"], p["version_stamp"],
                    p["compression_mode"])),
                cmd=entry["cmd"], rc=0, failed_target=target, **result)

    if not module.check_mode:
        result["products"] = [
            dict(target=e["target"], path=e["product"], size=os.path.getsize(e["product"]),
                 sha512=sha512(e["product"]))
            for e in result["stages"]]
        if result["products"]:
            result["stage3"] = result["products"][-1]["path"]
    module.exit_json(**result)


if __name__ == "__main__":
    main()
