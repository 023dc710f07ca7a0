"""buildunit: where the cgroup v2 hierarchy is, and how the build says what holds it."""
from ansible_collections.gse.stateless.plugins.module_utils import buildunit

LINE = "{id} 31 0:{id} / {target} rw,relatime - {fstype} {fstype} rw\n"


def mountinfo(tmp_path, mounts):
    path = tmp_path / "mountinfo"
    path.write_text("".join(LINE.format(id=30 + n, target=t, fstype=f) for n, (t, f) in enumerate(mounts)))
    return str(path)


def test_the_cgroup2_mount_is_the_shortest_never_one_bound_into_a_chroot(tmp_path):
    info = mountinfo(tmp_path, [("/var/tmp/gse/workdir-precomp/sys/fs/cgroup/unified", "cgroup2"),
                                ("/sys/fs/cgroup/memory", "cgroup"), ("/sys/fs/cgroup/unified", "cgroup2")])
    assert buildunit.cgroup2_mount(info) == "/sys/fs/cgroup/unified"
    assert buildunit.cgroup2_mount(mountinfo(tmp_path, [("/sys/fs/cgroup/memory", "cgroup")])) is None
    # Where the system's own mount is gone, another build's copy in its chroot is not taken.
    assert buildunit.cgroup2_mount(mountinfo(tmp_path, [
        ("/var/tmp/gse-x/cdist/workdir-precomp/sys/fs/cgroup/unified", "cgroup2")])) is None


def test_the_fallback_is_named_with_its_reason(monkeypatch, tmp_path):
    monkeypatch.setattr(buildunit, "cgroup2_mount", lambda *a: None)
    said = buildunit.mechanism(None)
    assert said.startswith("process tree (cgroup v2 is not mounted)")
    assert buildunit.mechanism("/sys/fs/cgroup/gse.0123") == "cgroup v2 /sys/fs/cgroup/gse.0123"
    monkeypatch.setattr(buildunit.os, "access", lambda path, mode: False)
    assert buildunit.why_no_cgroup(str(tmp_path)) == "cgroup v2 at %s is read-only or not delegated" % tmp_path
