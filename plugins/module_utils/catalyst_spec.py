# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""catalyst 4's file contract: catalyst.conf, stage spec files and the storedir layout.

Facts taken from catalyst 4 and pyDeComp (the library catalyst packs with):
- catalyst.conf is TOML (catalyst/main.py loads it with tomli); keys outside
  catalyst/defaults.py's valid_config_file_values are reported as unknown.
- Spec files are ``key: value`` lines; a value may continue on following lines
  indented with a tab (catalyst/config.py SpecParser).
- The product of a stage target is
  ``storedir/builds/<rel_type>/<target>-<subarch>-<version_stamp>.<ext>`` where
  <ext> is the first extension pyDeComp lists for ``compression_mode``
  (StageBase.set_target_path + capture).
- A stage's seed is ``storedir/builds/<source_subpath>`` with or without one of
  the accepted extensions (StageBase.set_source_path, file_check).
- ``catalyst --snapshot <treeish>`` writes
  ``storedir/snapshots/<repo_name>-<treeish>.sqfs`` (TargetBase.set_snapshot).
"""

from __future__ import annotations

import os

# The keys catalyst 4 accepts in catalyst.conf (catalyst/defaults.py).
CONF_KEYS = frozenset([
    "binhost", "compression_mode", "digests", "digest_format", "distcc_hosts",
    "distdir", "envscript", "jobs", "load-average", "options", "port_logdir",
    "repo_basedir", "repo_name", "repos_storedir", "sharedir", "storedir",
    "target_distdir", "target_logdir", "target_pkgdir", "var_tmpfs_portage",
])

# catalyst 4's default compression_mode (catalyst/defaults.py confdefaults).
DEFAULT_COMPRESSION = "lbzip2"
DEFAULT_REPO_NAME = "gentoo"

# compression_mode -> tarball extensions, the first one being what catalyst
# writes (pyDeComp definitions.py COMPRESS_DEFINITIONS).  Only the modes that
# produce a tarball: a stage product is always a tarball.
COMPRESSION_EXTENSIONS = {
    "tar": ("tar",),
    "tar_x": ("tar",),
    "xz": ("tar.xz",),
    "xz_x": ("tar.xz",),
    "pixz": ("tar.xz", "tpxz", "xz"),
    "pixz_x": ("tar.xz", "tpxz", "xz"),
    "pixz_i": ("tar.xz", "tpxz", "xz"),
    "gzip": ("tar.gz",),
    "gzip_x": ("tar.gz",),
    "bzip2": ("tar.bz2",),
    "bzip2_x": ("tar.bz2",),
    "lbzip2": ("tar.bz2",),
    "lbzip2_x": ("tar.bz2",),
    "zstd": ("tar.zstd", "tar.zst", "tzst", "zst"),
    "pzstd": ("tar.pzstd", "tar.zstd", "tar.zst", "tzst", "zst"),
}

# Every extension a seed may carry (the union of the decompressors' lists).
SEED_EXTENSIONS = ("tar.xz", "tar.bz2", "tar.gz", "tar.zst", "tar.zstd", "tar",
                   "tpxz", "tbz2", "tzst", "xz", "bz2", "gz", "zst")

STAGES = ("stage1", "stage2", "stage3")

# Spec keys in the order a reader expects them (catalyst's own examples).
SPEC_ORDER = (
    "subarch", "target", "version_stamp", "rel_type", "profile",
    "snapshot_treeish", "source_subpath", "compression_mode",
    "decompressor_search_order", "portage_confdir", "portage_prefix", "repos",
    "chost", "update_seed", "update_seed_command",
)


def extensions(mode):
    """Tarball extensions of ``mode``; ValueError for a mode that makes no tarball."""
    try:
        return COMPRESSION_EXTENSIONS[mode]
    except KeyError:
        raise ValueError(
            "compression_mode %r does not produce a tarball; use one of: %s"
            % (mode, ", ".join(sorted(COMPRESSION_EXTENSIONS))))


def target_subpath(rel_type, target, subarch, version_stamp):
    return "%s/%s-%s-%s" % (rel_type, target, subarch, version_stamp)


def product_path(storedir, rel_type, target, subarch, version_stamp, mode):
    """Where catalyst writes the tarball of a stage target."""
    base = os.path.join(storedir, "builds", target_subpath(rel_type, target, subarch, version_stamp))
    return base + "." + extensions(mode)[0]


def find_product(storedir, rel_type, target, subarch, version_stamp, mode):
    """The existing product of a stage (any extension of ``mode``), or None."""
    base = os.path.join(storedir, "builds", target_subpath(rel_type, target, subarch, version_stamp))
    for ext in extensions(mode):
        if os.path.isfile(base + "." + ext):
            return base + "." + ext
    return None


def find_seed(storedir, source_subpath):
    """The seed file catalyst would take for ``source_subpath``, or None."""
    base = os.path.join(storedir, "builds", source_subpath)
    if os.path.isfile(base):
        return base
    for ext in SEED_EXTENSIONS:
        if os.path.isfile(base + "." + ext):
            return base + "." + ext
    return None


def pkgcache_path(pkgcache_dir, rel_type, target, subarch):
    """A stage's package cache under ``pkgcache_dir``.

    The layout of catalyst 4's own default (StageBase.set_pkgcache_path
    without versioned_cache: <storedir>/packages/<rel_type>/<target>-<subarch>),
    so every version_stamp of a stage shares one cache.
    """
    return os.path.join(pkgcache_dir, rel_type, "%s-%s" % (target, subarch))


def snapshot_path(storedir, treeish, repo_name=DEFAULT_REPO_NAME):
    return os.path.join(storedir, "snapshots", "%s-%s.sqfs" % (repo_name, treeish))


def _spec_value(value):
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)):
        # One item per tab-indented continuation line, as catalyst's examples do.
        return "".join("\n\t" + str(v) for v in value)
    return str(value)


def render_spec(values):
    """Spec text for ``values`` (dict); None values are left out.

    Known keys come first in SPEC_ORDER, any other keys after them sorted, so
    the same input always gives the same bytes (and no needless rewrite).
    """
    keys = [k for k in SPEC_ORDER if k in values]
    keys += sorted(k for k in values if k not in SPEC_ORDER)
    lines = []
    for key in keys:
        value = values[key]
        if value is None or value == [] or value == "":
            continue
        text = _spec_value(value)
        if "\n" in str(value) and not isinstance(value, (list, tuple)):
            raise ValueError("spec value of %s spans lines; give a list instead" % key)
        lines.append("%s:%s%s" % (key, "" if text.startswith("\n") else " ", text))
    return "\n".join(lines) + "\n"


def stage_specs(common, stages=STAGES, seed=None, per_stage=None):
    """Spec values for each stage, chaining source_subpath stage1 -> 2 -> 3.

    ``common`` holds the keys every stage shares (subarch, rel_type,
    version_stamp, profile, snapshot_treeish, ...).  The first stage built
    takes ``seed`` (a path under storedir/builds, without extension); every
    later stage takes the product of the one before it.
    """
    per_stage = per_stage or {}
    specs = []
    previous = None
    for target in stages:
        values = dict(common)
        values["target"] = target
        if previous is None:
            values["source_subpath"] = seed
        else:
            values["source_subpath"] = target_subpath(
                common["rel_type"], previous, common["subarch"], common["version_stamp"])
        if target != "stage1":
            # update_seed belongs to stage1 only; catalyst rejects it elsewhere.
            values.pop("update_seed", None)
            values.pop("update_seed_command", None)
        values.update(per_stage.get(target) or {})
        specs.append((target, values))
        previous = target
    return specs
