"""Write man 1 gse (from the option table) and man 5 gse (from the hook table).

    python -m gse.manpage DIR    writes DIR/gse.1 and DIR/gse.5
The generated pages are committed under man/; a test keeps them up to date.
"""
import os
import sys

from . import __version__, layout
from .options import EXAMPLES, EXIT_CODES, OPTIONS, SECTIONS, SWITCH

DATE = "2026"


def esc(text):
    """Escape roff: backslashes, and a leading dot or quote."""
    text = text.replace("\\", "\\e").replace("-", "\\-")
    if text[:1] in (".", "'"):
        text = "\\&" + text
    return text


def _head(section, title):
    return ['.TH GSE %d "%s" "gse %s" "%s"' % (section, DATE, __version__, title)]


def parser_options(parser):
    """The options of a subcommand's argparse parser as .TP entries."""
    out = []
    for action in parser._actions:
        if not action.option_strings or action.dest == "help":
            continue
        names = ", ".join("\\fB%s\\fR \\fI%s\\fR" % (esc(n), esc(action.metavar)) if action.metavar
                          else "\\fB%s\\fR" % esc(n) for n in action.option_strings)
        out += [".TP", names, esc(action.help[0].upper() + action.help[1:]) + "."]
    return out


def wake_section():
    """gse wake, its options from its own parser."""
    from . import wake
    out = [".SH WAKE\\-ON\\-LAN",
           esc("gse wake sends a Wake-on-LAN magic packet (6 bytes 0xFF, then the MAC 16 times, one "
               "UDP datagram to a broadcast address) to each machine of a group, or to the machines "
               "named with --mac. Groups are read from hosts/groups.yml in the config.d directories "
               "(a group of a later directory replaces the same group of an earlier one): a mapping "
               "of group names to lists of {mac, hostname}. Every MAC and option is checked before "
               "the first packet leaves; bad input is refused with one line and exit status 2. A "
               "failure to send exits with 1. The Ansible module gse.stateless.wake does the same "
               "for AWX.")]
    return out + parser_options(wake.parser())


def publish_section():
    """gse publish, its options from its own parser."""
    from . import publication
    out = [".SH PUBLISHED IMAGES",
           esc("gse publish works on the publication tree (gse_publish_dir) through "
               "playbooks/publication.yml and the module gse.stateless.publication, which AWX runs "
               "too. Every published image is kept until a prune removes it; the tree's history "
               "(.gse/history) records each move of version.txt. A rollback verifies the earlier "
               "image (its signatures with the publication keyring, its digests, its chunks in the "
               "store) before version.txt moves, and signs version.txt with the next serial, so "
               "clients' anti-rollback check accepts it. A pin gives a group of the client config.d "
               "its own signed pointer (groups/GROUP/version.txt) to an earlier, verified image and "
               "lists the group as pinned in the client config.d; its clients install only that image "
               "and refuse the default pointer. An unpin signs version.txt again with a higher serial. "
               "A prune never removes the default image, its fallback (the image the default "
               "replaced) or an image a group is pinned to. Bad input exits with 2 and changes "
               "nothing; a refused rollback, pin, unpin or prune exits with 1 and changes nothing.")]
    return out + parser_options(publication.parser())


def fleet_section():
    """gse fleet, its options from its own parser."""
    from . import fleet
    out = [".SH FLEET",
           esc("gse fleet lists every client that reported to the server after boot: host, group, version "
               "and serial, health, when it was last seen, its last refusal and flags (stale: not seen for "
               "--stale-days; duplicate id: a report with another token for a known host id, or one "
               "machine-id behind several MACs). Reports are POSTed to /report of the server (gse serve "
               "receives them itself; the server role passes them to gse fleet --receive), at most 64 KiB, "
               "authenticated by the client's own token (the first report of a host enrols it), checked "
               "field by field and stored atomically under .gse/fleet/ of the publication tree, never "
               "executed. See docs/fleet.md.")]
    return out + parser_options(fleet.parser())


def page1():
    out = _head(1, "GSE Manual")
    out += [".SH NAME", "gse \\- build, sign and publish a Gentoo Stateless Environment system",
            ".SH SYNOPSIS",
            ".B gse", ".br", ".B gse \\-mm", "[\\fIoptions\\fR]", ".br",
            ".B gse \\-\\-base=\\fIcatalyst\\fR|\\fIprecomp\\fR", "[\\fIoptions\\fR]", ".br",
            ".B gse \\-\\-time\\-state?", ".br",
            ".B gse \\-\\-time\\-state=\\-\\fIN\\fR", ".br",
            ".B gse \\-\\-time\\-warp=\\fIN\\fR", ".br",
            ".B gse \\-\\-build\\-controller=\\fIDIR\\fR", ".br",
            ".B gse serve", "[\\fIoptions\\fR]", ".br",
            ".B gse wake \\-\\-group", "\\fIROOM\\fR|\\fB\\-\\-mac\\fR \\fIMAC\\fR [\\fIoptions\\fR]", ".br",
            ".B gse publish \\-\\-list", "|", "\\fB\\-\\-rollback\\fR \\fIVERSION\\fR", "|",
            "\\fB\\-\\-prune\\fR [\\fIoptions\\fR]", "|", "\\fB\\-\\-pin\\fR \\fIGROUP\\fR=\\fIVERSION\\fR", "|",
            "\\fB\\-\\-unpin\\fR \\fIGROUP\\fR", ".br",
            ".B gse fleet", "[\\fIoptions\\fR]",
            ".SH DESCRIPTION",
            esc("gse runs the build sequence of the gse.stateless Ansible collection (parts A to L, "
                "see gse(5)) through ansible-runner. Without arguments, or with -mm, it opens the "
                "main menu: the configuration files by category (view, edit with $EDITOR, "
                "validate), System menu -> Build a system -> Catalyst|Precomp -> Initiate Build, "
                "the time states and the controller build."),
            ".PP",
            esc("Before anything is touched (warp), every parameter is checked and must describe a "
                "complete run from Stage A to Stage C; then the system checks run: free disk space "
                "in the work directories (gse_min_free_mb), the network when a hook that needs it "
                "runs (gseed, gupdate), the process priority (gse_nice, gse_ionice_class, "
                "gse_ionice_level are applied) and a warning, or a question when interactive, when "
                "gse runs over SSH outside tmux or screen.")]
    for key, title in SECTIONS:
        out += [".SH %s" % esc(title.upper())]
        for opt in OPTIONS:
            if opt.section != key:
                continue
            names = []
            for n in opt.names:
                if opt.kind == SWITCH:
                    names.append("\\fB%s\\fR" % esc(n))
                else:
                    names.append("\\fB%s\\fR=\\fI%s\\fR" % (esc(n), esc(opt.metavar)))
            names += ["\\fB%s\\fR" % esc(n) for n in opt.extra_names]
            out += [".TP", ", ".join(names), esc(opt.summary[0].upper() + opt.summary[1:]) + "."]
            if opt.details:
                out += [".IP", esc(opt.details)]
            if opt.var:
                out += [".IP", "Sets the build variable \\fB%s\\fR." % esc(opt.var)]
    from . import serve
    out += [".SH SERVE",
            esc("gse serve runs nginx in the foreground with a private prefix (no system configuration is "
                "touched) and the server role's server block, serving the publication tree until Ctrl-C, "
                "SIGTERM or SIGHUP. Every argument is checked before nginx starts; a bad one ends gse serve "
                "with one line and exit code 2. For a permanent server use the server role "
                "(playbooks/server.yml).")]
    for flag, metavar, default, text in serve.OPTIONS:
        out += [".TP", "\\fB%s\\fR=\\fI%s\\fR" % (esc(flag), esc(metavar)),
                esc("%s%s." % (text[0].upper() + text[1:], "; default %s" % default if default else ""))]
    out += wake_section()
    out += publish_section()
    out += fleet_section()
    out += questions_section()
    out += [".SH THE FAILURE LOOP",
            esc("When a part fails, gse shows the failed command, its stderr and the related items "
                "(for emerge: the failed package, the resume list and the tail of the build log). "
                "Interactively it offers resume, skip first, shell (a login shell in the chroot "
                "with the mounts still in place) and abort, and re-enters the sequence at the "
                "failed part. A run that is not interactive exits with code 1 after the same "
                "report. The mounts of the build are released when gse exits, also on SIGINT "
                "and SIGTERM."),
            ".SH FILES",
            ".TP", "\\fB/usr/lib64/gse/config.d\\fR, \\fB/etc/gse/config.d\\fR",
            esc("Configuration (see gse(5)); the second overrides the first per variable."),
            ".TP", "\\fB$CLOCALLG\\fR (\\fI/var/log/gse/<build\\-id>\\fR)",
            esc("Logs of one build: doscripts, the failure reports, Ansible's artifacts."),
            ".TP", "\\fB$CDISTDIR/workdir\\-<base>/var/log/gse\\-live.log\\fR",
            esc("emerge's output, appended while it runs (not with -q); gse prints its new lines."),
            ".TP", "\\fB/var/lib/gse/states\\fR",
            esc("Time states (gse_state_dir), 0600, root only: NNNN-name.yml and, beside it, "
                "NNNN-name.files/ with the copies the state keeps (see gse(5))."),
            ".TP", "\\fB$CLOCALLG/inputs.json\\fR",
            esc("The stage3 and the Portage snapshot part A used; gse adds them to the time state "
                "saved for the run."),
            ".SH ENVIRONMENT",
            ".TP", "\\fBGSE_CONFIGD\\fR", esc("Colon-separated config.d directories to read instead "
                                             "of the two defaults."),
            ".TP", "\\fBGSE_STATE_DIR\\fR", esc("Directory of the time states."),
            ".TP", "\\fBGSE_COLLECTION_ROOT\\fR, \\fBGSE_PLAYBOOK_DIR\\fR",
            esc("Where the gse.stateless collection, or only its playbooks, are (development)."),
            ".TP", "\\fBEDITOR\\fR", esc("The editor of the main menu."),
            ".SH EXIT STATUS"]
    for code, text in EXIT_CODES:
        out += [".TP", "\\fB%d\\fR" % code, esc(text[0].upper() + text[1:]) + "."]
    out += [".SH EXAMPLES"]
    for cmd, text in EXAMPLES:
        out += [".TP", "\\fB%s\\fR" % esc(cmd), esc(text[0].upper() + text[1:]) + "."]
    out += [".SH SEE ALSO", "gse(5), ansible\\-playbook(1), catalyst(1), emerge(1), dracut(8)"]
    return "\n".join(out) + "\n"


def questions_section():
    """The questions gse asks at a terminal, from the hook table (gse/questions.py)."""
    from . import questions
    out = [".SH THE QUESTIONS",
           esc("When a person is at the terminal (stdin and stdout are terminals, no "
               "--non-interactive; -q only changes the output), gse asks the questions of the hook "
               "table before the build starts, so that a long build never waits half-way. Enter keeps "
               "the configured value (config.d, else the default below). A question is not asked when "
               "its hook is passed (--lawful-good) or its answer would change nothing (part D for "
               "catalyst, part H with --kernel); --enforce answers "
               "it yes. Without a person the configured values apply; the playbooks never ask. A time "
               "state keeps the answers and --time-warp replays them.")]
    for part, sub in questions.questions():
        text = "Part %s: \"%s\" sets %s; default %s (%s)." % (
            part.letter, sub.question, sub.variable, sub.default, sub.reason)
        text += " Answered yes: %s. %s." % (
            sub.runs, "--enforce: %s" % sub.enforce if sub.enforce else "--enforce does not answer it")
        out += [".TP", "\\fB%s\\fR" % sub.hook, esc(text.replace("`", ""))]
    return out


def states_section():
    """The time state format (gse/states.py, gse/warp.py)."""
    from . import states
    return [".SH TIME STATES",
            esc("A time state is NNNN-name.yml in the state directory (gse_state_dir), a YAML mapping: "
                "format (%d), name, created, gse_version, options (the run's flags), config (every "
                "config.d file read, passwords hashed), answers (the questions gse asked), files (the "
                "--sdir scripts, inject-custom files and --kernel/--initrd images, each with kind, path, "
                "sha512 and mode; the copy is NNNN-name.files/<sha512>) and inputs (stage3: path, name, "
                "version, sha512; snapshot: path, treeish, sha512; recorded when part A ran). A state "
                "without format is format 1 (options and config only) and is read; a replay of it is "
                "not exact. A format newer than this gse reads is refused." % states.FORMAT),
            ".PP",
            esc("--time-warp=N replays the state with the kept copies and the recorded stage3 and "
                "snapshot. What cannot be restored exactly (a copy missing or not matching its "
                "digest, the stage3 or snapshot gone or changed, a format 1 state) is listed and the "
                "replay is refused (exit code 2) unless --time-warp-inexact is given; then each "
                "difference is a warning and today's file is used.")]


def page5():
    hooks = layout.hooks()
    out = _head(5, "GSE Manual")
    out += [".SH NAME", "gse \\- parts, hooks and configuration files of the GSE build sequence",
            ".SH DESCRIPTION",
            esc("The build sequence is made of parts A to L. Each part has a part hook and "
                "sub-part hooks. Hook names are the arguments of --lawful-good and --enforce and, "
                "with a leading - (before) or + (after), of -g. A part hook covers all its "
                "sub-parts. Stage B hooks (parts C to J) run inside the chroot, and so do the "
                "scripts requested at them."),
            ".SH PARTS AND HOOKS"]
    for part in hooks.PARTS:
        out += [".SS Part %s: %s" % (part.letter, esc(part.title)),
                ".TP", "\\fB%s\\fR" % part.hook,
                esc("Stage %s, %s; role %s: %s. With -q each sub-part prints its line as it starts."
                    % (part.stage, "inside the chroot" if part.chroot else "on the build host", part.role,
                       part.phase))]
        for sub in part.subs:
            text = "%s. Quiet mode: \"%s\"." % (sub.title, sub.phase)
            if sub.question:
                text += " Asks \"%s\" (%s), default %s; %s." % (
                    sub.question, sub.variable, sub.default,
                    "--enforce: %s" % sub.enforce if sub.enforce else "--enforce does not answer it")
            elif sub.enforce:
                text += " --enforce: %s." % sub.enforce
            out += [".TP", "\\fB%s\\fR" % sub.hook, esc(text.replace("`", ""))]
    out += [".SH CONFIGURATION FILES",
            esc("Each directory of config.d holds one file per category, <category>.yml, a YAML "
                "mapping of gse_* variables. /usr/lib64/gse/config.d holds the installed "
                "defaults, /etc/gse/config.d the administrator's edits; a variable in the later "
                "directory wins. Users in users.yml carry password (clear text, hashed when a "
                "time state is saved) or password_hash.")]
    for name, text, variables in layout.configd().CATEGORIES:
        out += [".TP", "\\fB%s.yml\\fR" % esc(name), esc(text) + ":", esc(", ".join(variables))]
    out += [".SS Build host settings (system.yml)",
            ".TP", "\\fBgse_cdistdir\\fR, \\fBgse_log_root\\fR, \\fBgse_state_dir\\fR",
            esc("Work directory ($CDISTDIR), log root ($CLOCALLG is <log root>/<build id>), time states."),
            ".TP", "\\fBgse_min_free_mb\\fR", esc("Free space (MiB) required in the work and log directories."),
            ".TP", "\\fBgse_nice\\fR, \\fBgse_ionice_class\\fR, \\fBgse_ionice_level\\fR",
            esc("Process priority applied to the build (idle, best-effort or realtime; level 0-7)."),
            ".SH THE GSE PROFILE",
            esc("Hook gprofile creates and selects the GSE profile, an experimental Portage "
                "profile that collects USE flags and packages useful for research and university "
                "computer labs. Its flags and packages are set in portage.yml and packages.yml."),
            *states_section(),
            ".SH THE DOSCRIPTS FILE",
            esc("gse writes the request of --sdir, --do and -g to $CLOCALLG/doscripts:"),
            ".PP", ".nf", "# Requested Scripts", "# SCRIPT'S PATH", "SCP:/root/myscripts",
            "# Hook:Script", "\\-gparta:script1", "+gcat:script4", ".fi",
            ".SH SEE ALSO", "gse(1)"]
    return "\n".join(out) + "\n"


def write(directory):
    os.makedirs(directory, exist_ok=True)
    for name, text in (("gse.1", page1()), ("gse.5", page5())):
        with open(os.path.join(directory, name), "w", encoding="utf-8") as f:
            f.write(text)


if __name__ == "__main__":
    write(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(layout.PACKAGE_DIR), "man"))
