"""When a part fails: the report, and the choice of resume / skip first / shell / abort.

The concept document's emerge_master_loop (an emerge with a resume list) and
_ask_for_shell (any other failure) in one loop.
"""
import os
import shlex
import subprocess
import sys

CHOICES = (
    ("r", "resume", "resume"),
    ("s", "skipfirst", "skip first"),
    ("h", "shell", "shell"),
    ("a", "abort", "abort"),
)


def _indent(text, limit=40):
    # The emerge module returns the log tail as a list of lines.
    if isinstance(text, (list, tuple)):
        text = "\n".join(map(str, text))
    lines = str(text).rstrip("\n").splitlines()[-limit:]
    return "".join("    %s\n" % line for line in lines)


def report(failure, stdout_tail=""):
    """The failed command, its stderr and the related items, as text."""
    if failure is None:
        out = "gse: the run failed before any task did (see the output above)\n"
        if stdout_tail:
            out += _indent(stdout_tail, 15)
        return out
    res = failure.result
    part = failure.part
    where = "part %s (%s)" % (part.letter, part.hook) if part else "the build"
    out = "gse: %s failed in task %r\n" % (where, failure.task)
    if res.get("msg"):
        out += "  message: %s\n" % str(res["msg"]).strip().splitlines()[0]
    cmd = res.get("cmd")
    if cmd:
        cmd = " ".join(map(str, cmd)) if isinstance(cmd, list) else str(cmd)
        if "\n" in cmd.strip():
            out += "  command:\n" + _indent(cmd)
        else:
            out += "  command: %s\n" % cmd.strip()
    if "rc" in res:
        out += "  exit code: %s\n" % res["rc"]
    if res.get("stderr"):
        out += "  stderr:\n" + _indent(res["stderr"])
    if res.get("failed_package"):
        out += "  failed package: %s\n" % res["failed_package"]
    if res.get("resume"):
        out += "  resume list: %s\n" % " ".join(res["resume"])
    if res.get("log"):
        out += "  build log: %s\n" % res["log"]
    if res.get("log_tail"):
        out += "  last lines of %s:\n" % (res.get("log") or "the build log") + _indent(res["log_tail"])
    for key in ("items", "entries"):
        if res.get(key):
            out += "  %s: %s\n" % (key, res[key])
    return out


def prompt_text(failure):
    emerge = failure is not None and failure.is_emerge
    skip = "[s] skip first (drop %s)" % failure.result.get("failed_package", "the failed package") \
        if emerge else "[s] skip first (go on with the next part)"
    return "[r] resume  %s  [h] shell  [a] abort: " % skip


def ask(failure, read=input, write=None):
    """Read a choice until it is one of CHOICES; return 'resume', 'skipfirst', 'shell' or 'abort'."""
    write = write or (lambda s: (sys.stdout.write(s), sys.stdout.flush()))
    while True:
        try:
            answer = read(prompt_text(failure)).strip().lower()
        except EOFError:
            return "abort"
        for key, value, label in CHOICES:
            if answer in (key, value, label):
                return value
        write("answer r, s, h or a\n")


def shell(workdir, in_chroot, command=None, leave="leave the shell to choose again"):
    """An interactive login shell in the chroot (mounts still in place), or in the workdir.

    With ``command`` (an argv) the login shell runs that instead, on the same
    terminal: part H's make menuconfig (gse/questions.py)."""
    if in_chroot and os.path.isdir(workdir):
        argv = ["chroot", workdir, "/bin/bash", "-l"]
    else:
        argv = ["/bin/bash", "-l"]
    if command:
        argv += ["-c", shlex.join(command)]
    print("gse: %s; %s" % (" ".join(argv), leave), flush=True)
    env = dict(os.environ, PS1="(gse) \\w # ")
    return subprocess.call(argv, cwd=workdir if os.path.isdir(workdir) else None, env=env)
