# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run a command like AnsibleModule.run_command, copying its output to a file as it comes.

A module's result reaches the controller only when the task ends; a long
emerge would show nothing for hours.  Lines appended to a log file while the
command runs can be followed from outside (the ``gse`` command tails it).
The environment is built the way run_command builds it, so the command sees
exactly what it would have seen there.
"""

from __future__ import annotations

import os
import subprocess
import threading


def command_environment(module, environ_update):
    """os.environ with the module's and the call's updates, as run_command makes it."""
    env = os.environ.copy()
    env.update(getattr(module, "run_command_environ_update", None) or {})
    env.update(environ_update or {})
    # AnsiballZ puts its own payload on PYTHONPATH; run_command removes it too.
    if "PYTHONPATH" in env:
        paths = [p for p in env["PYTHONPATH"].split(":")
                 if p and not p.endswith("/ansible_modlib.zip") and not p.endswith("/debug_dir")]
        if paths:
            env["PYTHONPATH"] = ":".join(paths)
    return env


def _pump(stream, chunks, log, lock):
    """Read ``stream`` line by line into ``chunks``, appending each line to ``log``."""
    for line in iter(stream.readline, b""):
        chunks.append(line)
        with lock:
            log.write(line)
            log.flush()
    stream.close()


def run_logged(module, argv, log_path, environ_update=None):
    """Run ``argv`` (a list, no shell); return (rc, stdout, stderr) as run_command does.

    stdout and stderr are appended to ``log_path`` line by line while the
    command runs (interleaved in the order they arrive).
    """
    env = command_environment(module, environ_update)
    directory = os.path.dirname(log_path)
    if directory:
        os.makedirs(directory, exist_ok=True)
    try:
        proc = subprocess.Popen(list(argv), stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, env=env, close_fds=True)
    except OSError as e:
        module.fail_json(msg="cannot run %s: %s" % (argv[0], e), cmd=list(argv), rc=None,
                         stdout="", stderr=str(e))
    out, err, lock = [], [], threading.Lock()
    with open(log_path, "ab") as log:
        readers = [threading.Thread(target=_pump, args=(proc.stdout, out, log, lock), daemon=True),
                   threading.Thread(target=_pump, args=(proc.stderr, err, log, lock), daemon=True)]
        for t in readers:
            t.start()
        for t in readers:
            t.join()
        rc = proc.wait()
    decode = lambda chunks: b"".join(chunks).decode("utf-8", errors="surrogateescape")  # noqa: E731
    return rc, decode(out), decode(err)
