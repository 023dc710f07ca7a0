"""mountguard: the owner's liveness and the bounded wait for the mount lock.

Real processes and real flocks throughout: a zombie is a child killed and not
reaped, a held lock is a flock on the state file's directory taken here.
"""
import fcntl
import json
import os
import subprocess
import sys
import time

import pytest

from ansible_collections.gse.stateless.plugins.module_utils import buildunit, mountguard


def wait_exit(proc, seconds=60):
    """Poll ``proc`` until it exits (None when it still runs at the deadline)."""
    deadline = time.monotonic() + seconds
    while proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.1)
    return proc.poll()


@pytest.fixture
def zombie():
    """A child killed and not reaped: its /proc entry and start time stay."""
    child = subprocess.Popen(["sleep", "600"])
    start = buildunit.start_time(child.pid)
    child.kill()
    deadline = time.monotonic() + 30
    while buildunit.alive(child.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert buildunit.start_time(child.pid) == start, "the zombie keeps its start time"
    yield child.pid, start
    child.wait()


@pytest.fixture
def held(tmp_path):
    """The state file's directory locked as a mounting run locks it (another open file: the locks conflict)."""
    fd = os.open(str(tmp_path), os.O_RDONLY | os.O_DIRECTORY)
    fcntl.flock(fd, fcntl.LOCK_EX)
    yield str(tmp_path / "workdir-precomp.mounts.json")
    os.close(fd)


def test_a_zombie_or_recycled_owner_is_gone(zombie):
    pid, start = zombie
    assert not mountguard.owner_alive(pid, start)
    assert mountguard.owner_alive(os.getpid(), buildunit.start_time(os.getpid()))
    assert not mountguard.owner_alive(os.getpid(), buildunit.start_time(os.getpid()) + 1)
    assert not mountguard.owner_alive(os.getpid(), None)


def test_a_guard_whose_owner_is_a_zombie_exits(tmp_path, zombie):
    """Nothing to release (no state file): the guard must see its owner gone and exit."""
    pid, _start = zombie
    guard = mountguard.spawn_guard(sys.executable, str(tmp_path / "workdir-x.mounts.json"), pid)
    deadline = time.monotonic() + 60
    while buildunit.alive(guard) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not buildunit.alive(guard), "the guard still waits for an owner that is a zombie"


def test_the_lock_wait_is_bounded_and_names_the_holder(held):
    with pytest.raises(mountguard.LockTimeout) as err:
        mountguard.locked(held, timeout=0.5, root=held[:-len(".mounts.json")])
    msg = str(err.value)
    assert "by pid %d;" % os.getpid() in msg
    assert "ansible-playbook playbooks/release.yml -e gse_base=precomp -e gse_cdistdir=%s" \
        % os.path.dirname(held) in msg


def test_the_lock_is_taken_once_free(tmp_path):
    fd = mountguard.locked(str(tmp_path / "s.mounts.json"), timeout=0.5)
    try:
        assert mountguard.lock_holders(str(tmp_path)) == [os.getpid()]
    finally:
        os.close(fd)
    assert mountguard.lock_holders(str(tmp_path)) == []


def test_a_guard_that_cannot_get_the_lock_exits_and_says_why(tmp_path, held, monkeypatch):
    """The owner is gone and mounts are recorded, but a run holds the lock
    for ever: the guard gives up after GSE_MOUNT_LOCK_SECONDS, records who
    holds the lock and the release command in the state file, and exits."""
    owner = subprocess.Popen(["sleep", "600"])
    with open(held, "w") as fh:
        json.dump({"mounts": [str(tmp_path / "workdir-precomp" / "proc")], "owner_pid": owner.pid}, fh)
    monkeypatch.setenv("GSE_MOUNT_LOCK_SECONDS", "1")
    guard_pid = mountguard.spawn_guard(sys.executable, held, owner.pid)
    owner.kill()
    owner.wait()
    deadline = time.monotonic() + 60
    while buildunit.alive(guard_pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not buildunit.alive(guard_pid), "the guard still waits for the lock"
    with open(held) as fh:
        state = json.load(fh)
    assert "still held after 1 seconds by pid %d;" % os.getpid() in state["guard_error"]
    assert "playbooks/release.yml" in state["guard_error"]
    assert state["mounts"], "nothing was released without the lock"
