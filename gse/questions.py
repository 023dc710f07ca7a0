"""The concept document's questions, asked by gse before the build starts.

The hook table (plugins/module_utils/hooks.py) is the one source: each
sub-part with a ``question`` names the variable that answers it, its
documented default and what ``--enforce`` does.  gse asks them only when a
person is at the terminal (stdin and stdout are terminals and
--non-interactive is not given; -q changes the output, not the interaction),
all of them up front, so that a build of hours is never blocked half-way on
a question.  Without a person the configured values (config.d, else the
documented defaults) apply; the playbooks never ask (AWX runs them
unattended).

A question is asked when its answer decides: the hook is not passed by
--lawful-good, not answered by --enforce, and the sub-part's include
condition (the table's ``when``, the same Jinja the roles are generated
with) holds with the answer yes and not with no.  Answers given earlier count: part H's menuconfig
question comes only after "build a kernel?" was answered yes.

Part H's menuconfig is the one question whose work needs the person later:
the playbook stops at gkconfig (roles/kernel/tasks/menuconfig.yml), gse opens
make menuconfig in the chroot (failure.shell, the failure loop's machinery)
and re-enters at gker (gse/build.py).
"""
import jinja2
import jinja2.meta

from . import layout

# The start of the message with which roles/kernel/tasks/menuconfig.yml stops the run.
HANDOFF = "menuconfig at the terminal:"
# The extra variable that tells part H the person configured the kernel.
CONFIGURED = "gse_kernel_configured"


def questions():
    """[(part, sub-part)] of every sub-part that asks, in the order of the build.

    A question whose condition reads the answer of a later one comes after it:
    part H asks "build a kernel?" (gker) before menuconfig (gkconfig), which
    runs first."""
    left = [(p, s) for p in layout.hooks().PARTS for s in p.subs if s.question]
    out = []
    while left:
        for i, (p, s) in enumerate(left):
            reads = _names(s.when) - {s.variable}
            if not any(o.variable in reads for _, o in left):
                out.append(left.pop(i))
                break
        else:
            out.extend(left)  # a cycle in the table: ask in the build's order
            left = []
    return out


def _names(condition):
    """The variables a table condition reads."""
    if not condition:
        return set()
    return jinja2.meta.find_undeclared_variables(_environment().parse("{{ %s }}" % condition))


def value(plan, name):
    """A setting as the run sees it: gse's extra variables, config.d, the roles' documented default."""
    if name in plan.extravars:
        return plan.extravars[name]
    merged = plan.config.merged
    if name in merged:
        return merged[name]
    setting = layout.schema().get(name)
    return setting.default if setting is not None else None


def _environment():
    hooks = layout.hooks()
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    # The roles' filter (plugins/filter), on the same table.
    env.filters["gse.stateless.enforced"] = lambda enforce, hook, lawful_good=(): \
        hooks.is_enforced(hook, enforce or (), lawful_good or ())
    return env


class _Variables(dict):
    """The variables a table condition reads, looked up in the run's settings on first use."""

    def __init__(self, plan):
        super().__init__()
        self.plan = plan

    def __missing__(self, name):
        found = value(self.plan, name)
        if found is None:
            raise KeyError(name)
        self[name] = found
        return found


def would_run(sub, plan, answers, answer=True):
    """True when sub-part ``sub`` runs if its question is answered ``answer`` (given the earlier answers)."""
    if not sub.when:
        return True
    variables = _Variables(plan)
    variables.update(answers)
    variables[sub.variable] = answer
    context = {n: variables[n] for n in _names(sub.when)}
    return bool(_environment().compile_expression(sub.when)(**context))


def prompt(part, sub, default):
    return "Part %s (%s): %s [%s] " % (part.letter, sub.hook, sub.question, "Y/n" if default else "y/N")


def ask(plan, session, write):
    """Ask the run's questions; return {variable: answer} of those asked.

    Each answer defaults to the configured value (Enter keeps it).  A question
    answered yes can bring the next one (menuconfig after "build a kernel?")."""
    answers = {}
    hooks = layout.hooks()
    for part, sub in questions():
        if sub.hook in plan.skipped:
            continue
        if sub.enforce and hooks.is_enforced(sub.hook, plan.enforce, plan.lawful_good):
            write("Part %s (%s): %s yes (--enforce)\n" % (part.letter, sub.hook, sub.question))
            answers[sub.variable] = True
            continue
        # Asked when the answer decides: the sub-part runs with yes and not with no
        # (--kernel=PATH installs that image whatever "build a kernel?" would say).
        # A sub-part that always runs (part L publishes) reads the answer itself.
        if sub.when and (not would_run(sub, plan, answers) or would_run(sub, plan, answers, False)):
            continue
        default = bool(value(plan, sub.variable))
        while True:
            try:
                text = session.read(prompt(part, sub, default)).strip().lower()
            except EOFError:
                text = ""
            if text in ("", "y", "yes", "n", "no"):
                break
            write("answer y or n (Enter keeps %s)\n" % ("yes" if default else "no"))
        answers[sub.variable] = default if not text else text in ("y", "yes")
    # --enforce answers are the playbook's own (gse_enforce); only real answers are handed over.
    return {k: v for k, v in answers.items()
            if not any(s.variable == k and s.enforce and hooks.is_enforced(s.hook, plan.enforce, plan.lawful_good)
                       for _, s in questions())}


def menuconfig_argv(plan):
    """The command gse runs in the chroot when part H stops for the kernel configuration."""
    return ["make", "-C", str(value(plan, "gse_kernel_sources") or "/usr/src/linux"), "menuconfig"]


def is_handoff(failure):
    """True when a failure is part H's stop for menuconfig, not a real failure."""
    if failure is None or failure.part is None or failure.part.hook != "gparth":
        return False
    return str(failure.result.get("msg") or "").startswith(HANDOFF)
