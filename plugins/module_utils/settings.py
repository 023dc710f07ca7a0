# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The schema of every setting, read from the roles' argument specs, and the checked reading of config.d.

The roles' ``meta/argument_specs.yml`` (written by ``scripts/gen-argument-specs``
from the documented role defaults) are the one source: each option gives the
type, the element type of a list, the choices and, in its description, a range
(``Range: -20..19.``).  A ``path`` is absolute (or empty: none).  ``configd.py``
says which settings config.d may hold and in which file.

The gse command and the playbook's first task (``gse.stateless.configd``) both
read config.d through ``read_dirs``: a file that breaks the schema is refused
with its path, line and column before anything is touched.  YAML is read with
limits (size, depth, aliases and their expansion) so that no file can hang or
crash the reader.  Like hooks.py this file imports nothing from Ansible.
"""

from __future__ import annotations

import difflib
import os
import re
import stat

try:
    import yaml
    HAS_YAML = True
except ImportError:  # pragma: no cover - PyYAML comes with Ansible on the controller
    HAS_YAML = False

from . import configd as _configd

ROLES_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "roles")

MAX_FILE_BYTES = 1024 * 1024   # a config.d file is a few KiB; this refuses /dev/zero-like input at once
MAX_DEPTH = 32                 # nesting of mappings and lists
MAX_ALIASES = 100              # *alias references in one file
MAX_NODES = 100000             # nodes once every alias is expanded (refuses "billion laughs")
INT_BOUND = 2 ** 63            # numbers without a range stay within a signed 64-bit integer
SUFFIXES = (".yml", ".yaml")
_FILE_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.ya?ml$")
_VAR_NAME = re.compile(r"^gse_[a-z0-9_]+$")
_RANGE = re.compile(r"Range: (-?\d+)\.\.(-?\d+)\.")


class SettingsError(Exception):
    """A configuration that breaks the schema; str() is one line: where, then what."""

    def __init__(self, where, message):
        super().__init__("%s: %s" % (where, message))
        self.where = where
        self.message = message


def plain(text, limit=120):
    """Text as a one-line message shows it: control characters escaped, cut after ``limit``."""
    text = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in str(text))
    return text if len(text) <= limit else text[:limit] + "..."


def shown(value, limit=60):
    """A value as a message shows it: quoted if text, control characters escaped, cut after ``limit``."""
    return plain("'%s'" % value if isinstance(value, str) else repr(value), limit)


class Setting:
    """One option of a role's argument spec."""

    def __init__(self, name, spec, role):
        self.name = name
        self.role = role
        self.type = spec.get("type", "str")
        self.elements = spec.get("elements")
        self.choices = tuple(spec.get("choices") or ())
        self.default = spec.get("default")
        self.no_log = bool(spec.get("no_log"))
        self.required = bool(spec.get("required"))
        self.options = {k: Setting(k, v, role) for k, v in (spec.get("options") or {}).items()}
        desc = " ".join(spec.get("description") or []) if isinstance(spec.get("description"), list) \
            else str(spec.get("description") or "")
        m = _RANGE.search(desc)
        self.range = (int(m.group(1)), int(m.group(2))) if m else None

    def _scalar(self, kind, value, choices=(), rng=None):
        """Why ``value`` is not a ``kind``, or None."""
        if kind == "raw":
            return None
        if isinstance(value, str) and "{{" in value:
            return None  # a template: Ansible resolves it; its result is checked by the role's argument spec
        if kind == "bool":
            if not isinstance(value, bool):
                return "expected true or false, found %s" % shown(value)
        elif kind == "int":
            if isinstance(value, bool) or not isinstance(value, int):
                return "expected a whole number, found %s" % shown(value)
            low, high = rng or (-INT_BOUND, INT_BOUND - 1)
            if not low <= value <= high:
                return "expected a number from %d to %d, found %s" % (low, high, shown(value))
        elif kind in ("str", "path"):
            if not isinstance(value, str):
                return "expected text, found %s" % shown(value)
            if kind == "path" and value and not value.startswith("/"):
                return "expected an absolute path (or empty), found %s" % shown(value)
            if "\0" in value:
                return "the text holds a NUL byte"
        elif kind == "dict":
            if not isinstance(value, dict):
                return "expected a mapping, found %s" % shown(value)
        elif kind == "list":
            if not isinstance(value, list):
                return "expected a list, found %s" % shown(value)
        if choices and value not in choices:
            return "expected one of %s, found %s" % (", ".join(str(c) for c in choices), shown(value))
        return None

    def problem(self, value):
        """(why, index of the list element at fault or None) when ``value`` breaks the schema, else None."""
        if value is None and self.default is None:
            return None  # null: leave it as it is (the documented meaning of a null default)
        elements = self.elements if self.type == "list" else None
        why = self._scalar(self.type, value, () if elements else self.choices, self.range)
        if why:
            return why, None
        if elements and isinstance(value, list):
            for i, item in enumerate(value):
                why = self._scalar(elements, item, self.choices, self.range) or self._entry(item)
                if why:
                    return "item %d: %s" % (i + 1, why), i
        return None

    def _entry(self, item):
        """Why a list entry breaks the suboptions (``options`` of the spec), or None."""
        if not self.options or not isinstance(item, dict):
            return None
        for key, value in item.items():
            sub = self.options.get(key)
            if sub is None:
                close = difflib.get_close_matches(str(key), list(self.options), n=1, cutoff=0.6)
                return "unknown key %s%s (keys: %s)" % (shown(key), "; did you mean %s?" % close[0] if close else "",
                                                        ", ".join(self.options))
            problem = sub.problem(value)
            if problem:
                why = problem[0]
                if sub.no_log:
                    why = re.sub(r", found .*", "", why)
                return "%s: %s" % (key, why)
        for key, sub in self.options.items():
            if sub.required and item.get(key) is None:
                return "%s is required" % key
        return None


def load_schema(roles_dir=ROLES_DIR):
    """{name: Setting} of every role's argument spec (a name two roles share must agree in type)."""
    if not HAS_YAML:
        raise RuntimeError("PyYAML is required to read the argument specs")
    out = {}
    for role in sorted(os.listdir(roles_dir)):
        path = os.path.join(roles_dir, role, "meta", "argument_specs.yml")
        if not os.path.isfile(path):
            continue
        with open(path, encoding="utf-8") as f:
            doc = yaml.safe_load(f) or {}
        for name, spec in ((doc.get("argument_specs") or {}).get("main") or {}).get("options", {}).items():
            out.setdefault(name, Setting(name, spec, role))
    return out


def config_settings(schema):
    """{name: Setting} of what config.d may hold."""
    return {n: s for n, s in schema.items() if n in _configd.CATEGORY_OF}


class _Limit(Exception):
    """A YAML text beyond the reader's limits."""

    def __init__(self, message, mark):
        super().__init__(message)
        self.mark = mark


if HAS_YAML:
    class _Loader(yaml.SafeLoader):  # pylint: disable=too-many-ancestors
        """SafeLoader with limits on depth, aliases, self-reference and expanded size."""

        def __init__(self, stream):
            super().__init__(stream)
            self._depth = 0
            self._aliases = 0
            self._open = set()

        def compose_node(self, parent, index):
            if self.check_event(yaml.AliasEvent):
                event = self.peek_event()
                self._aliases += 1
                if self._aliases > MAX_ALIASES:
                    raise _Limit("more than %d aliases (*name)" % MAX_ALIASES, event.start_mark)
                if event.anchor in self._open:
                    raise _Limit("the alias *%s refers to the node that holds it"
                                 % plain(event.anchor, 20), event.start_mark)
                return super().compose_node(parent, index)
            event = self.peek_event()
            self._depth += 1
            if self._depth > MAX_DEPTH:
                raise _Limit("nested deeper than %d levels" % MAX_DEPTH, event.start_mark)
            anchor = getattr(event, "anchor", None)
            if anchor:
                self._open.add(anchor)
            try:
                return super().compose_node(parent, index)
            finally:
                self._depth -= 1
                self._open.discard(anchor)


def _where(path, mark):
    return path if mark is None else "%s:%d:%d" % (path, mark.line + 1, mark.column + 1)


def _expanded(node, memo):
    """Number of nodes once every alias is expanded (shared nodes counted once per use)."""
    key = id(node)
    if key not in memo:
        if isinstance(node, yaml.MappingNode):
            memo[key] = 1 + sum(_expanded(k, memo) + _expanded(v, memo) for k, v in node.value)
        elif isinstance(node, yaml.SequenceNode):
            memo[key] = 1 + sum(_expanded(v, memo) for v in node.value)
        else:
            memo[key] = 1
    return memo[key]


def parse(path, text):
    """[(key, value, key mark, value node)] of one config.d text; raises SettingsError."""
    loader = None
    try:
        # The reader refuses control characters as it is made: inside the try.
        loader = _Loader(text)
        node = loader.get_single_node()
        if node is None:
            return []
        if _expanded(node, {}) > MAX_NODES:
            raise SettingsError(path, "more than %d values once its aliases are expanded" % MAX_NODES)
        if not isinstance(node, yaml.MappingNode):
            raise SettingsError(_where(path, node.start_mark), "expected a mapping of gse_* variables, found %s"
                                % node.tag.rsplit(":", 1)[-1])
        out = []
        for key_node, value_node in node.value:
            try:
                key = loader.construct_object(key_node, deep=True)
                value = loader.construct_object(value_node, deep=True)
            except (ValueError, TypeError, OverflowError) as exc:
                # SafeConstructor raises these for values such as !!int 'abc' or a 5000-digit number.
                raise SettingsError(_where(path, value_node.start_mark),
                                    "not a valid value: %s" % plain(str(exc), 80)) from None
            out.append((key, value, key_node.start_mark, value_node))
        return out
    except SettingsError:
        raise
    except _Limit as exc:
        raise SettingsError(_where(path, exc.mark), "refused: %s" % exc) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise SettingsError(_where(path, mark), "not valid YAML: %s" % plain(exc.problem or exc.context, 120)) \
            from None
    except yaml.YAMLError as exc:
        raise SettingsError(path, "not valid YAML: %s" % plain(str(exc), 160)) from None
    except (ValueError, TypeError, OverflowError, RecursionError) as exc:
        raise SettingsError(path, "not valid YAML: %s" % plain(str(exc), 120)) from None
    finally:
        if loader is not None:
            loader.dispose()


def _mark_of(node, index):
    if index is not None and isinstance(node, yaml.SequenceNode) and index < len(node.value):
        return node.value[index].start_mark
    return node.start_mark


def check(path, entries, schema, flag_of=None):
    """Check parsed entries of config.d/<category>.yml; return them as a dict or raise SettingsError.

    ``flag_of`` maps a variable to the gse flag that sets it (for the message
    on a variable config.d may not hold).
    """
    flag_of = flag_of or {}
    name = os.path.basename(path)
    category = name.rsplit(".", 1)[0]
    settable = config_settings(schema)
    data = {}
    for key, value, key_mark, value_node in entries:
        where = _where(path, key_mark)
        if not isinstance(key, str) or not _VAR_NAME.match(key):
            raise SettingsError(where, "%s is not a gse_* variable name" % shown(key))
        if key in data:
            raise SettingsError(where, "%s is set twice" % key)
        if key not in settable:
            if key in schema:
                how = "the gse command's flag %s" % flag_of[key] if key in flag_of else "the gse command"
                raise SettingsError(where, "%s is set by %s, not by config.d" % (key, how))
            close = difflib.get_close_matches(key, list(settable), n=1, cutoff=0.75)
            raise SettingsError(where, "unknown setting %s%s" % (
                key, "; did you mean %s?" % close[0] if close else " (see man 5 gse)"))
        home = _configd.CATEGORY_OF[key]
        if home != category:
            raise SettingsError(where, "%s belongs in %s.yml" % (key, home))
        problem = settable[key].problem(value)
        if problem:
            why, index = problem
            if settable[key].no_log:
                why = re.sub(r", found .*", "", why)  # never show a secret's value
            mark = _mark_of(value_node, index) if value_node is not None else None
            raise SettingsError(_where(path, mark) if mark else where, "%s: %s" % (key, why))
        data[key] = value
    return data


def check_data(path, data, schema, flag_of=None):
    """check() for data without positions (a time state's snapshot)."""
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise SettingsError(path, "expected a mapping of gse_* variables, found %s" % type(data).__name__)
    return check(path, [(k, v, None, None) for k, v in data.items()], schema, flag_of)


def read_file(path):
    """The text of a config.d file: a regular file of at most MAX_FILE_BYTES, UTF-8."""
    try:
        st = os.stat(path)
    except OSError as exc:
        raise SettingsError(path, "cannot read: %s" % (exc.strerror or exc)) from None
    if not stat.S_ISREG(st.st_mode):
        raise SettingsError(path, "not a regular file; config.d holds only regular <category>.yml files")
    try:
        with open(path, "rb") as f:
            raw = f.read(MAX_FILE_BYTES + 1)
    except OSError as exc:
        raise SettingsError(path, "cannot read: %s" % (exc.strerror or exc)) from None
    if len(raw) > MAX_FILE_BYTES:
        raise SettingsError(path, "larger than %d bytes" % MAX_FILE_BYTES)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise SettingsError(path, "not UTF-8 text (byte %d)" % exc.start) from None


def config_files(directory):
    """Paths of directory's config files (*.yml and *.yaml), sorted; refuses what cannot be one."""
    try:
        names = sorted(os.listdir(directory))
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise SettingsError(directory, "cannot read the directory: %s" % (exc.strerror or exc)) from None
    out = []
    for name in names:
        if not name.endswith(SUFFIXES):
            continue
        path = os.path.join(directory, name)
        if not _FILE_NAME.match(name):
            raise SettingsError(path, "configuration files are named <category>.yml")
        if name.rsplit(".", 1)[0] not in {c[0] for c in _configd.CATEGORIES}:
            raise SettingsError(path, "no such category; config.d files are %s"
                                % ", ".join(c[0] + ".yml" for c in _configd.CATEGORIES))
        out.append(path)
    stems = [os.path.basename(p).rsplit(".", 1)[0] for p in out]
    for stem in stems:
        if stems.count(stem) > 1:
            raise SettingsError(os.path.join(directory, stem + ".yaml"),
                                "%s.yml and %s.yaml are both present: keep one" % (stem, stem))
    return out


def check_private(path, data, schema):
    """A file that holds a secret (a no_log setting with a value) must be private: mode 0600 or stricter."""
    secrets = sorted(k for k, v in data.items() if v and k in schema and schema[k].no_log)
    if not secrets:
        return
    mode = stat.S_IMODE(os.stat(path).st_mode)
    if mode & 0o077:
        raise SettingsError(path, "holds secrets (%s) but its mode is %04o: make it private with chmod 0600 %s"
                            % (", ".join(secrets), mode, path))


def read_dirs(dirs, schema=None, flag_of=None):
    """[(directory, file name, data)] of every config.d file, checked; missing directories are skipped."""
    schema = schema if schema is not None else load_schema()
    out = []
    for d in dirs:
        if os.path.exists(d) and not os.path.isdir(d):
            raise SettingsError(d, "not a directory")
        for path in config_files(d):
            entries = parse(path, read_file(path))
            data = check(path, entries, schema, flag_of)
            check_private(path, data, schema)
            out.append((d, os.path.basename(path), data))
    return out
