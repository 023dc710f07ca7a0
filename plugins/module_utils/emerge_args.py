# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Turn the emerge module's options into emerge's argv and environment.

Kept apart from the module so that the exact command lines are easy to read
and to test.
"""

from __future__ import annotations

# Playbooks run unattended (AWX, ansible-runner) and their output is captured
# or streamed line by line: nothing may wait for a terminal, count down or
# redraw a line.  --ask=n overrides an --ask in EMERGE_DEFAULT_OPTS.
BASE_OPTIONS = ["--ask=n", "--nospinner"]

# Environment of every emerge run; Portage reads these over make.conf.
#   CLEAN_DELAY / EMERGE_WARNING_DELAY: no countdowns before unmerges.
#   ACCEPT_PROPERTIES=-interactive: an ebuild that would ask on the terminal
#     is masked (a clear error) instead of blocking the run; the variable is
#     incremental, so this only adds to what make.conf accepts.
#   PAGER=cat, TERM=dumb: no pager, no xterm titles or cursor movement.
ENVIRONMENT = {
    "CLEAN_DELAY": "0",
    "EMERGE_WARNING_DELAY": "0",
    "ACCEPT_PROPERTIES": "-interactive",
    "PAGER": "cat",
    "TERM": "dumb",
}

# module option -> emerge flag, in the order they are written.
FLAGS = (
    ("update", "--update"),
    ("deep", "--deep"),
    ("newuse", "--newuse"),
    ("changed_use", "--changed-use"),
    ("emptytree", "--emptytree"),
    ("oneshot", "--oneshot"),
    ("noreplace", "--noreplace"),
    ("nodeps", "--nodeps"),
    ("usepkg", "--usepkg"),
    ("keep_going", "--keep-going"),
    ("verbose", "--verbose"),
)
# Options that still apply when a resume list is continued (emerge restores
# the rest from the list's own saved options).
RESUME_FLAGS = ("keep_going", "verbose")


def environment(params):
    env = dict(ENVIRONMENT)
    if not params.get("color"):
        env["NOCOLOR"] = "true"
    return env


def _common(params, flags):
    argv = list(BASE_OPTIONS)
    argv.append("--color=y" if params.get("color") else "--color=n")
    for option, flag in FLAGS:
        if option in flags and params.get(option):
            argv.append(flag)
    if params.get("quiet_build") is not None:
        argv.append("--quiet-build=%s" % ("y" if params["quiet_build"] else "n"))
    if params.get("jobs"):
        argv.append("--jobs=%d" % params["jobs"])
    if params.get("load_average"):
        argv.append("--load-average=%s" % params["load_average"])
    return argv


def merge(emerge, params, pretend=False):
    """emerge [options] atoms: the merge action."""
    argv = [emerge] + _common(params, dict(FLAGS))
    if pretend:
        argv.append("--pretend")
    return argv + list(params.get("extra_args") or []) + list(params.get("atoms") or [])


def resume(emerge, params, skipfirst=False, pretend=False):
    """emerge --resume [--skipfirst]: continue the stored mergelist."""
    argv = [emerge, "--resume"] + (["--skipfirst"] if skipfirst else [])
    argv += _common(params, RESUME_FLAGS)
    if pretend:
        argv.append("--pretend")
    return argv + list(params.get("extra_args") or [])


def depclean(emerge, params, pretend=False):
    """emerge --depclean [atoms]: without atoms, everything nothing needs."""
    argv = [emerge, "--depclean"] + _common(params, ("verbose",))
    if pretend:
        argv.append("--pretend")
    return argv + list(params.get("extra_args") or []) + list(params.get("atoms") or [])


def deselect(emerge, params, pretend=False):
    """emerge --deselect atoms: drop them from the world files."""
    argv = [emerge, "--deselect"] + _common(params, ())
    if pretend:
        argv.append("--pretend")
    return argv + list(params.get("extra_args") or []) + list(params.get("atoms") or [])


def sync(emerge, params):
    """emerge --sync [repo]."""
    argv = [emerge, "--sync"] + _common(params, ("verbose",)) + list(params.get("extra_args") or [])
    return argv + ([params["repo"]] if params.get("repo") else [])


def webrsync(emerge_webrsync, params):
    """emerge-webrsync: the gentoo repository from a snapshot tarball."""
    argv = [emerge_webrsync] + (["--verbose"] if params.get("verbose") else [])
    return argv + list(params.get("extra_args") or [])
