"""gse --help, written from the option table."""
import textwrap

from . import __version__
from .options import EXIT_CODES, OPTIONS, SECTIONS


def _spelling(opt):
    names = ", ".join(opt.names)
    if opt.takes_value:
        names += "=" + opt.metavar
    return names


def render(width=79):
    out = ["gse %s - Gentoo Stateless Environment" % __version__, "",
           "usage: gse [-mm] [--base=catalyst|precomp] [options]",
           "       gse --time-state? | --time-state=-N | --time-warp=N",
           "       gse --build-controller=DIR",
           "       gse serve [options]",
           "       gse wake --group ROOM | --mac MAC [--stagger SECONDS] [options]", ""]
    for key, title in SECTIONS:
        out.append(title + ":")
        for opt in OPTIONS:
            if opt.section != key:
                continue
            spelled = _spelling(opt)
            out.append("  " + spelled)
            for line in textwrap.wrap(opt.summary, width - 8):
                out.append("        " + line)
        out.append("")
    out.append("Exit codes: " + ", ".join("%d %s" % c for c in EXIT_CODES) + ".")
    out.append("Hooks and configuration files: man 5 gse.  Details and examples: man 1 gse.")
    return "\n".join(out) + "\n"
