# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pack a root as ``tar | compressor`` and hash the result while it streams.

The compressed stream is read here, hashed and written in large chunks, so
the SHA512 costs no second pass over a multi-gigabyte file.  This needs two
processes joined by a pipe and their output read incrementally, which
``AnsibleModule.run_command`` cannot do (it collects the whole output in
memory); ``subprocess.Popen`` with list argv is used instead, never a shell.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import subprocess
import tempfile
import time

COMPRESSORS = {"zstd": ".tar.zst", "xz": ".tar.xz"}
DEFAULT_LEVEL = {"zstd": 3, "xz": 6}
CHUNK = 1 << 20
F_SETPIPE_SZ = getattr(fcntl, "F_SETPIPE_SZ", 1031)
# The process factory; unit tests put a recorder here.
POPEN = subprocess.Popen


class PackError(Exception):
    """A stage of the pipeline failed; carries what fail_json reports."""

    def __init__(self, msg, cmd=None, rc=None, stderr=""):
        super().__init__(msg)
        self.msg, self.cmd, self.rc, self.stderr = msg, cmd, rc, stderr


def exclude_args(excludes):
    """``--exclude`` options for patterns relative to the root (members are named ``./path``)."""
    out = []
    for pattern in excludes:
        rel = pattern.strip().lstrip("/")
        while rel.startswith("./"):
            rel = rel[2:]
        if rel:
            out.append("--exclude=./" + rel.rstrip("/"))
    return out


def tar_argv(root, excludes):
    """tar writing the root to stdout: numeric owners, xattrs, ACLs, one filesystem, sorted names."""
    return [
        "tar", "--create", "--file=-", "--directory=" + root,
        "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls", "--one-file-system",
        "--sort=name", "--format=posix", "--pax-option=delete=atime,delete=ctime",
        # Excludes are relative to the root: anchored at the member name, '*' may cross '/'.
        "--anchored", "--wildcards",
    ] + exclude_args(excludes) + ["."]


def compressor_argv(compression, level=None):
    """The compressor reading tar on stdin and writing to stdout, on all cores."""
    if compression not in COMPRESSORS:
        raise ValueError("unknown compression %r (zstd or xz)" % compression)
    level = DEFAULT_LEVEL[compression] if level is None else int(level)
    if compression == "zstd":
        if not 1 <= level <= 19:
            raise ValueError("zstd level must be 1..19, got %d" % level)
        return ["zstd", "-T0", "-%d" % level, "-q", "-c"]
    if not 0 <= level <= 9:
        raise ValueError("xz level must be 0..9, got %d" % level)
    return ["xz", "-T0", "-%d" % level, "-q", "-c"]


def _widen(pipe_fd):
    # A 1 MiB pipe lets the compressor hand over large chunks (the default is 64 KiB).
    try:
        fcntl.fcntl(pipe_fd, F_SETPIPE_SZ, CHUNK)
    except OSError:
        pass


def _read_err(f):
    f.seek(0)
    return f.read().decode("utf-8", "replace")


def stream_to_file(tar_cmd, comp_cmd, out_path, popen=None):
    """Run ``tar_cmd | comp_cmd``, write its output to ``out_path`` (created) and hash it.

    Returns (sha512 hex, size, seconds).  Raises PackError, leaving no
    ``out_path`` behind, when either process fails.
    """
    popen = popen or POPEN
    start = time.monotonic()
    digest = hashlib.sha512()
    size = 0
    with tempfile.TemporaryFile() as tar_err, tempfile.TemporaryFile() as comp_err:
        tar = popen(tar_cmd, stdout=subprocess.PIPE, stderr=tar_err, close_fds=True)
        try:
            _widen(tar.stdout.fileno())
            comp = popen(comp_cmd, stdin=tar.stdout, stdout=subprocess.PIPE, stderr=comp_err, close_fds=True)
        except BaseException:
            tar.kill()
            tar.wait()
            raise
        # Only the compressor reads tar's output now.
        tar.stdout.close()
        src = comp.stdout.fileno()
        _widen(src)
        buf = bytearray(CHUNK)
        view = memoryview(buf)
        ok = False
        fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
        try:
            while True:
                n = os.readv(src, [view])
                if not n:
                    break
                chunk = view[:n]
                digest.update(chunk)
                written = 0
                while written < n:
                    written += os.write(fd, chunk[written:])
                size += n
            # No fsync: forcing hundreds of MB to disk here would double the
            # time on a busy build host, and nothing depends on this copy
            # being durable.  publish checks every byte against SHA512SUMS and
            # fsyncs its own copy; after a crash a damaged tarball is refused
            # there, never published.
            ok = True
        finally:
            os.close(fd)
            comp.stdout.close()
            comp_rc = comp.wait()
            tar_rc = tar.wait()
            failed = None
            if tar_rc != 0:
                failed = PackError("tar failed", tar_cmd, tar_rc, _read_err(tar_err))
            elif comp_rc != 0:
                failed = PackError("%s failed" % comp_cmd[0], comp_cmd, comp_rc, _read_err(comp_err))
            if failed or not ok:
                os.unlink(out_path)
            if failed:
                raise failed
    return digest.hexdigest(), size, time.monotonic() - start
