"""Parse gse's command line with the option table.

Not argparse: the concept document's spellings include ``--time-state?`` and
``-g="-gparta,..."`` (a value that starts with a dash), which argparse does not
accept as written.
"""
from .errors import UsageError
from .options import BY_NAME, OPTIONS, SWITCH


def _lookup(token):
    """Split a token into (option, inline value or None)."""
    if token == "--time-state?":
        return BY_NAME["--time-state"], "?"
    if token in BY_NAME:
        return BY_NAME[token], None
    if "=" in token:
        name, value = token.split("=", 1)
        if name in BY_NAME:
            return BY_NAME[name], value
    # -gVALUE: a short option glued to its value.
    if len(token) > 2 and token[:2] in BY_NAME and token[1] != "-":
        opt = BY_NAME[token[:2]]
        if opt.takes_value:
            return opt, token[2:]
    return None, None


def parse(argv):
    """Return {dest: value} for the options given; raises UsageError on malformed input."""
    values = {}
    i = 0
    while i < len(argv):
        token = argv[i]
        i += 1
        if not token.startswith("-") or token in ("-", "--"):
            raise UsageError("unexpected argument %r (see gse --help)" % token)
        opt, value = _lookup(token)
        if opt is None:
            name = token.split("=", 1)[0]
            raise UsageError("unknown option %s (see gse --help)" % name)
        spelled = token.split("=", 1)[0] if value is not None else token
        if not opt.takes_value:
            if value is not None:
                raise UsageError("%s takes no value" % spelled)
            value = True
        elif value is None:
            if i >= len(argv):
                raise UsageError("%s needs a value: %s%s" % (spelled, spelled,
                                 "=" + opt.metavar if opt.metavar else ""))
            value = argv[i]
            i += 1
        if opt.takes_value and value == "":
            raise UsageError("%s needs a non-empty value" % spelled)
        if opt.takes_value and "\0" in value:
            raise UsageError("%s: the value holds a NUL byte" % spelled)
        if opt.repeat:
            values.setdefault(opt.dest, []).append(value)
        elif opt.dest in values:
            raise UsageError("%s given more than once" % opt.names[0])
        else:
            values[opt.dest] = value
    return values


def unparse(values):
    """The command line that parses back into ``values`` (used by the menu and time states)."""
    argv = []
    for opt in OPTIONS:
        if opt.dest not in values:
            continue
        value = values[opt.dest]
        if opt.kind == SWITCH:
            if value:
                argv.append(opt.names[0])
            continue
        for v in value if opt.repeat else [value]:
            argv.append("%s=%s" % (opt.names[0], v))
    return argv
