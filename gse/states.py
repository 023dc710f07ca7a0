"""Time states: a saved run (all parameters, every configuration file read, and the files it used).

One YAML file per state in the state directory (gse_state_dir in
config.d/system.yml, default /var/lib/gse/states; GSE_STATE_DIR overrides),
and beside it ``NNNN-name.files/``: copies of the files the run read (the
--sdir scripts, the inject-custom files, the --kernel/--initrd images), each
named by its SHA-512 (gse/warp.py decides what is kept and replays it).
The directory is 0700 and every state 0600: states are private to root.
States are numbered by their order of creation, as ``gse --time-state?`` lists them.

The document is versioned (``format``).  Format 1 (no ``format`` key, gse
before exact replays) holds options and config.d only; it is still read, and
a replay of it says what it cannot restore.  A format newer than this gse
knows is refused with the versions it reads.
"""
import datetime
import os
import re
import shutil
from dataclasses import dataclass, field

import yaml

from . import __version__
from .config import Config, ConfigFile, check_data
from .errors import UsageError
from .options import BY_DEST, SESSION_DESTS, SWITCH
from .secrets import scrub

DEFAULT_DIR = "/var/lib/gse/states"
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.+-]{0,63}$")
_FILE = re.compile(r"^(\d{4,})-(.+)\.yml$")
_CONFIG_FILE = re.compile(r"[a-z0-9][a-z0-9_-]*\.ya?ml")


FORMAT = 2               # the state document's version (see the module's doc)
_DIGEST = re.compile(r"^[0-9a-f]{128}$")
# Options that select a state, not a run: never saved in one.
NOT_SAVED = frozenset({"time_state", "time_warp", "time_warp_inexact"})

MAX_NUMBER_DIGITS = 9    # state numbers: no state directory holds a billion states


def is_number(text):
    """A state number as typed: 1 to 999999999, ASCII digits only."""
    return (isinstance(text, str) and 0 < len(text) <= MAX_NUMBER_DIGITS and text.isascii()
            and text.isdigit() and int(text) > 0)


def state_dir(config):
    env = os.environ.get("GSE_STATE_DIR")
    where = "GSE_STATE_DIR" if env else "gse_state_dir"
    value = env or config.merged.get("gse_state_dir", DEFAULT_DIR)
    if not isinstance(value, str) or not os.path.isabs(value):
        raise UsageError("%s must be an absolute path, not %s" % (where, _shown(value)))
    if os.path.exists(value) and not os.path.isdir(value):
        raise UsageError("%s: %s is not a directory" % (where, _shown(value)))
    return value


def _shown(value):
    from . import layout
    return layout.settings().shown(value)


def _require_root():
    if os.geteuid() != 0:
        raise UsageError("time states are private to root")


def check_name(name):
    if not isinstance(name, str) or not _NAME.fullmatch(name):
        raise UsageError("--time-state: %s is not a state name (letters, digits, _ . + -; "
                         "-N deletes state N)" % _shown(name))


def entries(directory):
    """[(number, name, path)] in order of creation."""
    if not os.path.isdir(directory):
        return []
    found = []
    for f in os.listdir(directory):
        m = _FILE.match(f)
        if m:
            found.append((int(m.group(1)), m.group(2), os.path.join(directory, f)))
    found.sort()
    return [(i + 1, name, path) for i, (_, name, path) in enumerate(found)]


def listing(directory):
    _require_root()
    return "".join("%d:%s\n" % (n, name) for n, name, _ in entries(directory))


def _pick(directory, number):
    for n, name, path in entries(directory):
        if n == number:
            return name, path
    count = len(entries(directory))
    raise UsageError("no time state %d (there %s %d; see gse --time-state?)"
                     % (number, "is" if count == 1 else "are", count))


def files_dir(path):
    """The directory of a state's kept files, beside its YAML file."""
    return path[:-len(".yml")] + ".files"


def delete(directory, number):
    _require_root()
    name, path = _pick(directory, number)
    os.unlink(path)
    kept = files_dir(path)
    if os.path.isdir(kept) and not os.path.islink(kept):
        shutil.rmtree(kept)
    return name


def snapshot(config):
    """The configuration as a state holds it: per directory, every file, secrets scrubbed."""
    out = []
    for d in config.dirs:
        files = {f.name: scrub(f.name, f.data) for f in config.files if f.directory == d}
        out.append({"dir": d, "files": files})
    return out


def build_document(name, options, config):
    run = {k: v for k, v in options.items()
           if k not in SESSION_DESTS and k not in NOT_SAVED}
    return {
        "format": FORMAT,
        "name": name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "gse_version": __version__,
        "options": run,
        "config": snapshot(config),
        "answers": {},    # the questions gse asked (gse/questions.py)
        "files": [],      # [{kind, path, sha512, mode}] kept in NNNN-name.files/ (gse/warp.py)
        "inputs": {},     # the stage3 and snapshot the run resolved, recorded when part A ran
    }


def _write(path, document, exclusive):
    text = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
    if exclusive:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        return
    tmp = path + ".new"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def save(directory, document, keep=()):
    """Write a state (0600 in a 0700 directory) and the copies ``keep`` ([(sha512, source)]); return its number.

    The copies are written first: a state file never names a copy that is not there."""
    _require_root()
    check_name(document["name"])
    if any(name == document["name"] for _, name, _ in entries(directory)):
        raise UsageError("a time state named %s exists already (see gse --time-state?)"
                         % document["name"])
    # A directory made here is private (0700, whatever the umask); one that
    # exists keeps its mode: GSE_STATE_DIR=/tmp must stay 1777.
    if not os.path.isdir(directory):
        os.makedirs(directory, mode=0o700)
        os.chmod(directory, 0o700)
    numbers = [int(_FILE.match(f).group(1)) for f in os.listdir(directory) if _FILE.match(f)]
    seq = max(numbers, default=0) + 1
    path = os.path.join(directory, "%04d-%s.yml" % (seq, document["name"]))
    if keep:
        kept = files_dir(path)
        os.makedirs(kept, mode=0o700, exist_ok=True)
        for digest, source in keep:
            target = os.path.join(kept, digest)
            if not os.path.exists(target):
                shutil.copyfile(source, target + ".part")
                os.chmod(target + ".part", 0o600)
                os.replace(target + ".part", target)
    _write(path, document, exclusive=True)
    return len(entries(directory))


def record_inputs(directory, name, inputs):
    """Add what the run resolved (stage3, snapshot) to the state ``name`` saved for it."""
    for _, found, path in entries(directory):
        if found == name:
            with open(path, encoding="utf-8") as f:
                doc = yaml.safe_load(f)
            doc.setdefault("inputs", {}).update(inputs)
            _write(path, doc, exclusive=False)
            return True
    return False


@dataclass
class Saved:
    """A state as loaded: what a replay needs."""

    number: int
    name: str
    path: str
    format: int
    options: dict
    config: Config
    answers: dict = field(default_factory=dict)
    files: list = field(default_factory=list)
    inputs: dict = field(default_factory=dict)

    @property
    def files_dir(self):
        return files_dir(self.path)


def load(directory, number):
    """Return state N as a Saved (options, the Config of its snapshot, answers, kept files, inputs)."""
    _require_root()
    name, path = _pick(directory, number)
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        version = doc.get("format", 1)
        if not isinstance(version, int) or isinstance(version, bool) or version < 1:
            raise ValueError("its format is %s" % _shown(version))
        if version > FORMAT:
            raise UsageError("time state %d (%s) was saved by a newer gse (format %d); this gse reads "
                             "formats 1 to %d" % (number, name, version, FORMAT))
        options = dict(doc["options"])
        for dest, value in options.items():
            opt = BY_DEST.get(dest)
            if opt is None or dest in SESSION_DESTS or dest in NOT_SAVED:
                raise ValueError("it holds the unknown option %s" % _shown(dest))
            values = value if opt.repeat else [value]
            if not isinstance(values, list) or not all(
                    isinstance(v, bool if opt.kind == SWITCH else str) for v in values):
                raise ValueError("its option %s holds %s" % (opt.names[0], _shown(value)))
        cfg = Config(dirs=[])
        for i, layer in enumerate(doc["config"]):
            if not isinstance(layer["dir"], str):
                raise ValueError("a configuration directory is %s" % _shown(layer["dir"]))
            cfg.dirs.append(layer["dir"])
            for fname, data in sorted(layer["files"].items()):
                # The name becomes a file name when the state is replayed: only <category>.yml.
                if not isinstance(fname, str) or not _CONFIG_FILE.fullmatch(fname):
                    raise ValueError("it names the configuration file %s" % _shown(fname))
                cfg.files.append(ConfigFile(layer["dir"], fname, check_data(fname, data)))
        answers, files, inputs = _extras(doc)
    except UsageError as exc:
        if "saved by a newer gse" in str(exc):
            raise
        raise UsageError("time state %d (%s) is damaged: %s" % (number, name, exc)) from None
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise UsageError("time state %d (%s) is damaged: %s" % (number, name, _shown(str(exc))[1:-1])) from None
    return Saved(number, name, path, version, options, cfg, answers, files, inputs)


def _extras(doc):
    """The answers, kept files and inputs of a format 2 document, checked (format 1 has none)."""
    answers = doc.get("answers") or {}
    if not isinstance(answers, dict) or not all(
            isinstance(k, str) and k.startswith("gse_") and isinstance(v, bool) for k, v in answers.items()):
        raise ValueError("its answers are %s" % _shown(answers))
    files = doc.get("files") or []
    if not isinstance(files, list):
        raise ValueError("its files are %s" % _shown(files))
    for entry in files:
        if not (isinstance(entry, dict) and isinstance(entry.get("kind"), str)
                and isinstance(entry.get("path"), str) and os.path.isabs(entry["path"])
                and isinstance(entry.get("sha512"), str) and _DIGEST.fullmatch(entry["sha512"])
                and isinstance(entry.get("mode", 0o644), int)):
            raise ValueError("it keeps the file %s" % _shown(entry))
    inputs = doc.get("inputs") or {}
    if not isinstance(inputs, dict):
        raise ValueError("its inputs are %s" % _shown(inputs))
    return dict(answers), list(files), dict(inputs)


def materialize(cfg, target):
    """Write a state's configuration to ``target/<n>/`` (0700) and return those directories."""
    dirs = []
    for i, d in enumerate(cfg.dirs):
        out = os.path.join(target, str(i))
        os.makedirs(out, mode=0o700, exist_ok=True)
        for f in cfg.files:
            if f.directory != d:
                continue
            fd = os.open(os.path.join(out, f.name), os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                yaml.safe_dump(f.data, fh, sort_keys=False, default_flow_style=False)
        dirs.append(out)
    return dirs
