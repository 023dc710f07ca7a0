"""gse.stateless.chroot_mounts: mounts are made, are idempotent, and are released
explicitly, when the owning ansible-playbook exits, and when it is killed."""
import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ANSIBLE_PLAYBOOK = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")


def mounts_under(path):
    from ansible_collections.gse.stateless.plugins.module_utils.mountinfo import mounts_under as mu
    return mu(path)


def wait_released(path, seconds=60):
    # A bounded wait for the guard: it polls the owner every 0.2 s, but on a
    # busy machine its interpreter alone can take seconds to start.
    deadline = time.monotonic() + seconds
    while mounts_under(path) and time.monotonic() < deadline:
        time.sleep(0.1)
    return mounts_under(path)


def wait_file_gone(path, seconds=60):
    # The guard unmounts first and removes the state file after: a test that
    # saw the mounts gone waits (bounded) for the file too.
    deadline = time.monotonic() + seconds
    while os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not os.path.exists(path)


def playbook(tmp_path, root, tasks, env=None):
    pb = tmp_path / "pb.yml"
    pb.write_text(textwrap.dedent("""\
        - hosts: localhost
          connection: local
          gather_facts: false
          tasks:
        """) + textwrap.indent(textwrap.dedent(tasks), "    "))
    e = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"),
             ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"))
    e.update(env or {})
    return subprocess.Popen([ANSIBLE_PLAYBOOK, "-i", "localhost,", str(pb), "-e", "root=%s" % root,
                             "-e", "ansible_python_interpreter=%s" % sys.executable],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=e, cwd=ROOT, text=True)


@pytest.fixture
def root(tmp_path):
    r = tmp_path / "chroot"
    for d in ("proc", "sys", "dev", "run", "var/db/repos", "var/cache/distfiles"):
        (r / d).mkdir(parents=True)
    (tmp_path / "repos" / "gse-test").mkdir(parents=True)
    (tmp_path / "distfiles").mkdir()
    yield r
    # Teardown never deletes while anything is mounted.
    for m in mounts_under(str(r)):
        subprocess.call(["umount", "-R", "-l", m])
    assert not mounts_under(str(r))


MOUNT = """\
- name: mount
  gse.stateless.chroot_mounts:
    root: "{{ root }}"
    repos_dir: "{{ root }}/../repos"
    distfiles_dir: "{{ root }}/../distfiles"
  register: m1
- name: mount again
  gse.stateless.chroot_mounts:
    root: "{{ root }}"
    repos_dir: "{{ root }}/../repos"
    distfiles_dir: "{{ root }}/../distfiles"
  register: m2
- name: report
  ansible.builtin.copy:
    content: "{{ {'first': m1.changed, 'second': m2.changed, 'mounted': m1.mounted} | to_json }}"
    dest: "{{ root }}/../result.json"
    mode: "0600"
"""


def result_of(tmp_path):
    return json.loads((tmp_path / "result.json").read_text())


def test_mount_is_idempotent_and_released_explicitly(tmp_path, root):
    p = playbook(tmp_path, root, MOUNT + """\
- name: release
  gse.stateless.chroot_mounts:
    root: "{{ root }}"
    state: unmounted
  register: u1
- name: release again
  gse.stateless.chroot_mounts:
    root: "{{ root }}"
    state: unmounted
  register: u2
- name: check
  ansible.builtin.assert:
    that: [u1 is changed, u2 is not changed, u1.unmounted | length == 6]
""")
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0, out
    res = result_of(tmp_path)
    assert res["first"] is True and res["second"] is False
    assert sorted(os.path.relpath(m, root) for m in res["mounted"]) == sorted(
        ["proc", "sys", "dev", "run", "var/db/repos", "var/cache/distfiles"])
    assert mounts_under(str(root)) == []
    assert not os.path.exists(str(root) + ".mounts.json")


def test_repos_are_read_only_and_dev_is_a_slave(tmp_path, root):
    p = playbook(tmp_path, root, MOUNT + """\
- name: try to write into the repositories
  ansible.builtin.command: touch {{ root }}/var/db/repos/x
  register: w
  failed_when: w.rc == 0
- name: pause so the test can look
  ansible.builtin.command: cat {{ root }}/../go
""")
    (tmp_path / "go").write_text("")
    out, _ = p.communicate(timeout=300)
    assert p.returncode == 0, out
    # Released by the guard once ansible-playbook exited.
    assert wait_released(str(root)) == []
    # The host's /dev/pts survived the release of the chroot's rbind.
    assert os.path.ismount("/dev/pts") or not os.path.exists("/dev/pts/ptmx")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL])
def test_released_when_the_build_is_interrupted(tmp_path, root, sig):
    p = playbook(tmp_path, root, MOUNT + """\
- name: a long part
  ansible.builtin.command: sleep 600
""")
    deadline = time.monotonic() + 120
    while len(mounts_under(str(root))) < 6 and time.monotonic() < deadline:
        time.sleep(0.1)
    assert len(mounts_under(str(root))) >= 6
    time.sleep(0.5)
    p.send_signal(sig)
    try:
        p.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        p.kill()
        p.communicate()
    assert wait_released(str(root)) == []


def test_released_when_the_build_fails(tmp_path, root):
    p = playbook(tmp_path, root, MOUNT + """\
- name: a failing part
  ansible.builtin.command: "false"
""")
    out, _ = p.communicate(timeout=300)
    assert p.returncode != 0
    assert wait_released(str(root)) == []


def test_refuses_symlinked_destination(tmp_path, root):
    os.rmdir(root / "run")
    os.symlink("/run", root / "run")
    p = playbook(tmp_path, root, MOUNT)
    out, _ = p.communicate(timeout=300)
    assert p.returncode != 0
    assert "symlink" in out
    assert wait_released(str(root)) == []


def test_guard_waits_for_a_run_still_mounting(tmp_path, root):
    """The owner dies while a chroot_mounts run is still mounting (the run is
    a process of its own and goes on): the guard waits for the run's lock and
    then releases everything, including what the run mounted after the owner
    died."""
    from ansible_collections.gse.stateless.plugins.module_utils import mountguard
    state_file = str(root) + ".mounts.json"
    owner = subprocess.Popen(["sleep", "600"])
    with open(state_file, "w") as fh:
        json.dump({"mounts": [], "owner_pid": owner.pid}, fh)
    lock = mountguard.locked(state_file)  # as a mounting run holds it
    try:
        mountguard.spawn_guard(sys.executable, state_file, owner.pid)
        owner.kill()
        owner.wait()
        # Give the guard time to see its owner gone (it polls every 0.2 s).
        # Not a correctness wait: a guard that starts later still finds the
        # lock held or the mount recorded, and the assertions hold either way.
        time.sleep(2)
        target = str(root / "proc")
        with open(state_file, "w") as fh:
            json.dump({"mounts": [target], "owner_pid": owner.pid}, fh)
        subprocess.run(["mount", "-t", "proc", "proc", target], check=True)
    finally:
        os.close(lock)
    assert wait_released(str(root)) == []
    assert wait_file_gone(state_file)


# --- the documented recovery: exactly the command README and docs/troubleshooting.md give ---

RELEASE = ["ansible-playbook", "playbooks/release.yml", "-e", "gse_base=precomp"]


def unit_procs(root):
    from ansible_collections.gse.stateless.plugins.module_utils import buildunit
    unit = buildunit.unit_path(str(root))
    return buildunit.procs(unit) if unit and os.path.isdir(unit) else []


def wait_gone(pid, seconds=60):
    """Poll until ``pid`` no longer runs (a zombie that pid 1 does not reap counts as gone)."""
    from ansible_collections.gse.stateless.plugins.module_utils.buildunit import alive
    deadline = time.monotonic() + seconds
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return not alive(pid)


def run_documented_release(tmp_path, cdist):
    """The documented command, from the checkout, as an admin types it; config.d names $CDISTDIR."""
    configd = tmp_path / "config.d"
    configd.mkdir(exist_ok=True)
    (configd / "paths.yml").write_text("gse_cdistdir: %s\n" % cdist)
    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(GSE_CONFIGD=str(configd), PATH=os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", ""))
    return subprocess.run(RELEASE, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)


@pytest.fixture
def workdir(tmp_path):
    """A chroot at the place of a build's work directory ($CDISTDIR/workdir-precomp)."""
    cdist = tmp_path / "cdist"
    r = cdist / "workdir-precomp"
    for d in ("proc", "sys", "dev", "run", "var/db/repos", "var/cache/distfiles"):
        (r / d).mkdir(parents=True)
    (tmp_path / "repos" / "gse-test").mkdir(parents=True)
    (tmp_path / "distfiles").mkdir()
    yield r
    for m in mounts_under(str(r)):
        subprocess.call(["umount", "-R", "-l", m])
    assert not mounts_under(str(r))


@pytest.mark.parametrize("guard, state_file, owner", [
    ("gone", "present", "dead"),
    ("gone", "missing", "dead"),
    ("gone", "present", "alive"),
    ("alive", "present", "alive"),
])
def test_documented_release_command_releases_whatever_the_state(tmp_path, workdir, guard, state_file, owner):
    root = workdir
    p = playbook(tmp_path, root, MOUNT.replace("{{ root }}/../repos", "{{ root }}/../../repos")
                 .replace("{{ root }}/../distfiles", "{{ root }}/../../distfiles")
                 .replace("{{ root }}/../result.json", "{{ root }}/../../result.json") + """\
- name: a long part
  ansible.builtin.command: sleep 600
""")
    try:
        deadline = time.monotonic() + 120
        while len(mounts_under(str(root))) < 6 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert len(mounts_under(str(root))) >= 6
        state_path = str(root) + ".mounts.json"
        with open(state_path) as fh:
            state = json.load(fh)
        if guard == "gone":
            os.kill(state["guard_pid"], signal.SIGKILL)
            assert wait_gone(state["guard_pid"])
        if state_file == "missing":
            os.unlink(state_path)
        # The mounts are up before the next task ("a long part") has started:
        # on a busy machine the unit may hold only ansible-playbook for a while.
        from ansible_collections.gse.stateless.plugins.module_utils.buildunit import cgroup2_mount
        deadline = time.monotonic() + 120
        while (cgroup2_mount() is not None and not set(unit_procs(root)) - {p.pid}
               and time.monotonic() < deadline):
            time.sleep(0.1)
        build = set(unit_procs(root)) - {p.pid}
        if owner == "dead":
            p.kill()
            p.wait()
            assert len(mounts_under(str(root))) >= 6  # nobody left to release them
        done = run_documented_release(tmp_path, str(root.parent))
        assert done.returncode == 0, done.stdout + done.stderr
        assert "no hosts matched" not in done.stdout + done.stderr
        assert mounts_under(str(root)) == []
        # Every process of the build ended (the owner too, when it was alive), the host's /dev intact.
        p.communicate(timeout=60)
        assert build or cgroup2_mount() is None  # where cgroup v2 exists, the build ran in its unit
        assert all(wait_gone(pid) for pid in build)
        assert unit_procs(root) == []
        assert os.path.exists("/dev/null") and (os.path.ismount("/dev/pts") or not os.path.exists("/dev/pts/ptmx"))
        assert not os.path.exists(state_path)
    finally:
        if p.poll() is None:
            p.kill()
        p.communicate()
