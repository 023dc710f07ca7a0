"""The commands a POSIX sh file runs, read from its syntax tree (shfmt
--to-json, the parser of Debian's shfmt) rather than from its text, so that
pipes, lists, command substitutions, conditions and function bodies are all
seen.  What this reader does not understand fails loudly (UnknownConstruct):
a construct it skipped would be a command it never checks.

Wrappers are followed: ``command X``, ``exec X``, ``timeout N X``,
``find ... -exec X``; ``chroot ROOT ...`` ends the search (what follows runs
in another root); ``BUSYBOX APPLET`` records the applet.  ``command -v X``
records X as probed (a guard), not as run.  A command word made of an
expansion is resolved from the code's single literal assignment of that
variable, else it must be listed among the reviewed calls."""
import json
import os
import subprocess
from dataclasses import dataclass, field

# Node types this reader walks; any other type is an UnknownConstruct.
KNOWN_TYPES = {
    "File", "CallExpr", "BinaryCmd", "IfClause", "WhileClause", "ForClause", "WordIter", "CaseClause",
    "Block", "Subshell", "FuncDecl", "ArithmCmd", "Lit", "SglQuoted", "DblQuoted", "ParamExp", "CmdSubst",
    "ArithmExp", "BinaryArithm", "UnaryArithm", "ParenArithm", "Word",
}
# Commands that run another command given as their arguments, which this
# reader does not follow: a call of one must be listed as reviewed.
UNFOLLOWED = {"eval", "trap", "xargs", "env", "nice", "nohup", "setsid", "sh", "bash", "dash", "su", "flock",
              "watch", "ionice", "stdbuf", "unshare", "nsenter", "busybox"}


class UnknownConstruct(Exception):
    """A piece of shell this reader cannot turn into commands."""


@dataclass
class Call:
    """One command run at ``path``:``line`` (``text``: the whole call's source)."""
    name: str
    path: str
    line: int
    text: str


@dataclass
class Found:
    """What a set of files runs, probes and defines."""
    calls: list = field(default_factory=list)        # Call: commands run (names or paths)
    probes: list = field(default_factory=list)       # Call: names probed by command -v / -V
    applets: list = field(default_factory=list)      # (busybox path, Call of the applet)
    functions: set = field(default_factory=set)      # names of the functions defined
    assigns: dict = field(default_factory=dict)      # variable -> set of literal values (None: not literal)
    pending: list = field(default_factory=list)      # (variable, Call, args) command words to resolve


def parse(path, dialect="posix"):
    """The syntax tree of the shell file at path (shfmt -ln dialect --to-json)."""
    with open(path, "rb") as fh:
        res = subprocess.run(["shfmt", "-ln", dialect, "--to-json"], stdin=fh, capture_output=True)
    if res.returncode != 0:
        raise UnknownConstruct(f"{path}: shfmt cannot parse it: {res.stderr.decode(errors='replace').strip()}")
    return json.loads(res.stdout)


def literal(word):
    """The string a word always stands for, or None when it has an expansion."""
    out = []
    for part in word.get("Parts", []):
        kind = part.get("Type")
        if kind == "Lit":
            out.append(part.get("Value", ""))
        elif kind == "SglQuoted":
            out.append(part.get("Value", ""))
        elif kind == "DblQuoted":
            inner = literal(part)
            if inner is None:
                return None
            out.append(inner)
        else:
            return None
    return "".join(out)


def plain_param(word):
    """(name, quoted) of a word that is only ``$X``/``${X}``/``"$X"``, else None."""
    parts = word.get("Parts", [])
    quoted = len(parts) == 1 and parts[0].get("Type") == "DblQuoted"
    if quoted:
        parts = parts[0].get("Parts", [])
    if len(parts) != 1 or parts[0].get("Type") != "ParamExp":
        return None
    p = parts[0]
    extra = [k for k in p if k not in ("Type", "Pos", "End", "Dollar", "Rbrace", "Short", "Param")]
    return None if extra else (p["Param"]["Value"], quoted)


def _lit_word(text):
    return {"Parts": [{"Type": "Lit", "Value": text}]}


def _nodes(node):
    """Every node of a syntax tree, of any type (the lenient walk of files
    this reader only takes function names or calls from)."""
    if isinstance(node, list):
        for n in node:
            yield from _nodes(n)
    elif isinstance(node, dict):
        yield node
        for key, value in node.items():
            if key not in ("Pos", "End"):
                yield from _nodes(value)


def functions_defined(path, dialect="posix"):
    """Names of the functions the file at path defines."""
    return {n["Name"]["Value"] for n in _nodes(parse(path, dialect)) if n.get("Type") == "FuncDecl"}


def read(paths, reviewed):
    """Found for the files in paths; ``reviewed`` maps (file name, call text)
    of calls this reader does not follow to the reason they are fine."""
    found = Found()
    for path in paths:
        with open(path, "rb") as fh:
            source = fh.read()
        _walk(parse(path), found, path, source, reviewed=reviewed)
    for (var, quoted), call, args in found.pending:
        values = found.assigns.get(var, set())
        if not values or None in values or "" in values:
            key = (os.path.basename(call.path), call.text)
            if key in reviewed:
                continue
            raise UnknownConstruct(
                f"{call.path}:{call.line}: the command is ${var}, which the code does not only assign literal "
                f"values (found {sorted(map(str, values)) or 'none'}): `{call.text}`; review it and list "
                f"it in REVIEWED with its reason")
        for value in sorted(values):
            words = [value] if quoted else value.split()
            _command(words[0], [_lit_word(w) for w in words[1:]] + args, found, call, reviewed)
    return found


def _text(source, node):
    return source[node["Pos"]["Offset"]:node["End"]["Offset"]].decode(errors="replace")


def _walk(node, found, path, source, reviewed=None):
    if isinstance(node, list):
        for n in node:
            _walk(n, found, path, source, reviewed)
        return
    if not isinstance(node, dict):
        return
    kind = node.get("Type")
    if kind is not None and kind not in KNOWN_TYPES:
        line = node.get("Pos", {}).get("Line", "?")
        raise UnknownConstruct(f"{path}:{line}: shell construct {kind} is not read by tests/controller/shellcmds.py")
    if kind == "FuncDecl":
        found.functions.add(node["Name"]["Value"])
    if kind == "CallExpr":
        _call(node, found, path, source, reviewed)
    for key, value in node.items():
        if key not in ("Pos", "End"):
            _walk(value, found, path, source, reviewed)


def _call(node, found, path, source, reviewed):
    args = node.get("Args") or []
    for a in node.get("Assigns") or []:
        if not args and "Value" in a:
            found.assigns.setdefault(a["Name"]["Value"], set()).add(literal(a["Value"]))
    if not args:
        return
    call = Call("", path, node["Pos"]["Line"], _text(source, node))
    first = literal(args[0])
    if first is None:
        var = plain_param(args[0])
        if var is None:
            if reviewed is not None and (os.path.basename(path), call.text) in reviewed:
                return
            raise UnknownConstruct(f"{path}:{call.line}: the command word is an expansion: `{call.text}`; "
                                   "review it and list it in REVIEWED with its reason")
        found.pending.append((var, call, args[1:]))
        return
    # local/export/readonly NAME=VALUE: literal values resolve command words too.
    if first in ("local", "export", "readonly"):
        for a in args[1:]:
            text = literal(a)
            if text is not None and "=" in text:
                name, _, value = text.partition("=")
                found.assigns.setdefault(name, set()).add(value)
            elif a.get("Parts") and a["Parts"][0].get("Type") == "Lit" and "=" in a["Parts"][0].get("Value", ""):
                found.assigns.setdefault(a["Parts"][0]["Value"].split("=")[0], set()).add(None)
    _command(first, args[1:], found, call, reviewed)


def _command(name, args, found, call, reviewed):
    """Record name run with args (words), following the wrappers."""
    words = [literal(a) for a in args]
    found.calls.append(Call(name, call.path, call.line, call.text))
    base = os.path.basename(name)
    if name == "command":
        if words and words[0] in ("-v", "-V"):
            for w in words[1:]:
                if w is None:
                    raise UnknownConstruct(f"{call.path}:{call.line}: command -v of an expansion: `{call.text}`")
                found.probes.append(Call(w, call.path, call.line, call.text))
            return
        _follow(args, words, 0, found, call, reviewed)
    elif name == "exec":
        _follow(args, words, 0, found, call, reviewed)
    elif name == "timeout":
        i = 0
        while i < len(words) and words[i] is not None and words[i].startswith("-"):
            i += 2 if words[i] in ("-s", "-k", "--signal", "--kill-after") else 1
        _follow(args, words, i + 1, found, call, reviewed)
    elif name == "find":
        for i, w in enumerate(words):
            if w in ("-exec", "-execdir", "-ok", "-okdir"):
                _follow(args, words, i + 1, found, call, reviewed)
    elif name == "chroot":
        return
    elif base == "busybox" and name != "busybox":
        if not words or words[0] is None:
            raise UnknownConstruct(f"{call.path}:{call.line}: busybox without a literal applet: `{call.text}`")
        found.applets.append((name, Call(words[0], call.path, call.line, call.text)))
    elif base in UNFOLLOWED and (os.path.basename(call.path), call.text) not in (reviewed or {}):
        raise UnknownConstruct(f"{call.path}:{call.line}: {name} runs what its arguments say, which is not "
                               f"followed here: `{call.text}`; review it and list it in REVIEWED with its reason")


def _follow(args, words, i, found, call, reviewed):
    if i >= len(args):
        return
    if words[i] is None:
        if (os.path.basename(call.path), call.text) in (reviewed or {}):
            return
        raise UnknownConstruct(f"{call.path}:{call.line}: the wrapped command is an expansion: `{call.text}`; "
                               "review it and list it in REVIEWED with its reason")
    _command(words[i], args[i + 1:], found, call, reviewed)


def call_words(path, name, dialect="bash"):
    """The literal argument words (None for an expansion) of every call of
    name in the file at path, with its line: [(line, [word, ...])]."""
    return [(n["Pos"]["Line"], [literal(a) for a in n["Args"][1:]]) for n in _nodes(parse(path, dialect))
            if n.get("Type") == "CallExpr" and n.get("Args") and literal(n["Args"][0]) == name]
