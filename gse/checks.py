"""System checks of warp, before anything is touched: disk space, network, priority, SSH.

Settings (config.d/system.yml): gse_min_free_mb, gse_nice, gse_ionice_class,
gse_ionice_level.  The network is checked only when a hook that needs it runs.
"""
import os
import shutil
import socket
import subprocess
import sys
from urllib.parse import urlsplit

from .errors import Interrupted, UsageError

DEFAULT_MIN_FREE_MB = 20480
# Hooks that reach the network: the stage3/snapshot download and the Portage sync.
NETWORK_HOOKS = ("gseed", "gupdate")
# Configuration categories whose URLs those hooks fetch from.
NETWORK_CATEGORIES = ("sources", "portage")
_PORTS = {"http": 80, "https": 443, "rsync": 873, "ftp": 21, "git": 9418}


def _existing_parent(path):
    while not os.path.exists(path):
        parent = os.path.dirname(path)
        if parent == path:
            break
        path = parent
    return path


def disk_space(plan):
    minimum = plan.config.merged.get("gse_min_free_mb", DEFAULT_MIN_FREE_MB)
    if not isinstance(minimum, int) or isinstance(minimum, bool) or minimum < 0:
        raise UsageError("gse_min_free_mb must be a number of MiB, not %r" % (minimum,))
    for path in dict.fromkeys((plan.cdistdir, plan.log_root)):
        where = _existing_parent(path)
        free = shutil.disk_usage(where).free // (1024 * 1024)
        if free < minimum:
            raise UsageError("not enough free disk space for %s: %d MiB free in %s, gse_min_free_mb "
                             "is %d" % (path, free, where, minimum))


def _urls(value):
    if isinstance(value, str):
        parts = urlsplit(value)
        if parts.scheme in _PORTS and parts.hostname:
            yield parts.hostname, parts.port or _PORTS[parts.scheme], value
    elif isinstance(value, dict):
        for v in value.values():
            yield from _urls(v)
    elif isinstance(value, list):
        for v in value:
            yield from _urls(v)


def network_targets(plan):
    """(host, port, url) the run will fetch from; empty when no network hook runs."""
    if not any(plan.runs(h) for h in NETWORK_HOOKS):
        return []
    found = []
    for category in NETWORK_CATEGORIES:
        found.extend(_urls(plan.config.category(category)))
    return list(dict.fromkeys(found))


def connectivity(plan, timeout=5):
    targets = network_targets(plan)
    for host, port, url in targets:
        try:
            socket.create_connection((host, port), timeout=timeout).close()
        except OSError as exc:
            raise UsageError("cannot reach %s (%s): %s needs the network; pass %s with "
                             "--lawful-good to build offline"
                             % (url, exc.strerror or exc, "/".join(NETWORK_HOOKS),
                                ",".join(NETWORK_HOOKS))) from None
    return targets


def priority_settings(plan):
    cfg = plan.config.merged
    nice = cfg.get("gse_nice")
    io_class = cfg.get("gse_ionice_class")
    io_level = cfg.get("gse_ionice_level")
    if nice is not None and (not isinstance(nice, int) or not -20 <= nice <= 19):
        raise UsageError("gse_nice must be a number from -20 to 19, not %r" % (nice,))
    # Names only: true == 1 in Python, so number keys would take a boolean for the realtime class.
    classes = {"realtime": "1", "best-effort": "2", "idle": "3"}
    if io_class is not None and (not isinstance(io_class, str) or io_class not in classes):
        raise UsageError("gse_ionice_class must be idle, best-effort or realtime, not %r" % (io_class,))
    if io_level is not None and (not isinstance(io_level, int) or not 0 <= io_level <= 7):
        raise UsageError("gse_ionice_level must be a number from 0 to 7, not %r" % (io_level,))
    return nice, classes.get(io_class), io_level


def apply_priority(settings):
    """Apply the configured niceness and I/O class to this process (children inherit them)."""
    nice, io_class, io_level = settings
    if nice is not None:
        os.setpriority(os.PRIO_PROCESS, 0, nice)
    if io_class is not None:
        argv = ["ionice", "-c", io_class]
        if io_level is not None and io_class != "3":
            argv += ["-n", str(io_level)]
        argv += ["-p", str(os.getpid())]
        if shutil.which("ionice") is None:
            print("gse: warning: ionice not found; gse_ionice_class not applied", file=sys.stderr)
        else:
            subprocess.run(argv, check=True)


def over_ssh_outside_multiplexer(env=None):
    env = os.environ if env is None else env
    over_ssh = any(env.get(k) for k in ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY"))
    return over_ssh and not env.get("TMUX") and not env.get("STY")


def ssh_session(interactive, ask):
    """Warn (or ask, when interactive) when a dropped SSH connection would kill the build."""
    if not over_ssh_outside_multiplexer():
        return
    msg = "gse: warning: started over SSH outside tmux/screen: the build dies with the connection"
    print(msg, file=sys.stderr)
    if interactive and not ask("Continue anyway? [y/N] "):
        raise Interrupted("declined to build outside tmux/screen")
