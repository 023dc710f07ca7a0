# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Pack a root as ``tar | compressor > file`` and hash the file while it is written.

The compressor writes the file itself, as the plain shell pipeline does: the
stream takes no extra hop through a pipe and this process, which would cost
two more copies of every byte and keep the compressor waiting on a full pipe.
The file is read back here while it grows, from the page cache the compressor
has just filled, and hashed (one SHA-512 pass, no second pass over a
multi-gigabyte file once the compressor is done).  The digest is therefore of
exactly the bytes in the file.  A detached OpenPGP signature can be made in the
same pass (a copy of each chunk read goes to gpg).  This needs processes
joined by pipes and a file read incrementally, which
``AnsibleModule.run_command`` cannot do (it collects the whole output in
memory); ``subprocess.Popen`` with list argv is used instead, never a shell.
"""

from __future__ import annotations

import contextlib
import ctypes
import hashlib
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time

COMPRESSORS = {"zstd": ".tar.zst", "xz": ".tar.xz"}
DEFAULT_LEVEL = {"zstd": 3, "xz": 6}
CHUNK = 1 << 20
# How long to wait before looking again at a file the compressor has not
# appended to; the compressor's end wakes the wait at once (a pidfd).  Hashing
# runs several times faster than zstd writes, so the reader is never far
# behind; 20 ms rather than 5 ms took about 0.05 s of CPU off a 300 MB
# tarball on a busy host (fewer wake-ups) for at most a few MB more to read
# after the compressor ends (bench/README.md).
POLL = 0.02
# The process factory; unit tests put a recorder here.
POPEN = subprocess.Popen


# Signals that end a pack run.  SIGINT raises KeyboardInterrupt by Python's
# default; SIGTERM and SIGHUP are made to raise Interrupted while a stream runs,
# so that the same clean-up runs (their default would end the process at once
# and leave gpg to sign whatever it had read).
STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
PR_SET_PDEATHSIG = 1


class Interrupted(BaseException):
    """SIGTERM or SIGHUP arrived while packing (a BaseException, like KeyboardInterrupt)."""


def _raise_interrupted(signum, _frame):
    raise Interrupted("signal %d" % signum)


@contextlib.contextmanager
def interruptible():
    """SIGTERM and SIGHUP raise Interrupted inside the block; the previous handlers come back afterwards."""
    previous = {s: signal.signal(s, _raise_interrupted) for s in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


@contextlib.contextmanager
def uninterrupted():
    """Hold back the stop signals while the block runs (a commit of renames, all or nothing).

    Raises Interrupted before the block when one of them is already pending,
    so that nothing is committed after an interrupt; one that arrives during
    the block is delivered when it ends.
    """
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)
    try:
        pending = signal.sigpending() & set(STOP_SIGNALS)
        if pending:
            raise Interrupted("signal %d" % min(pending))
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def die_with_parent(parent=None):
    """A ``preexec_fn``: the child gets SIGKILL when the process that started it dies.

    However the pack run ends (even by SIGKILL, which allows no clean-up), tar,
    the compressor and gpg do not outlive it: gpg in particular would otherwise
    see the end of its input and sign a truncated stream.
    """
    parent = os.getpid() if parent is None else parent
    libc = ctypes.CDLL(None, use_errno=True)  # loaded here, not between fork and exec

    def preexec():
        libc.prctl(PR_SET_PDEATHSIG, int(signal.SIGKILL), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)
    return preexec


# The work beside the stream (this process reading the tarball back and
# hashing it, the root listing and its parse) runs this much nicer than tar
# and the compressor, which are the pack's critical path: it fills the CPU
# they leave idle (zstd -T0 keeps about 1.7 of 2 cores busy) instead of
# taking turns with them.  Measured side by side on 2 cores (bench/README.md):
# the pack's wall time 0.80x -> 0.85x of raw tar | zstd; the reader still
# ends within a read of the compressor, and gets its priority back then.
BESIDE_NICE = 10


def beside_stream(preexec=None):
    """A ``preexec_fn``: ``preexec``, then BESIDE_NICE lower CPU priority (for work beside the stream)."""
    def run():
        if preexec is not None:
            preexec()
        os.nice(BESIDE_NICE)
    return run


def _step_aside():
    """Lower this thread's CPU priority by BESIDE_NICE; returns the priority to come back to."""
    before = os.getpriority(os.PRIO_PROCESS, 0)
    os.nice(BESIDE_NICE)  # as beside_stream does; the kernel stops at 19
    return before


def _step_back(before):
    """Restore the priority ``_step_aside`` returned, where this process may raise it again.

    Without CAP_SYS_NICE (or an RLIMIT_NICE allowing it) the kernel refuses;
    the rest of the run (the last read, a signature, the records) then stays
    nicer, which costs it nothing on a machine with idle cores.
    """
    if before is None:
        return None
    try:
        os.setpriority(os.PRIO_PROCESS, 0, before)
    except PermissionError:
        pass
    return None


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


# The names of pax extended headers: GNU tar's default (%d/PaxHeaders.%p/%f)
# holds tar's process id, which would make every tarball differ.
PAX_OPTION = "--pax-option=exthdr.name=%d/PaxHeaders/%f,delete=atime,delete=ctime"


def tar_argv(root, excludes, source_date_epoch=None):
    """tar writing the root to stdout, the same bytes for the same tree.

    Numeric owners, xattrs, ACLs, one filesystem, entries sorted by name, pax
    headers without atime, ctime or tar's pid.  With ``source_date_epoch``
    (seconds), every modification time later than it is clamped to it
    (``--mtime=@N --clamp-mtime``): files the build wrote carry that time,
    files older than it keep theirs (SOURCE_DATE_EPOCH, reproducible-builds.org).
    """
    argv = [
        "tar", "--create", "--file=-", "--directory=" + root,
        "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls", "--one-file-system",
        "--sort=name", "--format=posix", PAX_OPTION,
    ]
    if source_date_epoch is not None:
        argv += ["--mtime=@%d" % int(source_date_epoch), "--clamp-mtime"]
    # Excludes are relative to the root: anchored at the member name, '*' may cross '/'.
    return argv + ["--anchored", "--wildcards"] + exclude_args(excludes) + ["."]


# What tar sees as the user and group databases while it packs: nothing.  GNU
# tar writes ACL entries (SCHILY.acl.*) with the names the build host's own
# databases give their ids, even with --numeric-owner; with no names to find
# it writes the numbers, which mean the same on every client (the image's
# /etc/passwd is not the build host's).  The kernel's copy of the ACLs
# (system.posix_acl_* xattrs) is numeric anyway.
NO_NAMES = {"/etc/passwd": "", "/etc/group": "", "/etc/nsswitch.conf": "passwd: files\ngroup: files\n"}
# nscd would answer from its cache before the files are read.
NO_NAMES_DIRS = ("/run/nscd", "/var/run/nscd", "/var/lib/sss/mc")
CLONE_NEWNS = 0x00020000
MS_BIND, MS_REC, MS_PRIVATE = 4096, 16384, 1 << 18


def no_names_dir():
    """A directory holding the empty databases that ``without_names`` mounts (the caller removes it)."""
    d = tempfile.mkdtemp(prefix="gse-pack-names-")
    for target, text in NO_NAMES.items():
        with open(os.path.join(d, os.path.basename(target)), "w", encoding="utf-8") as f:
            f.write(text)
    os.mkdir(os.path.join(d, "empty"))
    return d


def without_names(names_dir):
    """A ``preexec_fn`` part: a private mount namespace where user and group names cannot be found.

    The bind mounts live only in the child's own namespace (made private
    first, so nothing propagates to the host) and end with it.  Needs root,
    as packing a system root does.
    """
    libc = ctypes.CDLL(None, use_errno=True)

    def check(rc, what):
        if rc != 0:
            raise OSError(ctypes.get_errno(), "%s: %s" % (what, os.strerror(ctypes.get_errno())))

    binds = [(os.path.join(names_dir, os.path.basename(t)).encode(), t.encode()) for t in NO_NAMES
             if os.path.exists(t)]
    binds += [(os.path.join(names_dir, "empty").encode(), t.encode()) for t in NO_NAMES_DIRS if os.path.isdir(t)]

    def preexec():
        check(libc.unshare(CLONE_NEWNS), "unshare")
        check(libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None), "mount --make-rprivate /")
        for src, target in binds:
            check(libc.mount(src, target, None, MS_BIND, None), "bind mount over %s" % target.decode())
    return preexec


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


def _read_err(f):
    f.seek(0)
    return f.read().decode("utf-8", "replace")


class Streamed:
    """What ``stream_to_file`` produced: digest, size, time and the signer's status output.

    ``state`` is the SHA-512 object itself, so that a signature can be made
    from a copy of it (openpgp_digest_sign) without hashing the stream again.
    """

    def __init__(self, sha512, size, seconds, signer_status="", state=None):
        self.sha512, self.size, self.seconds, self.signer_status = sha512, size, seconds, signer_status
        self.state = state


def _write_all(fd, chunk):
    written, n = 0, len(chunk)
    while written < n:
        written += os.write(fd, chunk[written:])


def _first_failure(stages):
    for cmd, err, rc in stages:
        if rc != 0:
            return PackError("%s failed" % cmd[0], cmd, rc, _read_err(err))
    return None


def _pidfd(proc):
    """A descriptor that becomes readable when ``proc`` ends, or None where the kernel has no pidfds."""
    try:
        return os.pidfd_open(proc.pid)
    except (AttributeError, OSError):
        return None


def _ended(proc, pidfd):
    """Whether ``proc`` has ended, after waiting up to POLL seconds for it to."""
    if proc.poll() is not None:
        return True
    if pidfd is not None:
        select.select([pidfd], [], [], POLL)
    else:
        time.sleep(POLL)
    return proc.poll() is not None


def stream_to_file(tar_cmd, comp_cmd, out_path, popen=None, signer_cmd=None, while_streaming=None):
    """Run ``tar_cmd | comp_cmd > out_path`` (created) and hash the file while it is written.

    The file is read from the start as the compressor appends to it; once
    the compressor has ended, one more read to the end takes the rest, so
    the digest and size are those of every byte in the file.

    With ``signer_cmd``, a third process (gpg signing stdin) gets a copy of
    each chunk read, from the same buffer that is hashed, so the signature
    covers exactly the bytes of ``out_path`` without a second pass; its stdout
    (status lines) is returned.  The caller names where the signer writes and
    judges its status.

    ``while_streaming`` is called once every process has started, before the
    file is read: work that then runs beside tar and the compressor (which
    never wait for this process; the reading catches up afterwards).  From
    then until the compressor has ended this process runs BESIDE_NICE nicer
    than they do.

    Returns a Streamed.  Raises PackError, leaving no ``out_path`` behind,
    when any process fails.  On any other exception (an interruption, also
    while gpg finishes the signature) the processes still running are killed
    first, so that the signer never completes a signature, and ``out_path``
    is removed.  Every process is started with ``die_with_parent``, so none
    outlives a caller that is killed outright.
    """
    popen = popen or POPEN
    start = time.monotonic()
    digest = hashlib.sha512()
    size = 0
    procs = []  # (process, argv, stderr file), in pipeline order
    preexec = die_with_parent()
    tar_preexec = preexec
    names_dir = None
    if os.geteuid() == 0:
        names_dir = no_names_dir()
        no_names = without_names(names_dir)

        def tar_preexec():
            preexec()
            no_names()
    with tempfile.TemporaryFile() as tar_err, tempfile.TemporaryFile() as comp_err, \
            tempfile.TemporaryFile() as sig_out, tempfile.TemporaryFile() as sig_err:
        out_fd = rfd = pidfd = aside = None
        created = done = broken = False
        try:
            # Created here (never an existing file), handed to the compressor as its stdout.
            out_fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)
            created = True
            try:
                tar = popen(tar_cmd, stdout=subprocess.PIPE, stderr=tar_err, close_fds=True, preexec_fn=tar_preexec)
            except subprocess.SubprocessError as e:
                raise PackError("%s could not be started without the build host's user names: %s"
                                % (tar_cmd[0], e), tar_cmd, None) from None
            procs.append((tar, tar_cmd, tar_err))
            # The tar -> compressor pipe keeps the kernel's 64 KiB: measured on the
            # 630 MB benchmark tree under load, 1 MiB pipes (F_SETPIPE_SZ) made the
            # stream 1.4x slower in wall time for the same CPU (see bench/README.md).
            comp = popen(comp_cmd, stdin=tar.stdout, stdout=out_fd, stderr=comp_err, close_fds=True,
                         preexec_fn=preexec)
            procs.append((comp, comp_cmd, comp_err))
            tar.stdout.close()  # only the compressor reads tar's output now
            os.close(out_fd)  # only the compressor writes the file now
            out_fd = None
            sink = None
            if signer_cmd:
                sig = popen(signer_cmd, stdin=subprocess.PIPE, stdout=sig_out, stderr=sig_err, close_fds=True,
                            preexec_fn=preexec)
                procs.append((sig, signer_cmd, sig_err))
                sink = sig.stdin.fileno()
            # Everything started: from here on this process only works beside them.
            aside = _step_aside()
            if while_streaming is not None:
                while_streaming()
            rfd = os.open(out_path, os.O_RDONLY | os.O_CLOEXEC)
            pidfd = _pidfd(comp)
            buf = bytearray(CHUNK)
            view = memoryview(buf)
            ended = False
            while True:
                n = os.readv(rfd, [view])
                if n:
                    chunk = view[:n]
                    if sink is not None:
                        # First, so that gpg hashes this chunk while it is hashed here.
                        _write_all(sink, chunk)
                    digest.update(chunk)
                    size += n
                elif ended:
                    break  # read to the end after the compressor ended: the whole file
                else:
                    ended = _ended(comp, pidfd)
                    if ended:
                        # What is left to read is now the critical path.
                        aside = _step_back(aside)
            # The compressor has ended and everything it wrote was read; the
            # file must still be exactly that long (nothing else writes it).
            if os.fstat(rfd).st_size != size:
                raise PackError("%s changed while it was read (%d bytes read, %d in the file)"
                                % (out_path, size, os.fstat(rfd).st_size), comp_cmd, None)
            # No fsync: forcing hundreds of MB to disk here would double the
            # time on a busy build host, and nothing depends on this copy
            # being durable.  publish checks every byte against SHA512SUMS and
            # fsyncs its own copy; after a crash a damaged tarball is refused
            # there, never published.
            if signer_cmd:
                procs[2][0].stdin.close()  # the end of the data: gpg makes the signature now
            # Waited for inside the try: an interruption while gpg makes the
            # signature still kills it (below) before it can write one.
            for proc, _cmd, _err in procs:
                proc.wait()
            done = True
        except BrokenPipeError:
            broken = True  # the signer stopped reading; its exit status says why
        finally:
            _step_back(aside)
            if names_dir is not None:
                shutil.rmtree(names_dir, ignore_errors=True)
            for d in (out_fd, rfd, pidfd):
                if d is not None:
                    os.close(d)
            if not done:
                for proc, _cmd, _err in procs:
                    if proc.poll() is None:
                        proc.kill()
            for proc, _cmd, _err in procs:
                for pipe in (proc.stdin, proc.stdout):
                    if pipe is not None and not pipe.closed:
                        try:
                            pipe.close()
                        except BrokenPipeError:
                            pass
            rcs = [(cmd, err, proc.wait()) for proc, cmd, err in procs]
            if not done and not broken and created:
                os.unlink(out_path)  # the exception goes on
        # A broken pipe means the signer gave up: it is the stage to report.
        failed = _first_failure(rcs[2:] if broken else rcs)
        if broken and failed is None:
            failed = PackError("%s stopped reading the stream" % signer_cmd[0], signer_cmd, rcs[2][2],
                               _read_err(sig_err))
        if failed:
            os.unlink(out_path)
            raise failed
        sig_out.seek(0)
        status = sig_out.read().decode("utf-8", "replace")
    return Streamed(digest.hexdigest(), size, time.monotonic() - start, status, digest)
