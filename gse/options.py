"""The one table of gse's options: it drives parsing, validation, --help and man 1 gse.

Spellings are the concept document's: ``--base=catalyst``, ``--lawful-good``,
``-g="-gparta,+gcat"``, ``--time-state?``, ``-mm``.  Each row says what the
option takes, which build variable it sets (see roles/common/defaults/main.yml)
and how it is documented.
"""
from dataclasses import dataclass, field

# Kinds of value an option takes.
SWITCH = "switch"      # no value
CHOICE = "choice"      # one of .choices
HOOKS = "hooks"        # comma-separated hook names (man 5 gse)
TEXT = "text"          # free text, checked by the plan (--do, -g)
DIR = "dir"            # an existing directory
FILE = "file"          # an existing file
STATE = "state"        # NAME, -N or ? (time states)
NUMBER = "number"      # a positive integer


@dataclass(frozen=True)
class Option:
    dest: str                 # key in the parsed options
    names: tuple              # spellings, long first
    kind: str
    section: str              # heading in --help and the manual
    summary: str              # one line for --help
    details: str = ""         # more for the manual
    metavar: str = ""
    choices: tuple = ()
    var: str = ""             # build variable it sets
    repeat: bool = False      # may be given more than once (values accumulate)
    extra_names: tuple = field(default=())  # accepted spellings not shown in --help

    @property
    def takes_value(self):
        return self.kind != SWITCH


SECTIONS = (
    ("build", "Building the system"),
    ("scripts", "Requested commands"),
    ("output", "Verbosity and interaction"),
    ("states", "Time warp"),
    ("other", "Menu, controller and information"),
)

OPTIONS = (
    Option("base", ("--base",), CHOICE, "build",
           "base of the build: catalyst or precomp (the one required flag of a build)",
           "catalyst builds the stages locally with catalyst; precomp fetches the Release "
           "Engineering stage3 tarball, verifies it and extracts it. The system is extracted "
           "into $CDISTDIR/workdir-BASE.",
           metavar="BASE", choices=("catalyst", "precomp"), var="gse_base"),
    Option("lawful_good", ("--lawful-good",), HOOKS, "build",
           "pass (skip) these hooks; a part hook skips all its sub-parts",
           "Hook names are listed in man 5 gse. --lawful-good suppresses --enforce: a hook in "
           "both lists is skipped. The hooks are also given to Ansible as skip tags.",
           metavar="HOOK,...", var="gse_lawful_good", repeat=True),
    Option("enforce", ("--enforce",), HOOKS, "build",
           "answer yes at these hooks and use force (rebuild, overwrite)",
           "A part hook enforces all its sub-parts. For a manually configured kernel avoid "
           "--enforce=gker: with force the kernel question becomes yes and genkernel builds a "
           "general modular kernel. Any enforced hook of parts A to J also makes a rebuild whose "
           "inputs are unchanged run every part (docs/build.md).",
           metavar="HOOK,...", var="gse_enforce", repeat=True),
    Option("distcc", ("--distcc",), CHOICE, "build",
           "use distcc in the chroot: on or off (pump is refused)",
           "Reads the distcc configuration file (config.d/distcc.yml, the hosts). Part C installs "
           "sys-devel/distcc before the first compile and only then adds distcc to FEATURES; part J "
           "removes it. Ignored with a notice when gse was installed without distcc support. "
           "pump is refused before anything runs: Portage no longer has FEATURES=distcc-pump and "
           "Gentoo's distcc no longer installs pump.",
           metavar="MODE", choices=("on", "pump", "off"), var="gse_distcc"),
    Option("ccache", ("--ccache",), CHOICE, "build",
           "use ccache in the chroot: on or off",
           "Reads the ccache configuration file (config.d/ccache.yml). Part C installs dev-util/ccache "
           "before the first compile and only then adds ccache to FEATURES; part J removes it. The "
           "cache lives on the build host (gse_ccache_host_dir) and outlives the build. Ignored with "
           "a notice when gse was installed without ccache support.",
           metavar="MODE", choices=("on", "off"), var="gse_ccache"),
    Option("kernel", ("--kernel",), FILE, "build",
           "install this prebuilt kernel image instead of building one (part H)",
           metavar="PATH", var="gse_kernel_path"),
    Option("initrd", ("--initrd",), FILE, "build",
           "install this prebuilt initramfs instead of building one (part I)",
           metavar="PATH", var="gse_initrd_path"),
    Option("build_minimal", ("--build-minimal",), SWITCH, "build",
           "leave many more entries out of the archive (part K, hook gminimal)",
           var="gse_build_minimal"),
    Option("sdir", ("--sdir",), DIR, "scripts",
           "directory of the requested scripts; enables --do and -g",
           "The directory and every script named by --do must exist before anything starts.",
           metavar="DIR", var="gse_sdir"),
    Option("do", ("--do",), TEXT, "scripts",
           "scripts to source: groups separated by spaces, scripts in a group by commas",
           "Each space-separated group pairs with one comma-separated hook point of -g (1:1). "
           "Scripts in a group are sourced in the given order.",
           metavar='"S1,S2 S3 ..."'),
    Option("g", ("-g",), TEXT, "scripts",
           "hook points of the --do groups: -HOOK sources before the hook, +HOOK after it",
           "Hooks of stage B (parts C-J) source their scripts inside the chroot. The request "
           "is written to $CLOCALLG/doscripts.",
           metavar='"±HOOK,..."'),
    Option("verbose", ("--verbose", "-v"), SWITCH, "output",
           "Ansible's -vvv and set -x in the hook scripts (not with an interactive run)",
           "Verbose cannot run with interactive mode: the interactive text is lost in the "
           "verbose output. Use it with --non-interactive.",
           var="gse_verbose"),
    Option("quiet", ("--quiet", "-q"), SWITCH, "output",
           "one line per sub-part as it starts (\"[ 3/12] Updating Portage (0:04:10)\"): its phase, "
           "the number of its part of the total and the elapsed time; emerge's output is not shown",
           "Without -q gse streams Ansible's output and, while emerge runs, emerge's own output as it "
           "comes: the emerge tasks append it to /var/log/gse-live.log inside the chroot "
           "(gse_live_log) and gse prints the new lines of that file."),
    Option("non_interactive", ("--non-interactive",), SWITCH, "output",
           "never ask: a failed part ends the run with exit code 1 (also when stdin is not a terminal)"),
    Option("time_state", ("--time-state",), STATE, "states",
           "--time-state=NAME saves this run as a state; --time-state? lists the states; "
           "--time-state=-N deletes state N",
           "A state holds every parameter of the run and a snapshot of every configuration file "
           "it reads. States are readable by root only and hold no clear-text password "
           "(passwords are stored as SHA-512 crypt hashes).",
           metavar="NAME|-N|?", extra_names=("--time-state?",)),
    Option("time_warp", ("--time-warp",), NUMBER, "states",
           "run saved state N again exactly, even if the configuration files changed since",
           "The state keeps, by SHA-512 and copied into it, the --sdir scripts, the inject-custom files "
           "and the --kernel/--initrd images of the run, and records the stage3 version and the "
           "Portage snapshot (treeish) part A resolved. A replay uses the kept copies, and part A the "
           "recorded stage3 and snapshot. When that cannot be exact (a copy missing or not matching "
           "its digest, the stage3 or snapshot gone or changed, a state saved by an older gse) the "
           "replay lists what differs and is refused, unless --time-warp-inexact is given.",
           metavar="N"),
    Option("time_warp_inexact", ("--time-warp-inexact",), SWITCH, "states",
           "with --time-warp: replay even where the state cannot be restored exactly, with a warning "
           "for each difference",
           "What cannot be restored is read as it is today: the original file, the latest stage3."),
    Option("main_menu", ("-mm",), SWITCH, "other",
           "open the main menu; with other flags, the menu starts with them set",
           "gse without arguments opens the main menu too."),
    Option("build_controller", ("--build-controller",), DIR, "other",
           "build the controller (kernel and initramfs) from the dracut modules in DIR",
           metavar="DIR"),
    Option("help", ("--help", "-h"), SWITCH, "other", "show this help and exit"),
    Option("version", ("--version",), SWITCH, "other", "show the version and exit"),
)

BY_NAME = {}
for _opt in OPTIONS:
    for _name in _opt.names:
        BY_NAME[_name] = _opt
BY_DEST = {o.dest: o for o in OPTIONS}

# Options that only describe the output or the session; everything else is part of a run.
SESSION_DESTS = frozenset({"verbose", "quiet", "non_interactive", "main_menu", "help", "version"})

EXIT_CODES = (
    (0, "success"),
    (1, "a part of the build failed"),
    (2, "usage or validation error; nothing was created or mounted"),
    (130, "interrupted (SIGINT, SIGTERM) or declined"),
)

EXAMPLES = (
    ("gse", "open the main menu"),
    ("gse -mm --base=precomp --distcc=on", "open the main menu with flags set"),
    ("gse --base=catalyst", "build from catalyst"),
    ("gse --base=catalyst --lawful-good=gparta --enforce=gparta", "pass all of part A"),
    ("gse --base=catalyst --distcc=on --ccache=on", "build with distcc and ccache"),
    ('gse --base=catalyst --sdir=/root/myscripts --do="script1,script2 script3 script4,script5" '
     '-g="-gparta,-gseed,+gcat"',
     "source script1 and script2 before part A, script3 before gseed, script4 and script5 "
     "after gcat"),
    ('gse --base=catalyst --sdir=/root/myscripts --do="script1,script2 script3 script4,script5" '
     '-g="-gcat,-gextr,+gupdate" --lawful-good="gcat,gextr,gupdate"',
     "pass catalyst, extraction and the Portage update while sourcing scripts at those hooks"),
    ("gse --base=catalyst --kernel=/boot/vmlinuz-6.6", "use a prebuilt kernel"),
    ('gse --base=precomp --build-minimal --time-state="minimal"', "build and save the run as a state"),
    ("gse --time-state?", "list the saved states"),
    ("gse --time-state=-2", "delete state 2"),
    ("gse --time-warp=2", "run state 2 again"),
    ('gse --build-controller="/usr/lib64/gse/config.d/controller/modules"', "build the controller"),
)
