"""--time-warp as an exact replay: what a state keeps besides options and config.d, and how it is restored.

A time state keeps, by SHA-512 and copied into the state (gse/states.py):
the --sdir scripts the run sources, the inject-custom files, the --kernel and
--initrd images.  After part A resolved them, it also records the stage3 the
run used (version, file, SHA-512) and, for catalyst, the Portage snapshot
(the verified commit part A resolved the treeish to, the snapshot file and its
SHA-512), from ``$CLOCALLG/inputs.json`` that part A writes.  A snapshot
named by its commit that is gone is made again from that commit (catalyst_repo
verifies it again), which is still exact.

A replay checks all of it before anything is touched.  Whatever cannot be
restored exactly (a kept copy missing or not matching its digest, a stage3
or snapshot no longer there or changed, a state of the older format) is
listed, and the replay is refused unless --time-warp-inexact is given; then
each difference is a warning and today's file is used in its place.  The
kept copies are laid out in a private directory for the run (scripts under
their names, images under their base names, as the roles install them); the
stage3 is pinned for part A (``gse_stage3_pin``) and the snapshot's treeish
is the one recorded.
"""
import copy
import os
import re
import shutil

from . import layout
from .config import Config, ConfigFile

# What each kept file is, as messages name it.
KINDS = {
    "script": "--sdir script",
    "kernel": "--kernel image",
    "initrd": "--initrd image",
    "inject": "inject-custom file",
}
# Inputs part A resolves, as messages name them.
INPUTS = {"stage3": "stage3", "snapshot": "Portage snapshot"}
INPUTS_FILE = "inputs.json"
# A full git commit id (SHA-1 or SHA-256): what part A resolves catalyst's treeish to.
_COMMIT = re.compile(r"^(?:[0-9a-f]{40}|[0-9a-f]{64})$")


def sha512(path):
    """The SHA-512 of a file, as the collection computes it everywhere (module_utils/checksums.py)."""
    return layout._module_utils("checksums").sha512_file(path)


def _inject_sources(config):
    entries = config.merged.get("gse_inject_custom")
    if entries is None:
        setting = layout.schema().get("gse_inject_custom")
        entries = setting.default if setting is not None else []
    return [e["src"] for e in entries or [] if isinstance(e, dict) and isinstance(e.get("src"), str)]


def kept_files(plan):
    """([{kind, path, sha512, mode}], [(sha512, source)]) of the files the run reads, for its state."""
    found = []
    for script in dict.fromkeys(script for _, _, script in plan.pairs):
        found.append(("script", os.path.join(plan.script_dir, script)))
    for kind, var in (("kernel", "gse_kernel_path"), ("initrd", "gse_initrd_path")):
        if plan.extravars.get(var):
            found.append((kind, plan.extravars[var]))
    for src in _inject_sources(plan.config):
        # A directory or a missing source is the copy module's business (part B fails on it).
        if os.path.isabs(src) and os.path.isfile(src):
            found.append(("inject", src))
    entries, keep = [], []
    for kind, path in found:
        digest = sha512(path)
        entries.append({"kind": kind, "path": path, "sha512": digest,
                        "mode": os.stat(path).st_mode & 0o7777})
        keep.append((digest, path))
    return entries, keep


def expected_inputs(saved):
    """The inputs part A resolves for this run (none when gseed is passed)."""
    hooks = layout.hooks()
    lawful = []
    for value in saved.options.get("lawful_good") or []:
        lawful.extend(n for n in value.replace(" ", ",").split(",") if n)
    if "gseed" in hooks.expand(lawful):
        return []
    if saved.options.get("base") == "catalyst":
        # The seed stage3 is fetched only when catalyst has none: then it is recorded too.
        return ["snapshot"] + (["stage3"] if "stage3" in saved.inputs else [])
    return ["stage3"]


def _check_input(key, record):
    what = INPUTS[key]
    if not isinstance(record, dict) or not all(isinstance(record.get(k), str) for k in ("path", "sha512")):
        return "the %s the run used is not recorded: the saved run ended before part A resolved it" % what
    label = record.get("version") or record.get("treeish") or os.path.basename(record["path"])
    commit = key == "snapshot" and bool(_COMMIT.fullmatch(str(record.get("treeish") or "")))
    if key == "snapshot" and not commit:
        return "the Portage snapshot of %s is not named by a commit: it may be another tree today" % label
    if commit and not os.path.isfile(record["path"]):
        return None  # catalyst makes it again from the verified commit, which names it
    if not os.path.isfile(record["path"]):
        return "the %s %s the run used is no longer available (%s is gone)" % (what, label, record["path"])
    if sha512(record["path"]) != record["sha512"]:
        return "the %s at %s is not the one the run used (%s): its SHA-512 differs" % (
            what, record["path"], "version " + label if record.get("version") else label)
    return None


def differences(saved):
    """What a replay of ``saved`` cannot restore exactly, one line each (empty: an exact replay)."""
    if saved.format < 2:
        return ["it was saved by an older gse (state format %d), which kept no copies of the files the run "
                "read (--sdir scripts, inject-custom files, --kernel/--initrd images) and no record of the "
                "stage3 or snapshot it used: a replay would use today's" % saved.format]
    out = []
    for entry in saved.files:
        label = "%s %s" % (KINDS.get(entry["kind"], entry["kind"]), entry["path"])
        kept = os.path.join(saved.files_dir, entry["sha512"])
        if not os.path.isfile(kept):
            out.append("%s: the state's copy is missing (%s)" % (label, kept))
        elif sha512(kept) != entry["sha512"]:
            out.append("%s: the state's copy does not match the SHA-512 saved with it" % label)
    for key in expected_inputs(saved):
        problem = _check_input(key, saved.inputs.get(key))
        if problem:
            out.append(problem)
    return out


def stage(saved, target):
    """Lay the state's kept copies out under ``target``; return (options, Config) that read them.

    A copy that is missing or damaged (a forced replay) is left out: the run
    reads the original path, as the warning said."""
    options = dict(saved.options)
    usable = {}
    for entry in saved.files:
        kept = os.path.join(saved.files_dir, entry["sha512"])
        if os.path.isfile(kept) and sha512(kept) == entry["sha512"]:
            usable[(entry["kind"], entry["path"])] = (kept, entry.get("mode", 0o644))
    os.makedirs(target, mode=0o700, exist_ok=True)

    def place(kind, path, subdir):
        kept, mode = usable[(kind, path)]
        where = os.path.join(target, subdir)
        os.makedirs(where, mode=0o700, exist_ok=True)
        out = os.path.join(where, os.path.basename(path))
        shutil.copyfile(kept, out)
        os.chmod(out, mode)
        return out

    scripts = [e["path"] for e in saved.files if e["kind"] == "script"]
    if options.get("sdir") and scripts:
        for path in scripts:
            if ("script", path) not in usable and os.path.isfile(path):
                # Not restorable (a forced replay): today's script, beside the kept ones.
                usable[("script", path)] = (path, os.stat(path).st_mode & 0o7777)
            if ("script", path) in usable:
                place("script", path, "sdir")
        options["sdir"] = os.path.join(target, "sdir")
    for kind in ("kernel", "initrd"):
        # The option holds the path as typed; the entry the absolute path the run read.
        for entry_kind, path in list(usable):
            if entry_kind == kind and options.get(kind):
                options[kind] = place(kind, path, kind)
    config = Config(dirs=list(saved.config.dirs))
    for number, f in enumerate(saved.config.files):
        data = copy.deepcopy(f.data)
        for i, item in enumerate(data.get("gse_inject_custom") or []):
            key = ("inject", item.get("src") if isinstance(item, dict) else None)
            if key in usable:
                item["src"] = place("inject", key[1], "inject/%d-%d" % (number, i))
        config.files.append(ConfigFile(f.directory, f.name, data))
    return options, config


def pins(saved):
    """Extra variables that make part A use what the saved run resolved (where it is still there)."""
    out = {}
    stage3 = saved.inputs.get("stage3")
    if "stage3" in expected_inputs(saved) and _check_input("stage3", stage3) is None:
        out["gse_stage3_pin"] = {k: stage3[k] for k in ("path", "name", "version", "sha512") if k in stage3}
    snapshot = saved.inputs.get("snapshot")
    if "snapshot" in expected_inputs(saved) and _check_input("snapshot", snapshot) is None:
        out["gse_catalyst_snapshot_treeish"] = snapshot["treeish"]
    return out


def read_inputs(clocallg):
    """What part A recorded in $CLOCALLG/inputs.json ({} when it did not run)."""
    import json
    path = os.path.join(clocallg, INPUTS_FILE)
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {}
    return {k: v for k, v in data.items() if k in INPUTS and isinstance(v, dict) and v.get("path")}
