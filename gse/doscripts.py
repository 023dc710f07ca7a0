"""--sdir / --do / -g: which scripts are sourced at which hook, and the doscripts file.

``--do="s1,s2 s3"`` and ``-g="-gparta,+gcat"`` pair 1:1: the n-th
space-separated group of scripts goes with the n-th comma-separated hook point.
"""
import os
import re

from .errors import UsageError

_SCRIPT = re.compile(r"^[^/\s,]+$")


def pair(sdir, do, g, all_hooks):
    """Return [(sign, hook, script)] in the order given; raises UsageError."""
    given = [n for n, v in (("--sdir", sdir), ("--do", do), ("-g", g)) if v]
    if not given:
        return []
    if len(given) != 3:
        missing = [n for n in ("--sdir", "--do", "-g") if n not in given]
        raise UsageError("%s needs %s as well" % (" and ".join(given), " and ".join(missing)))
    groups = do.split()
    points = [p.strip() for p in g.split(",")]
    if any(not p for p in points):
        raise UsageError("-g=%r has an empty hook point" % g)
    if len(groups) != len(points):
        raise UsageError("--do has %d group%s (separated by spaces) but -g has %d hook point%s "
                         "(separated by commas); they pair 1:1"
                         % (len(groups), "" if len(groups) == 1 else "s",
                            len(points), "" if len(points) == 1 else "s"))
    out = []
    for group, point in zip(groups, points):
        sign, hook = point[:1], point[1:]
        if sign not in ("+", "-"):
            raise UsageError("-g: hook point %r must start with - (before) or + (after)" % point)
        if hook not in all_hooks:
            raise UsageError("-g: unknown hook %s; valid hooks are: %s" % (hook, ", ".join(all_hooks)))
        scripts = group.split(",")
        for script in scripts:
            if not script or not _SCRIPT.match(script) or script in (".", ".."):
                raise UsageError("--do: %r is not a script name in %s" % (script, sdir))
            out.append((sign, hook, script))
    return out


def check_files(sdir, pairs):
    """The directory and every script must exist before anything starts."""
    if not pairs:
        return None
    if not os.path.isdir(sdir):
        raise UsageError("--sdir: %s is not a directory" % sdir)
    real = os.path.realpath(sdir)
    missing = [s for _, _, s in pairs if not os.path.isfile(os.path.join(real, s))]
    if missing:
        raise UsageError("--do: not found in %s: %s" % (real, ", ".join(dict.fromkeys(missing))))
    return real


def execution_key(parts):
    """Sort key giving a hook point's place in the build: -part, -sub, +sub, ..., +part."""
    order = {}
    n = 0
    for part in parts:
        order[("-", part.hook)] = n
        n += 1
        for sub in part.subs:
            order[("-", sub.hook)] = n
            order[("+", sub.hook)] = n + 1
            n += 2
        order[("+", part.hook)] = n
        n += 1
    return lambda item: order[(item[0], item[1])]


def variables(pairs, parts):
    """gse_doscripts: [{hook, when, script}] in execution order (stable for one hook point)."""
    ordered = sorted(pairs, key=execution_key(parts))
    return [{"hook": h, "when": "before" if s == "-" else "after", "script": sc}
            for s, h, sc in ordered]


def render(script_dir, pairs):
    """The $CLOCALLG/doscripts file, in the concept document's format."""
    lines = ["# Requested Scripts", "# SCRIPT'S PATH", "SCP:%s" % script_dir, "# Hook:Script"]
    lines += ["%s%s:%s" % (s, h, sc) for s, h, sc in pairs]
    return "\n".join(lines) + "\n"
