"""Time states: a saved run (all parameters and every configuration file read).

One YAML file per state in the state directory (gse_state_dir in
config.d/system.yml, default /var/lib/gse/states; GSE_STATE_DIR overrides).
The directory is 0700 and every state 0600: states are private to root.
States are numbered by their order of creation, as ``gse --time-state?`` lists them.
"""
import datetime
import os
import re

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


def delete(directory, number):
    _require_root()
    name, path = _pick(directory, number)
    os.unlink(path)
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
           if k not in SESSION_DESTS and k not in ("time_state", "time_warp")}
    return {
        "name": name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "gse_version": __version__,
        "options": run,
        "config": snapshot(config),
    }


def save(directory, document):
    """Write a state (0600 in a 0700 directory); return its number."""
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
    text = yaml.safe_dump(document, sort_keys=False, default_flow_style=False)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(text)
    return len(entries(directory))


def load(directory, number):
    """Return (options, Config with the snapshot) of state N."""
    _require_root()
    name, path = _pick(directory, number)
    try:
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        options = dict(doc["options"])
        for dest, value in options.items():
            opt = BY_DEST.get(dest)
            if opt is None or dest in SESSION_DESTS or dest in ("time_state", "time_warp"):
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
    except UsageError as exc:
        raise UsageError("time state %d (%s) is damaged: %s" % (number, name, exc)) from None
    except (OSError, yaml.YAMLError, KeyError, TypeError, ValueError, AttributeError, RecursionError) as exc:
        raise UsageError("time state %d (%s) is damaged: %s" % (number, name, _shown(str(exc))[1:-1])) from None
    return options, cfg


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
