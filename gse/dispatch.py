"""What a parsed command line does: the checks of each option, then a build,
the time states or the controller.  The command line (gse/cli.py) and the
main menu (gse/menu.py) both call it; it imports neither."""
import os
import sys

from . import build, checks, config, controller, layout, plan, questions, states, unit
from .errors import UsageError
from .options import BY_DEST, CHOICE, NUMBER, SESSION_DESTS

# Options that may go with --time-warp (they change how the run talks, not what it builds).
WARP_COMPANIONS = SESSION_DESTS | {"time_warp"}


def shown(value, limit=60):
    """A value in a message: control characters escaped, cut after ``limit`` characters."""
    return layout.settings().plain(value, limit)


def check_values(values):
    """Per-option checks the table describes (choices, numbers, state spellings)."""
    for dest, value in values.items():
        opt = BY_DEST[dest]
        if opt.kind == CHOICE and value not in opt.choices:
            raise UsageError("%s=%s: choose %s" % (opt.names[0], shown(value), " or ".join(opt.choices)))
        if opt.kind == NUMBER and not states.is_number(value):
            raise UsageError("%s=%s: expected a state number (see gse --time-state?)"
                             % (opt.names[0], shown(value)))
    ts = values.get("time_state")
    if ts is not None and ts != "?":
        if ts.startswith("-"):
            if not states.is_number(ts[1:]):
                raise UsageError("--time-state=%s: -N deletes state N (a positive number)" % shown(ts))
        else:
            states.check_name(ts)


def is_interactive(values):
    if values.get("non_interactive"):
        return False
    return sys.stdin.isatty() and sys.stdout.isatty()


def dispatch(values, session=None):
    """Everything but the menu; the menu calls this too."""
    interactive = is_interactive(values)
    session = session or build.Session(interactive, quiet=bool(values.get("quiet")),
                                       verbose=bool(values.get("verbose")))
    run_opts = {k for k in values if k not in SESSION_DESTS}
    ts = values.get("time_state")
    dirs = layout.configd_dirs()
    cfg = config.load(dirs)

    if ts == "?" or (ts or "").startswith("-"):
        if run_opts - {"time_state"}:
            raise UsageError("--time-state%s goes alone" % ("?" if ts == "?" else "=" + ts))
        directory = states.state_dir(cfg)
        if ts == "?":
            sys.stdout.write(states.listing(directory))
        else:
            name = states.delete(directory, int(ts[1:]))
            print("deleted time state %s:%s" % (ts[1:], name))
        return 0

    snapshot = None
    warp_answers = None
    if "time_warp" in values:
        extra = set(values) - WARP_COMPANIONS
        if extra:
            raise UsageError("--time-warp replays a state exactly: it does not take %s"
                             % ", ".join(BY_DEST[d].names[0] for d in sorted(extra)))
        options, snapshot = states.load(states.state_dir(cfg), int(values["time_warp"]))
        check_values(options)
        values = dict(options, **{k: v for k, v in values.items() if k in SESSION_DESTS})
        cfg = snapshot

    if "base" not in values:
        if "build_controller" in values:
            if run_opts - {"build_controller"}:
                raise UsageError("--base is required to build: --base=catalyst or --base=precomp")
            return controller.build(values["build_controller"], dirs, quiet=session.quiet,
                                    verbose=session.verbose)
        raise UsageError("--base is required to build: --base=catalyst or --base=precomp "
                         "(gse alone opens the main menu)")
    if session.verbose and session.interactive:
        raise UsageError("--verbose cannot run with an interactive run: the questions would be "
                         "lost in the verbose output; add --non-interactive")
    if "build_controller" in values and not os.path.isdir(values["build_controller"]):
        raise UsageError("--build-controller: %s is not a directory" % values["build_controller"])

    p = plan.make(values, cfg, dirs)
    p.snapshot = snapshot
    state_doc = None
    if ts:
        state_doc = states.build_document(ts, values, cfg)
        directory = states.state_dir(cfg)
        if any(name == ts for _, name, _ in states.entries(directory)):
            raise UsageError("a time state named %s exists already (see gse --time-state?)" % ts)
    checks.disk_space(p)
    checks.connectivity(p)
    unit.refuse_if_running(p)
    priority = checks.priority_settings(p)
    checks.ssh_session(session.interactive, session.confirm)
    for notice in p.notices:
        print("gse: %s" % notice, file=sys.stderr)
    # The concept document's questions, all before the long build starts; a
    # replay answers them as the saved run did.
    if warp_answers is not None:
        answers = warp_answers
    elif session.interactive:
        answers = questions.ask(p, session, lambda text: (sys.stdout.write(text), sys.stdout.flush()))
    else:
        answers = {}
    p.extravars.update(answers)
    if state_doc is not None:
        state_doc["answers"] = answers

    # Validation is over: from here on the run touches the system.
    checks.apply_priority(priority)
    if state_doc is not None:
        number = states.save(states.state_dir(cfg), state_doc)
        print("gse: saved time state %d:%s" % (number, ts), file=sys.stderr)
    clocallg = build.prepare(p)
    code = build.run(p, session, clocallg)
    if code == 0 and "build_controller" in values:
        code = controller.build(values["build_controller"], dirs, quiet=session.quiet,
                                verbose=session.verbose)
    return code
