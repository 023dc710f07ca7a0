"""Gates that hold a real build at a chosen point until the test lets it go (or ends it).

A gate is a name.  It is armed when ``<gate dir>/<name>`` is a FIFO: the
process that reaches it writes its pid to ``<name>.reached`` and then waits on
the FIFO (at most 15 minutes, so that a forgotten build ends by itself).  An
unarmed gate lets everything through at once, so the same build passes it on
a rerun.  Nothing is timed: the test waits for ``.reached`` and then signals.

Three kinds of places hold a gate, all of them the build's own processes:

- a hook script (``--sdir``/``--do``/``-g``, or ``gse_sdir``/``gse_doscripts``),
  sourced by bash on the build host or, for stage B hooks, inside the chroot;
- a Portage post-sync hook (``/etc/portage/repo.postsync.d``) inside the
  chroot, run by ``emerge --sync`` itself;
- a wrapper in front of a real program on the build host's ``PATH`` (mount,
  zstd, casync): it waits when its arguments match, then ``exec``s the real
  program, so the build goes on with the real tool.  A wrapper cannot show how
  the real program itself reacts to a signal: it holds the step before it.
"""
import os
import shutil
import stat

GATE_TIMEOUT = 900

# The gate in bash: "gate NAME" waits when NAME is armed.
FUNCTION = r"""
gate() {
    local fifo="$GSE_GATE_DIR/$1"
    [ -p "$fifo" ] || return 0
    echo "$$" > "$fifo.reached.tmp" && mv -f "$fifo.reached.tmp" "$fifo.reached"
    exec 3<>"$fifo"
    read -r -t %d _ <&3
    exec 3<&-
}
""" % GATE_TIMEOUT


def hook_script(name, gate_dir):
    """The body of a hook script (sourced by bash) that waits at gate ``name``."""
    return "GSE_GATE_DIR=%s\n%s\ngate %s\n" % (gate_dir, FUNCTION, name)


def postsync_hook(name, gate_dir, repo):
    """A Portage repo.postsync.d hook that waits at gate ``name`` after ``repo`` was synced."""
    return "#!/bin/bash\nGSE_GATE_DIR=%s\n%s\n[ \"$1\" = %s ] || exit 0\ngate %s\n" % (
        gate_dir, FUNCTION, repo, name)


# program -> (bash condition on its arguments, gate name)
WRAPPERS = {
    # The fourth mount of part B (proc, sys and dev are mounted, run is next).
    "mount": ('[[ "${@: -1}" == */run ]]', "mount"),
    # The compressor of part K's tarball: tar is packing into its pipe.
    "zstd": ("true", "zstd"),
    # Part L reads the published chunk index back (the image is staged, chunks are copied).
    "casync": ('[[ " $* " == *" digest "* ]]', "casync-digest"),
}


def install_wrappers(bindir, gate_dir):
    """Write the wrappers into ``bindir`` (to put first on PATH); each execs the real program."""
    os.makedirs(bindir, exist_ok=True)
    for program, (condition, name) in WRAPPERS.items():
        real = shutil.which(program, path=os.pathsep.join(
            p for p in os.environ.get("PATH", "/usr/bin:/bin").split(os.pathsep) if p != bindir))
        assert real, "%s is not installed" % program
        path = os.path.join(bindir, program)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write("#!/bin/bash\n# A test gate in front of %s (tests/integration/gates.py)\n"
                     "GSE_GATE_DIR=%s\n%s\nif %s; then gate %s; fi\nexec %s \"$@\"\n"
                     % (real, gate_dir, FUNCTION, condition, name, real))
        os.chmod(path, 0o755)


def arm(gate_dir, name):
    """Arm gate ``name``: a FIFO anyone may open (a sync may run as the portage user)."""
    os.makedirs(gate_dir, exist_ok=True)
    os.chmod(gate_dir, 0o1777)
    disarm(gate_dir, name)
    fifo = os.path.join(gate_dir, name)
    os.mkfifo(fifo)
    os.chmod(fifo, 0o666)


def disarm(gate_dir, name):
    for path in (os.path.join(gate_dir, name), os.path.join(gate_dir, name + ".reached")):
        if os.path.lexists(path):
            os.unlink(path)


def reached(gate_dir, name):
    """The pid that reached gate ``name``, or None."""
    try:
        with open(os.path.join(gate_dir, name + ".reached"), encoding="ascii") as fh:
            return int(fh.read().strip() or 0) or None
    except (OSError, ValueError):
        return None


def is_fifo(path):
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False
