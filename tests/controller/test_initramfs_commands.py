"""Every external command the controller's shell code runs is in the
controller's initramfs.

The commands are read from the syntax tree of controller_dracut's hooks and
libraries (shellcmds.py, with Debian's shfmt); the shell's own builtins, the
controller's functions and those of dracut's /init and /lib/dracut-lib.sh
(which source the hooks) are left out; each remaining name is looked up with
`command -V` by the initramfs's own /bin/sh, chrooted into the unpacked
initramfs of the cached controller build, with the PATH dracut's /init sets.
A missing command otherwise shows only when a QEMU boot reaches the line that
runs it.  module-setup.sh files run on the build host and are not read."""
import glob
import os
import re
import shutil
import subprocess

import pytest

import shellcmds
from builds import ROOT

MODULES = os.path.join(ROOT, "controller_dracut")

# Commands the controller may lack, one line each with why it copes: each is
# guarded by `command -v` in the code or installed with `inst_multiple -o`
# (checked below), so a new optional command is a decision made here.
OPTIONAL = {
    "openssl": "faster SHA-512 of the image stream; guarded, sha512sum is the fallback",
    "casync": "chunked transfer; guarded, the whole-image download is the fallback",
    "xz": "decompresses only images published as .tar.xz (the default is zstd)",
    "mkfs.btrfs": "used only with GSE_FSTYPE=btrfs; ext4 needs e2fsprogs only",
    "btrfs": "used only with GSE_FSTYPE=btrfs (labels, subvolumes)",
}

# Calls whose command this reader cannot follow, one line each with why it
# runs no external command: keyed by (file name, source text of the call).
REVIEWED = {
    ("gse-lib.sh", 'eval "export $1=$_gse_q"'): "runs only the export builtin (the value is quoted by gse_env_set)",
}


def controller_files():
    return sorted(p for p in glob.glob(os.path.join(MODULES, "*", "*.sh"))
                  if os.path.basename(p) != "module-setup.sh")


def optional_installs():
    """{command: "file:line"} of the commands a module-setup.sh installs with inst_multiple -o."""
    out = {}
    for path in sorted(glob.glob(os.path.join(MODULES, "*", "module-setup.sh"))):
        for line, words in shellcmds.call_words(path, "inst_multiple"):
            if "-o" in words:
                for w in words:
                    if w and w != "-o":
                        out[os.path.basename(w)] = f"{os.path.relpath(path, ROOT)}:{line}"
    return out


def init_path(root):
    """The PATH dracut's /init sets for the hooks."""
    with open(os.path.join(root, "init"), encoding="utf-8", errors="replace") as fh:
        m = re.search(r"^PATH=(\S+)$", fh.read(), re.M)
    assert m, f"{root}/init sets no PATH: dracut's /init changed, look again at how it runs the hooks"
    return m.group(1)


def lookup(root, names):
    """{name: what the initramfs's /bin/sh makes of it ("" when not found)}:
    `command -V` in a chroot into root, with /init's PATH."""
    script = ('PATH="$1"; shift; for c; do if v=$(command -V "$c" 2>/dev/null); then '
              'printf "%s\\t%s\\n" "$c" "$v"; else printf "%s\\t\\n" "$c"; fi; done')
    res = subprocess.run(["chroot", root, "/bin/sh", "-c", script, "sh", init_path(root), *names],
                         capture_output=True, text=True, env={"PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
    assert res.returncode == 0, res.stderr
    out = dict(line.split("\t", 1) for line in res.stdout.splitlines())
    assert sorted(out) == sorted(set(names)), res.stdout
    return out


def missing_commands(root, found, functions):
    """{name: [Call, ...]} of the commands found runs that root lacks (builtins and functions excluded)."""
    sites = {}
    for call in found.calls:
        if call.name not in functions:
            sites.setdefault(call.name, []).append(call)
    seen = lookup(root, sorted(sites))
    return {name: sites[name] for name, what in seen.items() if not what}


def missing_applets(root, found):
    """{(busybox, applet): [Call, ...]} of the busybox applets run that the initramfs's busybox lacks."""
    out = {}
    for box, call in found.applets:
        res = subprocess.run(["chroot", root, box, "--list"], capture_output=True, text=True)
        if res.returncode != 0 or call.name not in res.stdout.split():
            out.setdefault((box, call.name), []).append(call)
    return out


def describe(missing):
    """One line per missing command: its name, then each file:line that runs it and the call."""
    def site(c):
        return f"{os.path.relpath(c.path, ROOT)}:{c.line} `{c.text.splitlines()[0]}`"
    return "\n".join(f"{name}: run by " + "; ".join(site(c) for c in calls)
                     for name, calls in sorted(missing.items(), key=str))


@pytest.fixture(scope="module")
def unpacked(controller, tmp_path_factory):
    """The controller's initramfs unpacked (lsinitrd --unpack)."""
    if not shutil.which("shfmt"):
        pytest.skip("missing: shfmt (scripts/bootstrap installs it)")
    root = tmp_path_factory.mktemp("initramfs")
    res = subprocess.run(["lsinitrd", "--unpack", controller["initrd"]], cwd=root, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    return str(root)


@pytest.fixture(scope="module")
def functions(unpacked):
    """The functions the hooks may call: the controller's and dracut's (/init sources the hooks)."""
    names = set()
    for path in ("init", "lib/dracut-lib.sh"):
        names |= shellcmds.functions_defined(os.path.join(unpacked, path), dialect="bash")
    assert {"getarg", "warn", "die", "info"} <= names, "dracut's library was not read"
    return names


def test_every_command_the_controller_runs_is_in_its_initramfs(unpacked, functions):
    found = shellcmds.read(controller_files(), REVIEWED)
    missing = missing_commands(unpacked, found, functions | found.functions)
    required = {n: c for n, c in missing.items() if os.path.basename(n) not in OPTIONAL}
    assert not required, ("commands the controller runs that its initramfs lacks (add them to the inst_multiple "
                          "of the module's module-setup.sh):\n" + describe(required))
    applets = missing_applets(unpacked, found)
    assert not applets, "busybox applets the initramfs's busybox lacks:\n" + describe(applets)


def test_optional_commands_are_guarded_or_installed_as_optional():
    found = shellcmds.read(controller_files(), REVIEWED)
    installed = optional_installs()
    probed = {p.name: p for p in found.probes}
    undeclared = {n: [p] for n, p in probed.items() if n not in OPTIONAL}
    assert not undeclared, ("commands the controller probes with `command -v`, not in OPTIONAL (say there why "
                            "the controller copes without them):\n" + describe(undeclared))
    unguarded = sorted(n for n in OPTIONAL if n not in probed and n not in installed)
    assert not unguarded, f"OPTIONAL commands neither guarded by `command -v` nor installed with -o: {unguarded}"
    run = {c.name for c in found.calls}
    stale = sorted(n for n in OPTIONAL if n not in run)
    assert not stale, f"OPTIONAL commands the controller no longer runs: {stale}"


def test_a_command_missing_from_the_initramfs_is_named_with_its_line(unpacked, functions, tmp_path):
    """The check itself can fail: a hook that runs a command no module
    installs is reported with its file and line."""
    hook = tmp_path / "gse-probe.sh"
    hook.write_text("#!/bin/sh\n. /lib/gse/gse-lib.sh\nif cat /proc/cmdline | gse-no-such-tool -q; then\n"
                    "    getarg gse.x= || rmdir-not-here \"$(uname -r)\"\nfi\n")
    found = shellcmds.read(controller_files() + [str(hook)], REVIEWED)
    missing = missing_commands(unpacked, found, functions | found.functions)
    assert sorted(missing) == ["gse-no-such-tool", "rmdir-not-here"]
    assert [(os.path.basename(c.path), c.line) for c in missing["gse-no-such-tool"]] == [("gse-probe.sh", 3)]
    assert "gse-probe.sh:4" in describe(missing)
