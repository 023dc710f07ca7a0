"""What makes a rebuild cheap, through playbooks/build.yml on the fixture.

- ccache (--ccache=on): dev-util/ccache (Debian's real ccache, repackaged by the
  fixture) is installed before the first compile, its directory lives on the
  build host, and a second build of a C package hits it (ccache's own stats).
- distcc (--distcc=on): sys-devel/distcc (Debian's real distcc) is installed the
  same way and a distccd on loopback, run by this test on the build host,
  receives the compile jobs (its log).  --distcc=pump is refused with the reason.
- The binary package cache: a second build with one ebuild bumped compiles only
  that package and merges the rest from binary packages (Portage's emerge.log).

Each build starts from a fresh work directory (the stage3 fetched, verified
and extracted again) and runs parts A-C and the user packages (gpkg), and
part J where it matters: the parts that compile.
"""
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from ansible_collections.gse.stateless.plugins.module_utils.mountinfo import mounts_under

from tests.integration.buildrun import BuildEnv

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds chroot and mount: root only")

COMPILE_TAGS = ["gparta", "gpartb", "gpartc", "gpkg"]


@pytest.fixture
def new_env(gse_fixture, fixture_http, signing):
    """A factory of fresh build environments, all removed after the test."""
    made = []

    def make(**variables):
        env = BuildEnv(tempfile.mkdtemp(prefix="gse-build-", dir="/var/tmp"), gse_fixture, fixture_http, *signing)
        env.vars.update(variables)
        made.append(env)
        return env
    yield make
    for env in made:
        env.wait_released()
        assert mounts_under(env.dir) == [], "mounts left under the build directories"
        shutil.rmtree(env.dir)


def ccache_stats(directory):
    """ccache's counters for ``directory`` (the build host's ccache reads the chroot's cache)."""
    out = subprocess.run(["ccache", "--print-stats"], env=dict(os.environ, CCACHE_DIR=directory),
                         capture_output=True, text=True, check=True).stdout
    stats = {}
    for line in out.splitlines():
        key, _, value = line.partition("\t")
        if value.isdigit():
            stats[key] = int(value)
    return stats


def make_conf(env):
    with open(os.path.join(env.workdir(), "etc/portage/make.conf")) as f:
        return f.read()


def features(env):
    lines = [line for line in make_conf(env).splitlines() if line.startswith("FEATURES=")]
    return lines[0].split("=", 1)[1].strip('"').split() if lines else []


def run_hello_c(env):
    # The fixture is Debian underneath: its binaries run on this host.
    return subprocess.run([os.path.join(env.workdir(), "usr/bin/hello-c")], capture_output=True, text=True,
                          check=True).stdout


def test_second_build_of_a_c_package_hits_ccache(new_env, tmp_path):
    cache = str(tmp_path / "ccache")
    variables = dict(gse_ccache="on", gse_ccache_host_dir=cache, gse_packages=["app-misc/hello-c"],
                     gse_binpkg_dir="")   # no binary packages: the second build must compile again
    first = new_env(**variables)
    rc, res = first.run(tags=COMPILE_TAGS)
    assert rc == 0, res.failed()
    # Installed before the first compile, and named in FEATURES only then.
    installed = res.ran("Install distcc and ccache as requested")[0]
    assert [c for c in installed["merged"] if c.startswith("dev-util/ccache-")], installed
    assert "ccache" in features(first)
    assert os.path.isfile(os.path.join(first.workdir(), "usr/bin/ccache"))
    assert run_hello_c(first) == "Hello from C! (hello-c 1.0)\n"
    after_first = ccache_stats(cache)
    assert after_first.get("cache_miss", 0) >= 1, after_first

    # A new chroot from the same stage3: only the build host's cache is shared.
    second = new_env(**variables)
    rc, res = second.run(tags=COMPILE_TAGS + ["gpartj"])
    assert rc == 0, res.failed()
    assert run_hello_c(second) == "Hello from C! (hello-c 1.0)\n"
    after_second = ccache_stats(cache)
    hits = lambda s: s.get("direct_cache_hit", 0) + s.get("preprocessed_cache_hit", 0)  # noqa: E731
    assert hits(after_second) >= hits(after_first) + 1, (after_first, after_second)

    # Part J: deselected, removed, and gone from FEATURES with it.
    assert not os.path.exists(os.path.join(second.workdir(), "usr/bin/ccache"))
    assert "ccache" not in features(second)


def test_ccache_off_never_installs_it_nor_names_it(new_env):
    env = new_env(gse_packages=["app-misc/hello-c"], gse_binpkg_dir="")
    rc, res = env.run(tags=COMPILE_TAGS)
    assert rc == 0, res.failed()
    assert not os.path.exists(os.path.join(env.workdir(), "usr/bin/ccache"))
    assert not os.path.exists(os.path.join(env.workdir(), "usr/bin/distcc"))
    assert "ccache" not in features(env) and "distcc" not in features(env)
    assert run_hello_c(env) == "Hello from C! (hello-c 1.0)\n"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def distccd(tmp_path):
    """Debian's distccd on 127.0.0.1, accepting loopback only; yields (port, log path)."""
    exe = shutil.which("distccd") or "/usr/bin/distccd"
    if not os.access(exe, os.X_OK):
        pytest.skip("distccd missing (scripts/bootstrap installs Debian's distcc)")
    port = free_port()
    log = tmp_path / "distccd.log"
    with open(log, "w") as out:
        proc = subprocess.Popen([exe, "--daemon", "--no-detach", "--listen", "127.0.0.1", "--port", str(port),
                                 "--allow", "127.0.0.1", "--jobs", "2", "--log-stderr", "--log-level", "info"],
                                stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError("distccd did not start:\n" + log.read_text())
                time.sleep(0.1)
        yield port, log
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def test_distcc_sends_the_compile_to_a_loopback_distccd(new_env, distccd):
    port, log = distccd
    # Simulated: Gentoo's sys-devel/distcc carries a SOCKSv5 patch through
    # which it leaves Portage's network sandbox (DISTCC_SOCKS_PROXY, set by
    # Portage with FEATURES=distcc); Debian's distcc has not got it, so this
    # build turns network-sandbox off, as the fixture's make.conf would.
    fixture_features = "-sandbox -usersandbox -news -merge-wait -network-sandbox"
    env = new_env(gse_distcc="on", gse_distcc_hosts=["127.0.0.1:%d/2" % port], gse_packages=["app-misc/hello-c"],
                  gse_binpkg_dir="", gse_make_conf={"MAKEOPTS": "-j2", "FEATURES": fixture_features})
    rc, res = env.run(tags=COMPILE_TAGS)
    assert rc == 0, res.failed()
    assert "distcc" in features(env)
    with open(os.path.join(env.workdir(), "etc/distcc/hosts")) as f:
        assert f.read() == "127.0.0.1:%d/2\n" % port
    assert run_hello_c(env) == "Hello from C! (hello-c 1.0)\n"
    # distccd's summary line of each job it ran: the compile of hello-c.c.
    done = [line for line in log.read_text().splitlines() if "COMPILE_OK" in line]
    assert any("hello-c.c" in line for line in done), log.read_text()


def test_distcc_pump_is_refused_with_the_reason(new_env):
    env = new_env()
    rc, res = env.run(extra={"gse_distcc": "pump"})
    assert rc != 0
    msgs = " ".join(r.get("msg", "") for _n, _h, r in res.failed())
    assert "--distcc=pump is refused" in msgs and "distcc-pump" in msgs and "no longer installs pump" in msgs
    assert not os.path.exists(env.cdist), "refused, yet the build touched $CDISTDIR"


def emerge_log(env, since):
    """(compiled, merged from binary packages): cpvs, from the chroot's /var/log/emerge.log.

    Only the entries from ``since`` (epoch seconds) on: the log starts with
    the stage3's own history (the fixture merged @system).
    """
    compiled, binary = set(), set()
    with open(os.path.join(env.workdir(), "var/log/emerge.log")) as f:
        for line in f:
            stamp, _, line = line.partition(":")
            if not stamp.isdigit() or int(stamp) < since:
                continue
            for marker, found in ((") Compiling/", compiled), (") Merging Binary (", binary)):
                if marker in line:
                    found.add(line.split("(")[-1].split("::")[0])
    return compiled, binary


def test_rebuild_with_one_ebuild_bumped_compiles_only_that_package(new_env, gse_fixture, tmp_path):
    repos = tmp_path / "repos"
    shutil.copytree(gse_fixture.repo, repos / "gse-test", symlinks=True)
    packages = ["app-misc/hello-lab", "app-misc/hello-c", "app-misc/lab-tools"]
    variables = dict(gse_repos_dir=str(repos), gse_binpkg_dir=str(tmp_path / "binpkgs"), gse_packages=packages)

    first = new_env(**variables)
    since = int(time.time())
    rc, res = first.run(tags=COMPILE_TAGS)
    assert rc == 0, res.failed()
    compiled, binary = emerge_log(first, since)
    assert {"app-misc/hello-lab-1.0", "app-misc/hello-c-1.0", "app-misc/lab-tools-2.1"} <= compiled
    assert binary == set()
    assert "buildpkg" in features(first) and "--usepkg" in make_conf(first)

    bumped = repos / "gse-test" / "app-misc" / "hello-lab"
    shutil.copy(bumped / "hello-lab-1.0.ebuild", bumped / "hello-lab-1.1.ebuild")
    second = new_env(**variables)
    since = int(time.time())
    rc, res = second.run(tags=COMPILE_TAGS)
    assert rc == 0, res.failed()
    compiled, binary = emerge_log(second, since)
    with open(os.path.join(first.workdir(), "var/log/emerge.log")) as f1, \
            open(os.path.join(second.workdir(), "var/log/emerge.log")) as f2:
        logs = "first build:\n%s\nsecond build:\n%s" % (f1.read(), f2.read())
    assert compiled == {"app-misc/hello-lab-1.1"}, logs
    assert {"app-misc/hello-c-1.0", "app-misc/lab-tools-2.1"} <= binary
    assert os.path.isdir(os.path.join(second.workdir(), "var/db/pkg/app-misc/hello-lab-1.1"))
