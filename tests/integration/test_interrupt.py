"""A build interrupted or killed at any part leaves nothing running and nothing mounted, and the
next run goes on: real fixture builds (precomp base) through gse and through ansible-playbook.

One complete build publishes an image first (module-scoped, shared by every case).  Then
each part is held at a gate (tests/integration/gates.py: the build's own process reaches
it, says so and waits; nothing is timed) and interrupted there:

=====  ===========================================  ===================================
part   where it is held                             signal -> target (in this order)
=====  ===========================================  ===================================
B      while mounting: the mount of /run (proc,     KILL -> ansible-playbook,
       sys, dev mounted, the module mid-run)        INT  -> gse
C      during the sync: a repo.postsync.d hook      TERM -> gse and its ansible-playbook
       run by ``emerge --sync`` in the chroot
E      a chroot hook script (+glocale)              KILL -> gse and its ansible-playbook,
                                                    TERM -> gse
F      during a compile (dev-util/slow-build's      INT  -> gse and its ansible-playbook,
       src_compile waits)                           KILL -> gse, rerun at once
K      while packing: the compressor of the         TERM -> ansible-playbook
       tarball (tar writes into its pipe)
L      while publishing: casync reads the staged    INT  -> ansible-playbook
       index back (chunks copied, pointer not moved)
=====  ===========================================  ===================================

Every part, every signal and every target is covered, and each signal meets each target
once (3 x 3 pairs over 6 parts: 9 interrupted builds, not 54).  "Both in turn" sends the
signal to gse, then to the ansible-playbook gse started.  After each interrupt, polling
with a deadline: no process of the build is left (every process of its tree before the
signal, its unit, nothing rooted in the chroot), nothing is mounted under the build's
directories (findmnt), the host's /dev is intact, the publication tree verifies (gpgv)
and names a complete image.  The rerun check is shared per part: after its interrupts,
the part runs again to completion (for F the rerun is the one right after the SIGKILL,
with no hand work: it completes, or refuses naming the command that fixes it).  K and L
share one image so that it is packed once completely: K's rerun packs it, L publishes it
(on the plain route, which can name the build id; gse always starts a new one).

Also here: a build whose guard is gone while it runs (gse refuses and names the one
command that releases it; that command ends it), the fallback where cgroup v2 cannot be
used (a mount namespace without the cgroup v2 mount), and skip-first on the plain route.
"""
import importlib.machinery
import importlib.util
import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import tempfile
import time

import pytest

from . import gates
from .buildrun import ROOT, BuildEnv

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds a chroot and mounts: root only")

GSE = os.path.join(os.path.dirname(sys.executable), "gse")
PARTS = ["gparta", "gpartb", "gpartc", "gpartd", "gparte", "gpartf", "gpartg", "gparth", "gparti", "gpartj",
         "gpartk", "gpartl"]
SESSION_VARS = ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY", "TMUX", "STY", "GSE_PLAYBOOK_DIR")
CHROOT_GATES = "/tmp/gse-gate"  # the gate directory of gates inside the chroot
KILL, TERM, INT = signal.SIGKILL, signal.SIGTERM, signal.SIGINT


def buildunit():
    from ansible_collections.gse.stateless.plugins.module_utils import buildunit as bu
    return bu


def mounts_under(path, task=None):
    """What findmnt lists at or under ``path`` (``task``: a process of another mount namespace)."""
    argv = ["findmnt", "-rn", "-o", "TARGET"] + (["-N", str(task)] if task else [])
    out = subprocess.run(argv, capture_output=True, text=True, check=True).stdout
    path = os.path.realpath(str(path)).rstrip("/")
    targets = [t.encode().decode("unicode_escape") for t in out.split()]
    return [t for t in targets if t == path or t.startswith(path + "/")]


def poll(check, seconds):
    """check() until it is true or the deadline passes; its last value."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


def argv_of(pid):
    try:
        with open("/proc/%d/cmdline" % pid, "rb") as fh:
            return [a.decode("utf-8", "replace") for a in fh.read().split(b"\0") if a]
    except OSError:
        return []


def tree(pid):
    return [pid] + buildunit().descendants(pid)


def ansible_playbook_of(gse_pid):
    """The ansible-playbook gse started (the outermost one: its workers carry the same argv)."""
    bu = buildunit()
    parents = bu._parents()
    for pid in sorted(bu.descendants(gse_pid, parents)):
        if any(os.path.basename(a) == "ansible-playbook" for a in argv_of(pid)[:2]) \
                and not any(os.path.basename(a) == "ansible-playbook" for a in argv_of(parents.get(pid, 0))[:2]):
            return pid
    return None


def host_dev_intact():
    return stat.S_ISCHR(os.stat("/dev/null").st_mode) and os.path.exists("/dev/zero") \
        and (os.path.ismount("/dev/pts") or not os.path.exists("/dev/pts/ptmx"))


def publication_verifies(env):
    """version.txt verifies and names an image whose files are all there and match SHA512SUMS (signed)."""
    keyring = os.path.join(env.cdist, "publication-keyring.gpg")
    p = subprocess.run(["gpgv", "--keyring", keyring, "--output", "-", "version.txt"],
                       cwd=env.publish, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    body = dict(line.split(": ", 1) for line in p.stdout.splitlines() if ": " in line)
    image = os.path.dirname(os.path.join(env.publish, body["path"]))
    assert not os.path.basename(image).startswith("."), body
    p = subprocess.run(["gpgv", "--keyring", keyring, "SHA512SUMS.asc", "SHA512SUMS"], cwd=image,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    p = subprocess.run(["sha512sum", "--strict", "-c", "SHA512SUMS"], cwd=image, capture_output=True, text=True)
    assert p.returncode == 0 and os.path.basename(body["path"]) + ": OK" in p.stdout, p.stdout + p.stderr
    return body


class Bench:
    """The shared build, its gse config.d, hook scripts and gates, and how to start runs on it."""

    def __init__(self, env, fixture, url, signing):
        self.env = env
        self.dir = env.dir
        self.gates = os.path.join(self.dir, "gates")        # gates of the build host
        self.bin = os.path.join(self.dir, "gate-bin")       # wrappers, first on PATH
        self.sdir = os.path.join(self.dir, "scripts")       # --sdir
        self.configd = os.path.join(self.dir, "config.d")
        gates.install_wrappers(self.bin, self.gates)
        os.makedirs(self.sdir)
        with open(os.path.join(self.sdir, "gate-e"), "w", encoding="utf-8") as fh:
            fh.write(gates.hook_script("part-e", CHROOT_GATES))
        with open(os.path.join(self.sdir, "go"), "w", encoding="utf-8") as fh:
            fh.write("touch /tmp/gse-test-go\n")
        loader = importlib.machinery.SourceFileLoader("demo_configd", os.path.join(ROOT, "scripts", "demo-configd"))
        demo = importlib.util.module_from_spec(importlib.util.spec_from_loader("demo_configd", loader))
        loader.exec_module(demo)
        demo.write(self.configd, dict(
            gse_cdistdir=env.cdist, gse_log_root=env.logs, gse_publish_dir=env.publish,
            gse_stage3_mirror=url, gse_stage3_keyring=fixture.keyring, gse_repos_dir=env.vars["gse_repos_dir"],
            gse_gnupghome=signing[0], gse_signing_key=signing[1], gse_min_free_mb=1,
            gse_packages=["dev-util/slow-build"], gse_sync_method="emerge"))

    def workdir(self):
        return self.env.workdir()

    def chroot_gates(self):
        return self.workdir() + CHROOT_GATES

    def path_env(self):
        return {"PATH": self.bin + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin")}

    def gse_env(self):
        e = {k: v for k, v in os.environ.items() if k not in SESSION_VARS and not k.startswith("ANSIBLE_")}
        e.update(self.path_env(), GSE_CONFIGD=self.configd, ANSIBLE_NOCOLOR="1")
        return e

    def gse_argv(self, parts, hooks=()):
        """gse running only ``parts``; ``hooks``: (hook with its sign, script) pairs."""
        argv = [GSE, "--base=precomp", "-q", "--non-interactive",
                "--lawful-good=" + ",".join(p for p in PARTS if p not in parts)]
        if hooks:
            argv += ["--sdir=" + self.sdir, "--do=" + ",".join(s for _h, s in hooks),
                     "-g=" + ",".join(h for h, _s in hooks)]
        return argv

    def start_gse(self, parts, hooks=()):
        log = open(os.path.join(self.dir, "started.log"), "w", encoding="utf-8")
        return subprocess.Popen(self.gse_argv(parts, hooks), cwd=self.dir, env=self.gse_env(),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT)

    def gse(self, parts, hooks=()):
        return subprocess.run(self.gse_argv(parts, hooks), cwd=self.dir, env=self.gse_env(),
                              stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=1800)

    def ap_extra(self, extra, hooks=()):
        extra = dict(extra)
        if hooks:
            extra["gse_sdir"] = self.sdir
            extra["gse_doscripts"] = [{"hook": h[1:], "when": "before" if h[0] == "-" else "after", "script": s}
                                      for h, s in hooks]
        return extra

    def start_ap(self, tags, extra, hooks=()):
        return self.env.start(tags=tags, extra=self.ap_extra(extra, hooks), env=self.path_env())

    def log(self):
        with open(os.path.join(self.dir, "started.log"), encoding="utf-8", errors="replace") as fh:
            return fh.read()[-4000:]


@pytest.fixture(scope="module")
def bench(gse_fixture, fixture_http, signing):
    d = tempfile.mkdtemp(prefix="gse-int-", dir="/var/tmp")
    # A copy of the repository: a sync binds it writable, the fixture's cache must stay as it is.
    repos = os.path.join(d, "repos")
    shutil.copytree(os.path.dirname(gse_fixture.repo), repos, symlinks=True)
    env = BuildEnv(d, gse_fixture, fixture_http, signing[0], signing[1])
    env.vars["gse_repos_dir"] = repos
    rc, res = env.run(extra={"gse_build_id": "complete"})
    assert rc == 0, res.failed()
    b = Bench(env, gse_fixture, fixture_http, signing)
    yield b
    # Whatever a failed case left: the documented release, then nothing may stay mounted.
    run_release(env.cdist)
    env.wait_released()
    assert mounts_under(env.dir) == [], "mounts left under the build directories"
    if not mounts_under(env.dir):
        shutil.rmtree(env.dir)


def run_release(cdist, command=None):
    """The documented release command, from the checkout, as an admin types it."""
    command = command or "ansible-playbook playbooks/release.yml -e gse_base=precomp -e gse_cdistdir=%s" % cdist
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    return subprocess.run(command, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)


# --- the parts: how each is started, held and run again ---------------------------------------------

def _write(path, text, mode=0o644):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)
    os.chmod(path, mode)


def _sync_gate(bench, on):
    """A second repository that emerge --sync syncs (rsync from a directory in the chroot), and
    a post-sync hook that holds the sync at gate "sync"; ``on=False`` removes them."""
    w = bench.workdir()
    files = {"etc/portage/repos.conf/gse-gate.conf":
             "[gse-gate]\nlocation = /var/tmp/gse-gate-repo\nsync-type = rsync\n"
             "sync-uri = file:///var/tmp/gse-gate-src\nauto-sync = yes\n",
             "var/tmp/gse-gate-src/profiles/repo_name": "gse-gate\n",
             "var/tmp/gse-gate-src/metadata/layout.conf": "masters = gse-test\nthin-manifests = true\n",
             # What Portage's rsync sync reads first, to tell whether the source changed.
             "var/tmp/gse-gate-src/metadata/timestamp.chk": "Mon, 30 Nov 2026 00:00:00 +0000\n",
             "etc/portage/repo.postsync.d/gse-gate": gates.postsync_hook("sync", CHROOT_GATES, "gse-gate")}
    if on:
        for rel, text in files.items():
            _write(os.path.join(w, rel), text, 0o755 if "postsync" in rel else 0o644)
        return
    assert mounts_under(os.path.join(w, "var/tmp")) == []
    for rel in files:
        if os.path.lexists(os.path.join(w, rel)):
            os.unlink(os.path.join(w, rel))
    for d in ("var/tmp/gse-gate-src", "var/tmp/gse-gate-repo"):
        shutil.rmtree(os.path.join(w, d), ignore_errors=True)


def _new_content(bench, case):
    """The image must differ from the published one, or part L publishes nothing (unchanged)."""
    _write(os.path.join(bench.workdir(), "etc/gse-interrupt-case"), case + "\n")


def _compile_gate(bench, on):
    for name in ("gse-test-compiling", "gse-test-go"):
        path = os.path.join(bench.workdir(), "tmp", name)
        if os.path.exists(path):
            os.unlink(path)


SYNC = {"gse_sync_method": "emerge"}

# part -> how it is held and run.  gate: (directory kind, name); reached by the build's process.
# K and L share one image: K's case packs a changed root, K's rerun packs it completely under the
# same id, and L publishes that id (a publish of new content: an unchanged one does nothing).
PARTSPEC = {
    "B": dict(what="while mounting", gate=("host", "mount"), parts={"gpartb"}, tags=["gmount"],
              rerun=dict(tags=["gpartb"])),
    "C": dict(what="during the sync", gate=("chroot", "sync"), parts={"gpartb", "gpartc"},
              tags=["gmount", "gupdate"], extra=SYNC, prepare=_sync_gate,
              rerun=dict(tags=["gmount", "gpartc"], extra=SYNC)),
    "E": dict(what="at a chroot hook", gate=("chroot", "part-e"), parts={"gpartb", "gparte"},
              tags=["gmount", "gparte"], hooks=[("+glocale", "gate-e")],
              rerun=dict(tags=["gmount", "gparte"])),
    "F": dict(what="during a compile", gate=("compile", None), parts={"gpartb", "gpartf"},
              tags=["gmount", "gpartf"], extra={"gse_packages": ["dev-util/slow-build"]}, prepare=_compile_gate,
              rerun=dict(gse=True, hooks=[("-gpkg", "go")])),
    "K": dict(what="while packing", gate=("host", "zstd"), parts={"gpartk"}, tags=["gpartk"],
              content=True, build_id="int-kl", rerun=dict(tags=["gpartk"])),
    "L": dict(what="while publishing", gate=("host", "casync-digest"), parts={"gpartl"}, tags=["gpartl"],
              build_id="int-kl", rerun=dict(tags=["gpartl"])),
}

# part -> [(signal, target)], in the order they run; see the module's docstring.
MATRIX = {
    "B": [(KILL, "ansible-playbook"), (INT, "gse")],
    "C": [(TERM, "both")],
    "E": [(KILL, "both"), (TERM, "gse")],
    "F": [(INT, "both"), (KILL, "gse")],
    "K": [(TERM, "ansible-playbook")],
    "L": [(INT, "ansible-playbook")],
}


def _gate_state(bench, spec):
    kind, name = spec["gate"]
    if kind == "compile":
        return lambda: os.path.exists(os.path.join(bench.workdir(), "tmp", "gse-test-compiling"))
    directory = bench.gates if kind == "host" else bench.chroot_gates()
    return lambda: gates.reached(directory, name)


def _arm(bench, spec, on):
    kind, name = spec["gate"]
    if kind == "compile":
        return
    directory = bench.gates if kind == "host" else bench.chroot_gates()
    if on:
        gates.arm(directory, name)
    else:
        gates.disarm(directory, name)


def _start(bench, spec, target, build_id):
    if target == "ansible-playbook":
        return bench.start_ap(spec["tags"], dict(spec.get("extra", {}), gse_build_id=build_id),
                              spec.get("hooks", ()))
    return bench.start_gse(spec["parts"], spec.get("hooks", ()))


def _signal(proc, sig, target):
    """Send ``sig`` to the target; return the pid of the ansible-playbook that ran."""
    if target == "ansible-playbook":
        os.kill(proc.pid, sig)
        return proc.pid
    playbook = poll(lambda: ansible_playbook_of(proc.pid), 60)
    assert playbook, "gse runs no ansible-playbook"
    os.kill(proc.pid, sig)
    if target == "both":
        os.kill(playbook, sig)
    return playbook


def settled(bench, pids, task=None):
    """Poll, with a deadline, until nothing of the build is left; then the checks that need no wait."""
    bu, workdir = buildunit(), bench.workdir()
    left = poll(lambda: not ({p for p in pids if bu.alive(p)} | bu.members(workdir)), 180)
    assert left, "processes of the build left: %s" % sorted(
        (p, argv_of(p)[:4]) for p in {p for p in pids if bu.alive(p)} | bu.members(workdir))
    assert bu.rooted_in(workdir) == []
    assert poll(lambda: not mounts_under(bench.dir, task), 120), mounts_under(bench.dir, task)
    assert host_dev_intact()
    return publication_verifies(bench.env)


def interrupt(bench, part, n, sig, target):
    """One case: start, wait at the gate, signal, wait for the run to end; return what it left to check."""
    spec = PARTSPEC[part]
    build_id = spec.get("build_id") or "int-%s-%d" % (part.lower(), n)
    if spec.get("prepare"):
        spec["prepare"](bench, True)
    if spec.get("content"):
        _new_content(bench, build_id)
    _arm(bench, spec, True)
    proc = _start(bench, spec, target, build_id)
    try:
        at_gate = _gate_state(bench, spec)
        assert poll(lambda: at_gate() or proc.poll() is not None, 900) and proc.poll() is None, \
            "the run did not reach the gate %s:\n%s" % (spec["what"], bench.log())
        pids = set(tree(proc.pid)) | buildunit().members(bench.workdir())
        _signal(proc, sig, target)
        proc.wait(timeout=600)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        _arm(bench, spec, False)
    if target != "ansible-playbook" and sig != KILL:
        assert proc.returncode == 130, bench.log()
        assert "interrupted" in bench.log()
    if target != "ansible-playbook":  # gse chose the id: its $CLOCALLG, the newest
        build_id = max(os.listdir(bench.env.logs), key=lambda n: os.path.getmtime(os.path.join(bench.env.logs, n)))
    return pids, build_id


# These two come before the matrix: they need a compile of dev-util/slow-build, and once part F's
# rerun has merged it, its binary package (gse_binpkg_dir) is used and nothing compiles.
def test_guard_gone_while_the_build_runs(bench):
    """The guard is killed while a build compiles: gse refuses to start another build on the work
    directory and names the one command that releases it; that command, run as given, ends the
    build and releases its mounts."""
    spec = PARTSPEC["F"]
    _compile_gate(bench, True)
    proc = _start(bench, spec, "ansible-playbook", "guard-gone")
    try:
        assert poll(lambda: _gate_state(bench, spec)() or proc.poll() is not None, 900) and proc.poll() is None, \
            bench.log()
        pids = set(tree(proc.pid)) | buildunit().members(bench.workdir())
        with open(bench.workdir().rstrip("/") + ".mounts.json", encoding="utf-8") as fh:
            guard = json.load(fh)["guard_pid"]
        os.kill(guard, KILL)
        assert poll(lambda: not buildunit().alive(guard), 60)
        r = bench.gse({"gpartb", "gpartf"})
        assert r.returncode == 2, r.stdout + r.stderr
        assert "a build is still running on %s" % bench.workdir() in r.stderr
        m = re.search(r"release its mounts with:\s+(ansible-playbook [^\n]+)", r.stderr)
        assert m and m.group(1).strip() == ("ansible-playbook playbooks/release.yml -e gse_base=precomp -e gse_cdistdir=%s"
                                    % bench.env.cdist), r.stderr
        assert proc.poll() is None and mounts_under(bench.workdir())  # refused: nothing touched
        done = run_release(bench.env.cdist, m.group(1).strip())
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        proc.wait(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if mounts_under(bench.dir):  # the guard is gone: nobody else would release them
            run_release(bench.env.cdist)
    settled(bench, pids)


def test_without_cgroup_v2_the_unit_still_ends_every_descendant(bench):
    """Where cgroup v2 cannot be used (here: a mount namespace without its mount, as in a container
    that does not delegate it) the build says which mechanism holds it, and a SIGKILL of
    ansible-playbook during a compile still ends every process the build started (those outside
    the chroot too) before its mounts are released.  The build's mounts live in that namespace:
    they are read from a process that holds it."""
    bu = buildunit()
    mount = bu.cgroup2_mount()
    holder = subprocess.Popen(["unshare", "--mount", "--propagation", "private", "sh", "-c",
                               ("umount -l %s && " % mount if mount else "") + "echo ready && exec sleep 3600"],
                              stdout=subprocess.PIPE, text=True)
    proc = None
    try:
        assert holder.stdout.readline().strip() == "ready"
        spec = PARTSPEC["F"]
        _compile_gate(bench, True)
        argv, env = bench.env.command(tags=spec["tags"], extra=dict(spec["extra"], gse_build_id="no-cgroup"))
        log = open(os.path.join(bench.dir, "started.log"), "w", encoding="utf-8")
        proc = subprocess.Popen(["nsenter", "--mount", "--target", str(holder.pid), "--"] + argv, cwd=ROOT,
                                env=env, stdout=log, stderr=subprocess.STDOUT)
        assert poll(lambda: _gate_state(bench, spec)() or proc.poll() is not None, 900) and proc.poll() is None, \
            bench.log()
        assert mounts_under(bench.workdir(), holder.pid) and not mounts_under(bench.workdir())
        with open(bench.workdir().rstrip("/") + ".mounts.json", encoding="utf-8") as fh:
            state = json.load(fh)
        assert state["unit"] == "" and state["mechanism"].startswith("process tree"), state
        playbook = [p for p in tree(proc.pid) if any(os.path.basename(a) == "ansible-playbook"
                                                     for a in argv_of(p)[:2])][0]
        pids = set(tree(proc.pid)) | set(bu.rooted_in(bench.workdir()))
        outside = [p for p in pids if p not in bu.rooted_in(bench.workdir()) and p != proc.pid]
        assert outside  # the workers and the module runs: only parentage finds them
        os.kill(playbook, KILL)
        proc.wait(timeout=300)
        settled(bench, pids, holder.pid)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()
        holder.kill()
        holder.wait()


@pytest.mark.parametrize("part", list(MATRIX), ids=["%s-%s" % (p, PARTSPEC[p]["what"].replace(" ", "-"))
                                                   for p in MATRIX])
def test_interrupted_part_ends_whole_and_goes_on(bench, part):
    spec = PARTSPEC[part]
    try:
        for n, (sig, target) in enumerate(MATRIX[part], 1):
            pids, _build_id = interrupt(bench, part, n, sig, target)
            if spec["rerun"].get("gse") and sig == KILL:
                rerun_right_after_kill(bench, spec)
            settled(bench, pids)
        rerun = spec["rerun"]
        if not rerun.get("gse"):
            # K and L go on with the interrupted build's id: its image directory, and for L
            # the version the interrupted publish was staging.
            build_id = spec.get("build_id") or "rerun-%s" % part.lower()
            rc, res = bench.env.run(tags=rerun["tags"], extra=dict(rerun.get("extra", {}), gse_build_id=build_id))
            assert rc == 0, res.failed()
            assert mounts_under(bench.dir) == []
            body = publication_verifies(bench.env)
            if part == "L":
                assert body["version"] == build_id  # the rerun published the interrupted version
                leftovers = [n for n in os.listdir(os.path.join(bench.env.publish, "images")) if n.startswith(".")]
                assert leftovers == []
    finally:
        if spec.get("prepare"):
            spec["prepare"](bench, False)


def rerun_right_after_kill(bench, spec):
    """Right after the SIGKILL, no hand work: gse completes, or refuses naming the one command that
    fixes it (which is then run, as given, and gse completes)."""
    r = bench.gse(spec["parts"], spec["rerun"].get("hooks", ()))
    if r.returncode == 2:
        m = re.search(r"release its mounts with:\s+(ansible-playbook [^\n]+)", r.stderr)
        assert m, r.stderr
        done = run_release(bench.env.cdist, m.group(1).strip())
        assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
        r = bench.gse(spec["parts"], spec["rerun"].get("hooks", ()))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert os.path.isfile(os.path.join(bench.workdir(), "usr/share/slow-build/version"))


def test_plain_route_skipfirst_continues_only_the_emerge_that_failed(bench):
    """A package failing in src_install, one depending on it and an independent one; then the
    documented variable on the plain ansible-playbook route, re-running parts C and F: the
    earlier emerges (eix, the essentials) run their own request, the requested-packages emerge
    alone continues its list without the failed package, and nothing is merged twice."""
    built = bench.env
    packages = ["dev-util/install-fails", "app-misc/needs-install-fails", "dev-util/ccache"]
    extra = {"gse_packages": packages, "gse_build_id": "skipfirst"}
    rc, res = built.run(tags=["gmount", "gpartc", "gpartf"], extra=extra)
    assert rc != 0
    [(name, _host, failed)] = res.failed()
    assert "Emerge the requested packages" in name
    assert failed["failed_package"].startswith("dev-util/install-fails-")
    assert failed["resume"][0].startswith("dev-util/install-fails-")
    assert "intentional install failure" in "\n".join(failed["log_tail"])
    first = [c for n, h, r in res.tasks("chroot") for c in r.get("merged", [])]

    rc, res = built.run(tags=["gmount", "gpartc", "gpartf"], extra=dict(extra, gse_emerge_resume="skipfirst"))
    assert rc == 0, res.failed()

    def ran(task):
        return [r for n, h, r in res.tasks("chroot") if n.split(" : ")[-1] == task and not r.get("skipped")]

    # eix is not installed again while the installed state is the one part J
    # recorded (portage_state); when it does run, it runs its own request.
    assert all(r["resumed"] is False for r in ran("Install eix")), ran("Install eix")
    [r] = ran("Emerge the essential packages")
    assert r["resumed"] is False, r
    [pkg] = ran("Emerge the requested packages")
    assert pkg["resumed"] is True and pkg["skipped_packages"][0].startswith("dev-util/install-fails-")
    second = [c for n, h, r in res.tasks("chroot") for c in r.get("merged", [])]
    merged = first + second
    assert len(merged) == len(set(merged)), merged  # no package merged twice
    assert [c for c in merged if c.startswith("dev-util/ccache-")]
    vdb = os.path.join(built.workdir(), "var/db/pkg")
    assert not os.path.exists(os.path.join(vdb, "dev-util", "install-fails-1.0"))
    assert not os.path.exists(os.path.join(built.workdir(), "var/cache/edb/gse-resume.json"))
    assert mounts_under(built.dir) == []
