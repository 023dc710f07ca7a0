"""Run a checked plan: $CLOCALLG, the build playbook, the failure loop, the release of mounts."""
import contextlib
import datetime
import os
import signal
import sys
import time

from . import doscripts, failure, handover, layout, livelog, questions, runner, states, unit
from .errors import BuildFailed, Interrupted
from .progress import Watcher, elapsed


class Session:
    """How this gse talks to the person (or the job) that started it."""

    def __init__(self, interactive, quiet=False, verbose=False, read=input):
        self.interactive = interactive
        self.quiet = quiet
        self.verbose = verbose
        self.read = read

    def confirm(self, question):
        try:
            return self.read(question).strip().lower() in ("y", "yes")
        except EOFError:
            return False


class _Signals:
    """SIGINT/SIGTERM/SIGHUP cancel the running playbook; gse then releases the mounts and exits 130."""

    def __init__(self):
        self.caught = None
        self.in_runner = False

    def __enter__(self):
        self.saved = {s: signal.signal(s, self.handle) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
        return self

    def __exit__(self, *exc):
        for s, h in self.saved.items():
            signal.signal(s, h)

    def handle(self, signum, frame):
        first = self.caught is None
        self.caught = signum
        # A second signal must not cut short the ending of the build and the release.
        if not self.in_runner and first:
            raise KeyboardInterrupt

    def cancel(self):
        return self.caught is not None


def new_build_id():
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _tail(result, lines=15):
    try:
        text = result.stdout.read()
    except Exception:  # a runner that never started has no stdout file
        return ""
    return "\n".join(text.splitlines()[-lines:])


def reentry(parts, failed, choice, subpart=None):
    """Tags and extra variables that re-enter the sequence where it failed.

    An emerge is re-entered at its own sub-part (``subpart``, the one running
    when it failed): the sub-parts before it (a second sync, another emerge)
    do not run again, and the resume list, bound to that emerge, is continued
    by it alone.  Any other failure re-enters at its part."""
    hooks = [p.hook for p in parts]
    index = hooks.index(failed.part.hook) if failed is not None and failed.part else 0
    extra = {}
    tags = None
    if failed is not None and failed.is_emerge:
        extra["gse_emerge_resume"] = choice
        subs = [sub.hook for sub in parts[index].subs]
        if subpart in subs:
            tags = subs[subs.index(subpart):] + hooks[index + 1:]
    elif choice == "skipfirst":
        index += 1
    if tags is None:
        tags = hooks[index:]
    if index > hooks.index("gpartb"):
        tags.append("gmount")  # stage B needs the chroot's mounts again
    return tags, extra


def resume_at(parts, subpart):
    """Tags that run the sequence from sub-part ``subpart`` on (part B's mounts again in stage B)."""
    hooks = [p.hook for p in parts]
    index = next(i for i, p in enumerate(parts) if subpart in [s.hook for s in p.subs])
    subs = [s.hook for s in parts[index].subs]
    tags = subs[subs.index(subpart):] + hooks[index + 1:]
    if index > hooks.index("gpartb"):
        tags.append("gmount")
    return tags


def _no_progress(previous, failed):
    """Why a resumed emerge made no progress (the same package failed with the same list), or None."""
    if previous is None or failed is None or not failed.is_emerge:
        return None
    same = (previous.result.get("failed_package"), previous.result.get("resume")) == \
        (failed.result.get("failed_package"), failed.result.get("resume"))
    if not same:
        return None
    return ("gse: no progress: %s failed again and the resume list is unchanged; fix it first "
            "([h] shell) or drop it ([s] skip first)\n" % (failed.result.get("failed_package") or "the same package"))


def release(plan, clocallg):
    """Release every mount under the build's workdir (playbooks/release.yml)."""
    if not os.path.isfile(layout.playbook("release.yml")):
        return True
    ev = {"gse_base": plan.base, "gse_cdistdir": plan.cdistdir,
          "gse_configd_dirs": plan.extravars["gse_configd_dirs"]}
    r = runner.run("release.yml", os.path.join(clocallg, "ansible"), ev, quiet=True,
                   ident="release-%d" % time.time_ns())
    if r.status != "successful":
        print("gse: releasing the mounts under %s failed: see %s" % (plan.workdir, clocallg),
              file=sys.stderr)
        return False
    return True


def prepare(plan, state_name=None):
    """Create $CLOCALLG, write doscripts, save the time state: the first things warp touches."""
    build_id = new_build_id()
    clocallg = os.path.join(plan.log_root, build_id)
    n = 1
    while os.path.exists(clocallg):
        n += 1
        clocallg = os.path.join(plan.log_root, "%s-%d" % (build_id, n))
    build_id = os.path.basename(clocallg)
    os.makedirs(clocallg, mode=0o755)
    plan.extravars["gse_build_id"] = build_id
    if plan.pairs:
        with open(os.path.join(clocallg, "doscripts"), "w", encoding="utf-8") as f:
            f.write(doscripts.render(plan.script_dir, plan.pairs))
    if plan.snapshot is not None:
        dirs = states.materialize(plan.snapshot, os.path.join(clocallg, "config.d"))
        plan.extravars["gse_configd_dirs"] = dirs
    # config.d as gse read and checked it: the playbook loads this instead of reading it again.
    plan.extravars["gse_configd_file"] = handover.write(plan.snapshot if plan.snapshot is not None else plan.config)
    return clocallg


def run(plan, session, clocallg):
    """Run build.yml until it succeeds or the person gives up; mounts are released at the end."""
    parts = layout.hooks().PARTS
    start = time.monotonic()
    tags, extra = None, {}
    previous = None  # the failure before this attempt: a resume that changed nothing says so
    # emerge's output, live: the module appends it there, a thread prints it.
    live = {} if session.quiet else {"gse_live_log": livelog.CHROOT_PATH}
    ok = False
    # Everything this run starts is in the build's unit: on SIGINT/SIGTERM gse
    # ends all of it before the release; when gse dies, the guard does.
    with _Signals() as sig, unit.Unit(plan) as build_unit:
        try:
            for attempt in range(1, 1000):
                watcher = Watcher(parts, session.quiet, start=start)
                sig.in_runner = True
                with _live(plan, session):
                    result = runner.run("build.yml", os.path.join(clocallg, "ansible"),
                                        dict(plan.extravars, **live, **extra), tags=tags,
                                        skip_tags=plan.skipped, verbose=session.verbose,
                                        quiet=session.quiet, event_handler=watcher,
                                        cancel=sig.cancel, ident="build-%d" % attempt)
                sig.in_runner = False
                if sig.caught:
                    raise KeyboardInterrupt
                if result.status != "successful" and questions.is_handoff(watcher.failure):
                    # Part H stopped for the kernel configuration (gkconfig): the
                    # person configures it in the chroot, the run goes on at gker.
                    if not session.interactive:
                        raise BuildFailed("part H waits for make menuconfig (gse_kernel_menuconfig) and no "
                                          "person is at the terminal; the report is in %s" % clocallg)
                    failure.shell(plan.workdir, True, command=questions.menuconfig_argv(plan),
                                  leave="save the kernel configuration and leave menuconfig: gker builds it")
                    tags, extra = resume_at(parts, "gker"), dict(extra, **{questions.CONFIGURED: True})
                    extra.pop("gse_emerge_resume", None)
                    continue
                if result.status == "successful":
                    ok = True
                    if session.quiet:
                        print("Build %s finished (%s)" % (plan.extravars["gse_build_id"],
                                                          elapsed(time.monotonic() - start)))
                    return 0
                text = failure.report(watcher.failure, _tail(result))
                text += _no_progress(previous, watcher.failure) or ""
                previous = watcher.failure
                sys.stderr.write(text)
                sys.stderr.flush()
                with open(os.path.join(clocallg, "failure-%d.txt" % attempt), "w",
                          encoding="utf-8") as f:
                    f.write(text)
                if not session.interactive:
                    raise BuildFailed("the build failed; the report is in %s" % clocallg)
                choice = _choose(plan, watcher.failure, session)
                if choice == "abort":
                    raise BuildFailed("aborted; the report is in %s" % clocallg)
                tags, more = reentry(parts, watcher.failure, choice, watcher.current)
                # The kernel configured by hand stays configured for the rest of the run.
                extra = dict({k: v for k, v in extra.items() if k == questions.CONFIGURED}, **more)
        except KeyboardInterrupt:
            raise Interrupted("interrupted; the build ended and its mounts released") from None
        finally:
            sig.in_runner = False
            left = build_unit.end()
            if left:
                print("gse: processes of the build would not end: %s" % " ".join(map(str, left)),
                      file=sys.stderr)
            released = release(plan, clocallg)
            if ok and not released:
                raise BuildFailed("the build finished but its mounts could not be released")
    raise BuildFailed("gave up after too many attempts")


def _live(plan, session):
    """Print the live log while a playbook runs, unless quiet."""
    if session.quiet:
        return contextlib.nullcontext()
    return livelog.LiveTail(livelog.host_path(plan.workdir))


def _choose(plan, failed, session):
    while True:
        choice = failure.ask(failed, read=session.read)
        if choice != "shell":
            return choice
        in_chroot = bool(failed and failed.part and failed.part.chroot)
        failure.shell(plan.workdir, in_chroot)
