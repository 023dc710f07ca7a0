"""What a parsed command line does: the checks of each option, then a build,
the time states or the controller.  The command line (gse/cli.py) and the
main menu (gse/menu.py) both call it; it imports neither."""
import os
import shutil
import sys
import tempfile

from . import build, checks, config, controller, layout, plan, questions, states, unit, warp
from .errors import UsageError
from .options import BY_DEST, CHOICE, NUMBER, SESSION_DESTS

# Options that may go with --time-warp (they change how the run talks, not what it builds).
WARP_COMPANIONS = SESSION_DESTS | {"time_warp", "time_warp_inexact"}


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

    if values.get("time_warp_inexact") and "time_warp" not in values:
        raise UsageError("--time-warp-inexact goes with --time-warp=N")
    if "time_warp" not in values:
        return _build(values, cfg, dirs, session, run_opts)
    extra = set(values) - WARP_COMPANIONS
    if extra:
        raise UsageError("--time-warp replays a state exactly: it does not take %s"
                         % ", ".join(BY_DEST[d].names[0] for d in sorted(extra)))
    saved = states.load(states.state_dir(cfg), int(values["time_warp"]))
    check_values(saved.options)
    differs = warp.differences(saved)
    if differs and not values.get("time_warp_inexact"):
        raise UsageError("time state %d (%s) cannot be replayed exactly: %s. Add --time-warp-inexact to "
                         "replay it anyway" % (saved.number, saved.name, "; ".join(differs)))
    for line in differs:
        print("gse: warning: the replay is not exact: %s" % line, file=sys.stderr)
    # The kept copies, laid out privately for this run and removed after it.
    staging = tempfile.mkdtemp(prefix="gse-warp-")
    try:
        options, snapshot = warp.stage(saved, staging)
        values = dict(options, **{k: v for k, v in values.items() if k in SESSION_DESTS})
        return _build(values, snapshot, dirs, session, run_opts, saved=saved)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def _build(values, cfg, dirs, session, run_opts, saved=None):
    """A build (or the controller alone): checks, questions, the state, the run."""
    ts = values.get("time_state")
    snapshot = cfg if saved is not None else None

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
    if saved is not None:
        p.extravars.update(warp.pins(saved))
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
    if saved is not None:
        answers = saved.answers
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
        state_doc["files"], keep = warp.kept_files(p)
        number = states.save(states.state_dir(cfg), state_doc, keep)
        print("gse: saved time state %d:%s" % (number, ts), file=sys.stderr)
    clocallg = build.prepare(p)
    try:
        code = build.run(p, session, clocallg)
    finally:
        # What part A resolved (stage3, snapshot) completes the state saved for this run.
        inputs = warp.read_inputs(clocallg)
        if state_doc is not None and inputs:
            try:
                states.record_inputs(states.state_dir(cfg), ts, inputs)
            except (OSError, ValueError) as exc:
                print("gse: the stage3 and snapshot of this run could not be added to time state %s: %s"
                      % (ts, exc), file=sys.stderr)
    if code == 0 and "build_controller" in values:
        code = controller.build(values["build_controller"], dirs, quiet=session.quiet,
                                verbose=session.verbose)
    return code
