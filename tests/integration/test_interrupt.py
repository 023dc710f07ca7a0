"""A build interrupted or killed in the middle of a compile leaves nothing running and nothing
mounted, and the next run goes on: real fixture builds through playbooks/build.yml.

One complete build publishes an image first; then each case starts part F with a
package whose compile waits (dev-util/slow-build writes /tmp/gse-test-compiling in
the chroot, then waits), sends the signal to ansible-playbook while it compiles, and
checks, polling with a deadline: no process of the build left (its unit is empty and
no process has its root in the chroot), no mount under the work directory, the host's
/dev intact, the publication tree still verifying, and a rerun completing.
"""
import os
import shutil
import signal
import stat
import subprocess
import tempfile
import time

import pytest

from .buildrun import BuildEnv

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds a chroot and mounts: root only")


def buildunit():
    from ansible_collections.gse.stateless.plugins.module_utils import buildunit as bu
    return bu


def mounts_under(path):
    from ansible_collections.gse.stateless.plugins.module_utils.mountinfo import mounts_under as mu
    return mu(path)


def poll(check, seconds):
    """check() until it is true or the deadline passes; its last value."""
    deadline = time.monotonic() + seconds
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.2)


@pytest.fixture(scope="module")
def built(gse_fixture, fixture_http):
    home = tempfile.mkdtemp(prefix="gse-gnupg-")
    shutil.rmtree(home)
    shutil.copytree(gse_fixture.gnupg_home, home, ignore=shutil.ignore_patterns("S.*", "*.lock"))
    env = BuildEnv(tempfile.mkdtemp(prefix="gse-int-", dir="/var/tmp"), gse_fixture, fixture_http,
                   home, gse_fixture.fingerprint)
    rc, res = env.run(extra={"gse_build_id": "complete"})
    assert rc == 0, res.failed()
    yield env
    subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], capture_output=True)
    shutil.rmtree(home, ignore_errors=True)
    env.wait_released()
    assert mounts_under(env.dir) == [], "mounts left under the build directories"
    shutil.rmtree(env.dir)


def publication_verifies(env):
    keyring = os.path.join(env.cdist, "publication-keyring.gpg")
    p = subprocess.run(["gpgv", "--keyring", keyring, "--output", "-", "version.txt"],
                       cwd=env.publish, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    body = dict(line.split(": ", 1) for line in p.stdout.splitlines() if ": " in line)
    image = os.path.dirname(os.path.join(env.publish, body["path"]))
    p = subprocess.run(["sha512sum", "-c", "SHA512SUMS"], cwd=image, capture_output=True, text=True)
    assert p.returncode == 0 and "image.tar.zst: OK" in p.stdout, p.stdout + p.stderr


def host_dev_intact():
    return stat.S_ISCHR(os.stat("/dev/null").st_mode) and os.path.exists("/dev/zero") \
        and (os.path.ismount("/dev/pts") or not os.path.exists("/dev/pts/ptmx"))


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGTERM, signal.SIGINT], ids=["KILL", "TERM", "INT"])
def test_ansible_playbook_interrupted_during_a_compile(built, sig):
    workdir = built.workdir()
    marker = os.path.join(workdir, "tmp", "gse-test-compiling")
    if os.path.exists(marker):
        os.unlink(marker)
    p = built.start(tags=["gmount", "gpartf"],
                    extra={"gse_packages": ["dev-util/slow-build"], "gse_build_id": "int-%d" % sig})
    try:
        assert poll(lambda: os.path.exists(marker) or p.poll() is not None, 600) and p.poll() is None, \
            open(os.path.join(built.dir, "started.log")).read()[-3000:]
        compiling = buildunit().rooted_in(workdir)
        assert compiling  # emerge and the ebuild's shell run inside the chroot
        p.send_signal(sig)
        p.wait(timeout=300)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    bu = buildunit()
    assert poll(lambda: not bu.members(workdir), 120), sorted(bu.members(workdir))
    assert poll(lambda: not mounts_under(built.dir), 120), mounts_under(built.dir)
    assert host_dev_intact()
    publication_verifies(built)
    # The rerun, with no hand work in between.
    rc, res = built.run(tags=["gmount", "gpartf"], extra={"gse_build_id": "rerun-%d" % sig})
    assert rc == 0, res.failed()
    assert mounts_under(built.dir) == []


def test_plain_route_skipfirst_continues_only_the_emerge_that_failed(built):
    """A package failing in src_install, one depending on it and an independent one; then the
    documented variable on the plain ansible-playbook route, re-running parts C and F: the
    earlier emerges (eix, the essentials) run their own request, the requested-packages emerge
    alone continues its list without the failed package, and nothing is merged twice."""
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
