"""The same inputs give the same image, through playbooks/build.yml on the fixture.

Two cases:

- a build and a rebuild in the same directory, at another time and under
  another build id: their tarballs must be byte-identical, and the rebuild
  skips the work whose inputs did not change (parts B to J whole, as their
  inputs and the root are what the first build recorded; the pack and its
  signature, the chunk index; part L publishes nothing new).  Then one
  config.d file of part E changes: the parts run again and the change
  reaches the image;
- two builds in two fresh directories (fresh work directory, binary package
  cache and chunk store each), the second started only once the first has
  merged a package, so their merges happen at other seconds: the tarballs and
  the chunk indexes must be byte-identical.  Portage records build times in
  its package database (BUILD_TIME, CONTENTS, the metadata file), useradd the
  day and passlib a random salt in /etc/shadow; part K and part G must keep
  all of them out of the image's bytes.  When they differ, the failure names
  the differing entries, from the tarballs' members and from ``casync mtree``
  of the two indexes.
"""
import hashlib
import json
import os
import shutil
import subprocess
import tarfile
import tempfile
import time

import pytest

from ansible_collections.gse.stateless.plugins.module_utils.mountinfo import mounts_under

from tests.fixture.digest import sha512
from tests.fixture.pytest_plugin import signing_home_copy
from tests.integration.buildrun import BuildEnv

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds chroot and mount: root only")


def tarball(env):
    """The image of the newest build of ``env``."""
    images = os.path.join(env.cdist, "images")
    return os.path.join(images, sorted(os.listdir(images))[-1], "image.tar.zst")


def task(res, name):
    """Results of the task called exactly ``name`` (in its role)."""
    return [r for n, _h, r in res.tasks() if n.split(" : ", 1)[-1] == name and not r.get("skipped")]


def tar_members(path):
    with subprocess.Popen(["zstd", "-dcq", path], stdout=subprocess.PIPE) as proc, \
            tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
        return list(tar)


def members(path):
    """{member name: digest of its header fields, pax records and content}, read from the tarball."""
    out = {}
    with subprocess.Popen(["zstd", "-dcq", path], stdout=subprocess.PIPE) as proc, \
            tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
        for m in tar:
            h = hashlib.sha256(repr((m.mode, m.uid, m.gid, m.mtime, m.type, m.linkname, m.size,
                                     sorted(m.pax_headers.items()))).encode())
            if m.isfile():
                h.update(tar.extractfile(m).read())
            out[m.name] = h.hexdigest()
    return out


def differences(first, second):
    a, b = members(first), members(second)
    return sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))


def member_text(path, name):
    with subprocess.Popen(["zstd", "-dcq", path], stdout=subprocess.PIPE) as proc, \
            tarfile.open(fileobj=proc.stdout, mode="r|") as tar:
        for m in tar:
            if m.name == name:
                return tar.extractfile(m).read().decode()
    return None


def published_versions(env):
    return sorted(os.listdir(os.path.join(env.publish, "images")))


SKIPPED_ROLES = {"chroot_prepare", "portage", "rebuild", "configure", "essentials", "runlevels", "client_health",
                 "kernel", "initramfs", "chroot_cleanup"}
SKIP_MESSAGES = ["Part %s unchanged since the last build" % letter for letter in "BCDEFGHIJ"]


def roles_ran(res):
    """{role: names of its tasks that ran (not skipped)}."""
    out = {}
    for n, _h, r in res.tasks():
        if " : " in n and not r.get("skipped"):
            role, name = n.split(" : ", 1)
            out.setdefault(role, set()).add(name)
    return out


def test_a_rebuild_of_the_same_inputs_gives_the_same_tarball(gse_fixture, fixture_http, signing):
    env = BuildEnv(tempfile.mkdtemp(prefix="gse-repro-", dir="/var/tmp"), gse_fixture, fixture_http, *signing)
    configd = os.path.join(env.dir, "configd")
    os.mkdir(configd)
    with open(os.path.join(configd, "etc.yml"), "w", encoding="utf-8") as f:
        f.write("gse_hostname: lab-one\n")
    env.vars["gse_configd_dirs"] = [configd]
    record = env.workdir() + ".built.json"
    try:
        rc, res = env.run()
        assert rc == 0, res.failed()
        first = tarball(env)
        (pack,) = task(res, "Pack the system")
        assert pack["packed"] and pack["sign_method"] == "digest"
        # The build did write files (later than the stage's date): their times are clamped in the image.
        with open(env.workdir() + ".extracted.json", encoding="utf-8") as f:
            epoch = json.load(f)["source_date_epoch"]
        newest = max(os.lstat(os.path.join(d, n)).st_mtime for d, _s, names in os.walk(env.workdir())
                     for n in names)
        assert newest > epoch
        assert max(m.mtime for m in tar_members(first)) == epoch
        (check,) = task(res, "Compare the build's inputs and root with the last completed build")
        assert not check["unchanged"] and check["reason"] == "no record of a completed build"
        first_build = os.path.basename(os.path.dirname(first))
        with open(record, encoding="utf-8") as f:
            assert json.load(f)["build"] == first_build
        published = published_versions(env)

        rc, res = env.run()
        assert rc == 0, res.failed()
        second = tarball(env)
        # Parts B to J: their inputs and the root are what the first build recorded.
        (check,) = task(res, "Compare the build's inputs and root with the last completed build")
        assert check["unchanged"] and check["built"] == first_build, check
        for name in SKIP_MESSAGES:
            (message,) = task(res, name)
            assert message["msg"].endswith(": unchanged since %s: skipped" % first_build), message
        ran = roles_ran(res)
        for role in SKIPPED_ROLES & set(ran):
            assert ran[role] <= set(SKIP_MESSAGES), (role, ran[role] - set(SKIP_MESSAGES))
        assert res.ran("Mount proc, sys, dev") == []
        # common's checks, the build id and the build's unit: once per build, not once per play.
        assert len(task(res, "Hold the build's processes in one unit, ended as one when its owner exits")) == 1
        assert len(task(res, "Check config.d (%s)" % configd)) == 1
        with open(record, encoding="utf-8") as f:
            assert json.load(f)["build"] == first_build  # the build that made the root
        (publish,) = [r for r in res.ran("Publish the image") if "image" in r]
        assert not publish["changed"] and publish["msg"].startswith("unchanged: "), publish
        assert published_versions(env) == published
        assert second != first  # another build id, another image directory
        assert sha512(second) == sha512(first), "the tarballs differ in: %s" % differences(first, second)
        assert task(res, "Install eix") == [] and task(res, "Build the eix cache") == []
        assert task(res, "Deselect the build-only tools") == []
        assert task(res, "Remove what nothing needs any more (depclean)") == []
        # Nothing in the root changed, nor part K's settings: the first build's image directory (signed
        # tarball, index, report, SHA512SUMS) is taken over whole, nothing is packed, indexed or signed.
        (taken,) = task(res, "Take over the image of the unchanged root")
        assert taken["taken_over"] and taken["src"] == os.path.dirname(first), taken
        assert taken["signer"] == signing[1]  # the key's fingerprint was asked and compared, not its name
        assert task(res, "Pack the system") == [] and task(res, "Make the chunk index of the system") == []
        assert task(res, "Sign the image and its digests") == [] and task(res, "Write SHA512SUMS") == []
        for name in taken["files"]:
            assert os.stat(os.path.join(os.path.dirname(second), name)).st_ino == \
                os.stat(os.path.join(os.path.dirname(first), name)).st_ino, name
        assert {"image.caidx", "SHA512SUMS.asc", "build-report.json", "image.tar.zst.caibx",
                "image.tar.zst.caibx.asc"} <= set(taken["files"])
        assert task(res, "Make the blob index of the tarball") == []
        with open(os.path.join(env.logs, os.path.basename(os.path.dirname(second)), "build-report.json"), encoding="utf-8") as f:
            assert json.load(f)["version"] == first_build  # the build that made the image
        check = subprocess.run(["gpgv", "--keyring", gse_fixture.keyring, second + ".asc", second],
                               capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        assert member_text(second, "./etc/conf.d/hostname") == 'hostname="lab-one"\n'

        # One config.d file of part E changes: everything runs, and the change is in the image.
        with open(os.path.join(configd, "etc.yml"), "w", encoding="utf-8") as f:
            f.write("gse_hostname: lab-two\n")
        rc, res = env.run()
        assert rc == 0, res.failed()
        third = tarball(env)
        (check,) = task(res, "Compare the build's inputs and root with the last completed build")
        assert not check["unchanged"], check
        assert check["reason"] == "inputs changed: file:configd:0, setting:gse_hostname", check
        assert all(task(res, name) == [] for name in SKIP_MESSAGES)
        assert res.ran("Mount proc, sys, dev") and res.ran("Set the hostname")
        assert member_text(third, "./etc/conf.d/hostname") == 'hostname="lab-two"\n'
        assert task(res, "Take over the image of the unchanged root") == []
        (pack,) = task(res, "Pack the system")
        assert pack["packed"], pack
        # Another tarball: another blob index, of its bytes.
        (blob,) = task(res, "Make the blob index of the tarball")
        assert blob["changed"] and blob["tarball_size"] == os.path.getsize(third), blob
        assert sha512(third + ".caibx") != sha512(first + ".caibx")
        with open(record, encoding="utf-8") as f:
            assert json.load(f)["build"] == os.path.basename(os.path.dirname(third))
        assert len(published_versions(env)) == len(published) + 1
    finally:
        env.wait_released()
        assert mounts_under(env.dir) == []
        shutil.rmtree(env.dir)


def index_of(env):
    return os.path.join(os.path.dirname(tarball(env)), "image.caidx")


def mtree(env):
    """{path: casync's mtree line} of the newest build's index, read through its chunk store."""
    out = subprocess.run(["casync", "--store=" + os.path.join(env.cdist, "chunks"), "mtree", index_of(env)],
                         capture_output=True, text=True, check=True).stdout
    return {line.split(" ", 1)[0]: line for line in out.splitlines()}


def index_differences(first, second):
    a, b = mtree(first), mtree(second)
    return sorted(n for n in set(a) | set(b) if a.get(n) != b.get(n))


def merged_a_package(env):
    vdb = os.path.join(env.workdir(), "var/db/pkg")
    try:
        return any(os.listdir(os.path.join(vdb, c)) for c in os.listdir(vdb))
    except OSError:
        return False


def test_two_builds_in_fresh_directories_give_the_same_tarball_and_index(gse_fixture, fixture_http):
    with signing_home_copy(gse_fixture) as home1, signing_home_copy(gse_fixture) as home2:
        envs = [BuildEnv(tempfile.mkdtemp(prefix="gse-repro-fresh-", dir="/var/tmp"), gse_fixture, fixture_http,
                         home, gse_fixture.fingerprint) for home in (home1, home2)]
        procs = []
        try:
            procs.append(envs[0].start())
            # Side by side, but the second starts once the first has merged a
            # package: its merges happen seconds later, so every build time
            # that reached the image would differ.
            deadline = time.monotonic() + 1500
            while not merged_a_package(envs[0]) and procs[0].poll() is None and time.monotonic() < deadline:
                time.sleep(0.5)
            procs.append(envs[1].start())
            for env, proc in zip(envs, procs):
                assert proc.wait(timeout=1800) == 0, open(os.path.join(env.dir, "started.log")).read()[-3000:]
            first, second = tarball(envs[0]), tarball(envs[1])
            assert sha512(first) == sha512(second), "the tarballs differ in: %s" % differences(first, second)
            assert sha512(index_of(envs[0])) == sha512(index_of(envs[1])), \
                "the chunk indexes differ in: %s" % index_differences(*envs)
            # The same tarball, the same blob index of it.
            assert sha512(first + ".caibx") == sha512(second + ".caibx")
            # The index holds the tarball's clamped times, not the root's.
            with open(envs[0].workdir() + ".extracted.json", encoding="utf-8") as f:
                epoch = json.load(f)["source_date_epoch"]
            times = [float(line.rsplit("time=", 1)[1].split()[0]) for line in mtree(envs[0]).values()]
            assert max(times) == epoch
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
            for env in envs:
                env.wait_released()
                assert mounts_under(env.dir) == []
                shutil.rmtree(env.dir)
