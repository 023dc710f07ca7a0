# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read and edit bash-style ``VAR="value"`` files (make.conf, env.d).

Only the assignments that are changed are rewritten; comments, blank lines,
other statements and the quoting of untouched assignments stay as they were.
Values are parsed the way bash reads the quoting (double quotes with
backslash escapes and line continuations, single quotes, bare words);
``${VAR}`` references are kept verbatim, for Portage to expand.
"""

from __future__ import annotations

import re

_START = re.compile(r"^([ \t]*(?:export[ \t]+)?)([A-Za-z_][A-Za-z0-9_]*)=")
# Inside double quotes a backslash escapes only these (and a newline).
_DQ_ESCAPES = '"\\$`'


class ParseError(ValueError):
    pass


class Assignment(object):
    """``NAME=value`` spanning lines[start:end + 1]."""

    def __init__(self, name, value, start, end, prefix, suffix):
        self.name = name
        self.value = value
        self.start = start
        self.end = end
        self.prefix = prefix    # indentation and "export " before NAME
        self.suffix = suffix    # what follows the value on its last line (a comment, the newline)


def _read_word(text, i, line_no):
    """Parse a shell word starting at text[i]: (value, index after it, lines crossed)."""
    out = []
    crossed = 0
    n = len(text)
    while i < n:
        c = text[i]
        if c in " \t\n;":
            break
        if c == "\\":
            if i + 1 < n and text[i + 1] == "\n":
                crossed += 1
            elif i + 1 < n:
                out.append(text[i + 1])
            i += 2
            continue
        if c == "'":
            j = text.find("'", i + 1)
            if j < 0:
                raise ParseError("unterminated ' quote on line %d" % (line_no + 1))
            out.append(text[i + 1:j])
            crossed += text.count("\n", i, j)
            i = j + 1
            continue
        if c == '"':
            i += 1
            while True:
                if i >= n:
                    raise ParseError('unterminated " quote from line %d' % (line_no + 1))
                c = text[i]
                if c == '"':
                    i += 1
                    break
                if c == "\\" and i + 1 < n and text[i + 1] == "\n":
                    crossed += 1
                    i += 2
                    continue
                if c == "\\" and i + 1 < n and text[i + 1] in _DQ_ESCAPES:
                    out.append(text[i + 1])
                    i += 2
                    continue
                if c == "\n":
                    crossed += 1
                out.append(c)
                i += 1
            continue
        out.append(c)
        i += 1
    return "".join(out), i, crossed


def parse(text):
    """(lines, assignments): the text split into lines (with their ends) and its assignments in order."""
    # Only "\n" ends a line for the shell; str.splitlines() would also split
    # on \x1c-\x1e, \x85 and U+2028, which may sit inside a quoted value.
    lines = [line for line in re.split(r"(?<=\n)", text) if line]
    assignments = []
    offsets = []
    pos = 0
    for line in lines:
        offsets.append(pos)
        pos += len(line)
    index = 0
    while index < len(lines):
        m = _START.match(lines[index])
        if not m:
            index += 1
            continue
        begin = offsets[index] + m.end()
        value, stop, crossed = _read_word(text, begin, index)
        end = index + crossed
        line_end = offsets[end] + len(lines[end])
        suffix = text[stop:line_end]
        assignments.append(Assignment(m.group(2), value, index, end, m.group(1), suffix))
        index = end + 1
    return lines, assignments


def get(text, name):
    """The value of the last assignment of ``name``, or None."""
    found = [a for a in parse(text)[1] if a.name == name]
    return found[-1].value if found else None


def variables(text):
    """{name: value} with the last assignment of each name winning."""
    return {a.name: a.value for a in parse(text)[1]}


def quote(value):
    """``"value"`` with the characters that end or escape a double-quoted string escaped.

    ``$`` is kept so that ``${COMMON_FLAGS}`` still refers to a variable.
    """
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"').replace("`", "\\`") + '"'


def set_value(text, name, value):
    """The text with ``name`` set to ``value`` (the last assignment is rewritten, or one appended)."""
    lines, assignments = parse(text)
    found = [a for a in assignments if a.name == name]
    if found and found[-1].value == value:
        return text
    line = "%s=%s" % (name, quote(value))
    if not found:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += "\n"
        return "".join(lines) + line + "\n"
    a = found[-1]
    suffix = a.suffix if a.suffix.endswith("\n") or a.end == len(lines) - 1 else a.suffix + "\n"
    lines[a.start:a.end + 1] = [a.prefix + line + suffix]
    return "".join(lines)


def remove(text, name):
    """The text without any assignment of ``name``."""
    lines, assignments = parse(text)
    for a in reversed([a for a in assignments if a.name == name]):
        del lines[a.start:a.end + 1]
    return "".join(lines)


def discard_tokens(text, name, tokens):
    """The text with the whitespace-separated ``tokens`` taken out of ``name``'s value."""
    current = get(text, name)
    if current is None:
        return text
    words = current.split()
    kept = [w for w in words if w not in tokens]
    if kept == words:
        return text
    return set_value(text, name, " ".join(kept))


def append_tokens(text, name, tokens):
    """The text with the missing whitespace-separated ``tokens`` added to ``name``'s value."""
    current = get(text, name)
    words = (current or "").split()
    missing = [t for t in tokens if t not in words]
    # A repeated token in the request is added once.
    missing = [t for i, t in enumerate(missing) if t not in missing[:i]]
    if not missing:
        return text
    return set_value(text, name, " ".join(words + missing) if current is not None else " ".join(missing))
