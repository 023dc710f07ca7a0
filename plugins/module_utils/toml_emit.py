# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A small TOML writer for flat configuration files such as catalyst.conf.

catalyst 4 reads its configuration with a TOML parser (tomli/tomllib), but
Python only ships a reader.  catalyst.conf is a flat table of strings,
numbers, booleans and lists of strings, so a few lines cover it and spare the
build host a runtime dependency.  Anything else is refused, not guessed.
"""

from __future__ import annotations

import math
import re

_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _string(value):
    # Basic strings: escape backslash, quote and control characters.
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append("\\u%04x" % ord(ch))
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


def _value(value, key):
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if math.isnan(value) or math.isinf(value):
            raise ValueError("%s: %r has no TOML form here" % (key, value))
        return repr(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_value(v, key) for v in value) + "]"
    raise ValueError("%s: values of type %s are not supported" % (key, type(value).__name__))


def dumps(table, header=None):
    """Return ``table`` (a flat dict) as TOML text, keys in the given order.

    ``None`` values are left out, so callers can pass optional settings
    unconditionally.  ``header`` lines are written as comments first.
    """
    lines = []
    for line in header or ():
        lines.append("# " + line if line else "#")
    if lines:
        lines.append("")
    for key, value in table.items():
        if value is None:
            continue
        if isinstance(value, dict):
            raise ValueError("%s: nested tables are not supported" % key)
        name = key if _BARE_KEY.match(key) else _string(key)
        lines.append("%s = %s" % (name, _value(value, key)))
    return "\n".join(lines) + "\n"
