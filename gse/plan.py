"""Turn parsed options and configuration into a checked build plan.

Everything here only reads: a plan that fails validation leaves nothing
created or mounted.  The message of a refused plan says what is missing.
"""
import os
from dataclasses import dataclass, field

from . import doscripts, features, layout
from .errors import UsageError
from .options import OPTIONS, SWITCH


@dataclass
class Plan:
    options: dict              # the run's options, as parsed
    config: object             # config.Config that the run reads
    base: str
    lawful_good: list
    enforce: list
    skipped: set               # expanded lawful-good
    pairs: list                # [(sign, hook, script)]
    script_dir: str
    extravars: dict
    cdistdir: str
    log_root: str
    notices: list = field(default_factory=list)
    snapshot: object = None    # time state's config snapshot to materialize (warp)

    @property
    def workdir(self):
        return os.path.join(self.cdistdir, "workdir-%s" % self.base)

    def runs(self, hook):
        return hook not in self.skipped


def _hook_list(values, flag, hooks):
    out = []
    for value in values or []:
        names = [n for n in value.replace(" ", ",").split(",") if n]
        if not names:
            raise UsageError("%s=%s names no hook (see man 5 gse)" % (flag, layout.settings().shown(value)))
        out.extend(names)
    try:
        hooks.expand(out)
    except ValueError as exc:
        raise UsageError("%s: %s" % (flag, exc)) from None
    return list(dict.fromkeys(out))


def _setting(config, name, default=None):
    merged = config.merged
    if name in merged:
        return merged[name]
    return layout.build_defaults().get(name, default)


def _existing(path, flag, kind):
    if kind == "file" and not os.path.isfile(path):
        raise UsageError("%s: %s is not a file" % (flag, path))
    if kind == "dir" and not os.path.isdir(path):
        raise UsageError("%s: %s is not a directory" % (flag, path))
    return os.path.abspath(path)


def make(options, config, configd_dirs):
    """Validate a build request; return a Plan or raise UsageError."""
    hooks = layout.hooks()
    if "base" not in options:
        raise UsageError("--base is required to build: --base=catalyst or --base=precomp")
    base = options["base"]
    if base not in ("catalyst", "precomp"):
        raise UsageError("--base: %r is not catalyst or precomp" % base)
    lawful = _hook_list(options.get("lawful_good"), "--lawful-good", hooks)
    enforce = _hook_list(options.get("enforce"), "--enforce", hooks)
    skipped = hooks.expand(lawful)
    pairs = doscripts.pair(options.get("sdir"), options.get("do"), options.get("g"), hooks.ALL_HOOKS)
    script_dir = doscripts.check_files(options.get("sdir"), pairs)

    cdistdir = _setting(config, "gse_cdistdir", "/var/tmp/gse")
    log_root = _setting(config, "gse_log_root", "/var/log/gse")
    for name, value in (("gse_cdistdir", cdistdir), ("gse_log_root", log_root)):
        if not isinstance(value, str) or not os.path.isabs(value):
            raise UsageError("%s must be an absolute path, not %r" % (name, value))

    plan = Plan(options=options, config=config, base=base, lawful_good=lawful, enforce=enforce,
                skipped=skipped, pairs=pairs, script_dir=script_dir or "", extravars={},
                cdistdir=cdistdir, log_root=log_root)
    _check_complete(plan)
    # Each option that sets a build variable (Option.var in the option table)
    # gives it its checked value; -v and --build-minimal are switches.
    checked = dict(base=base, lawful_good=lawful, enforce=enforce, sdir=plan.script_dir)
    for flag in ("kernel", "initrd"):
        if flag in options:
            checked[flag] = _existing(options[flag], "--" + flag, "file")
    ev = plan.extravars
    for opt in OPTIONS:
        if not opt.var or opt.var in ("gse_distcc", "gse_ccache"):
            continue  # distcc and ccache: below, with what the installation supports
        if opt.kind == SWITCH:
            ev[opt.var] = bool(options.get(opt.dest))
        elif opt.dest in checked:
            ev[opt.var] = checked[opt.dest]
    ev.update(gse_doscripts=doscripts.variables(pairs, hooks.PARTS),
              gse_configd_dirs=list(configd_dirs),
              # Read from config.d like every other setting, but also needed
              # before config.d is loaded: the inventory's chroot path is
              # templated from gse_cdistdir, and $CLOCALLG must be the one
              # this command writes doscripts to.
              gse_cdistdir=cdistdir, gse_log_root=log_root)
    _distcc_ccache(plan)
    return plan


def _check_complete(plan):
    """The run must lead from Stage A to Stage C: what a skipped hook needs must exist."""
    if not plan.runs("gextr"):
        root = plan.workdir
        if not os.path.isdir(os.path.join(root, "etc")):
            raise UsageError("gextr is passed (--lawful-good) but %s holds no extracted system; "
                             "the run cannot reach Stage B without it" % root)


def _distcc_ccache(plan):
    opts, ev = plan.options, plan.extravars
    have = features.enabled()
    distcc = opts.get("distcc", "off")
    ccache = opts.get("ccache", "off")
    if "distcc" in opts and "distcc" not in have:
        plan.notices.append("--distcc ignored: gse was installed without distcc support (USE=distcc)")
        distcc = "off"
    if "ccache" in opts and "ccache" not in have:
        plan.notices.append("--ccache ignored: gse was installed without ccache support (USE=ccache)")
        ccache = "off"
    if distcc == "pump":
        # The same refusal as the common role's (playbooks run without gse).
        raise UsageError("--distcc=pump is refused: Portage no longer has FEATURES=distcc-pump and "
                         "Gentoo's sys-devel/distcc no longer installs pump; use --distcc=on")
    ev["gse_distcc"] = distcc
    ev["gse_ccache"] = ccache
    # The parts read distcc.yml / ccache.yml through gse_configd_dirs; a mode
    # without its configuration cannot work, so say it now.
    for name, mode in (("distcc", distcc), ("ccache", ccache)):
        if mode != "off" and not plan.config.category(name):
            raise UsageError("--%s=%s needs the %s configuration (config.d/%s.yml in %s)"
                             % (name, mode, name, name, " or ".join(plan.config.dirs)))
