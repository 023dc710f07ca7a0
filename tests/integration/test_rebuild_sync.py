"""A rebuild with a sync configured skips what follows the sync when the sync brought nothing new.

The repositories are a copy of the fixture's (a sync binds them writable),
plus a repository ``gse-sync`` that ``emerge --sync`` fetches with rsync
from an rsync daemon on loopback (the chroot shares the host's network);
its repos.conf enters the chroot through inject-custom, so it is one of the
build's inputs and the same in every build.  Three builds in one directory:

- the first runs everything (no record) and records the repositories'
  listing as the build left them;
- the second: part A finds everything but the repositories unchanged and
  lets parts B and C run up to the sync; the source did not change, so the
  rest of parts C to J is skipped with the messages of an unchanged build,
  part K releases the mounts and takes the image over, part L publishes
  nothing new;
- then a new ebuild appears at the source (and its timestamp, as a mirror's
  moves): the third build's sync brings it, and everything after the sync
  runs.

What this cannot show: a real Gentoo mirror (its size, its metadata cache);
the sync is Portage's own rsync sync against a real rsync daemon.
"""
import json
import os
import shutil
import socket
import subprocess
import tempfile
import time

import pytest

from ansible_collections.gse.stateless.plugins.module_utils import build_inputs
from ansible_collections.gse.stateless.plugins.module_utils.mountinfo import mounts_under

from tests.integration.buildrun import BuildEnv
from tests.integration.test_reproducible import SKIP_MESSAGES, published_versions, tarball, task

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds chroot and mount: root only")

CHECK = "Compare the build's inputs and root with the last completed build"
SYNCED = "Compare the synced repositories with the last completed build's"
AFTER_SYNC = ["Part %s unchanged since the last build" % letter for letter in "CDEFGHIJ"]


def _write(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)


def _free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _serve(d, src):
    """An rsync daemon on loopback serving ``src`` as module gse-sync; (process, port)."""
    port = _free_port()
    conf = os.path.join(d, "rsyncd.conf")
    _write(conf, "use chroot = no\nuid = root\ngid = root\npid file = %s/rsyncd.pid\n"
                 "[gse-sync]\npath = %s\nread only = yes\n" % (d, src))
    proc = subprocess.Popen(["rsync", "--daemon", "--no-detach", "--address=127.0.0.1", "--port=%d" % port,
                             "--config=" + conf, "--log-file=" + os.path.join(d, "rsyncd.log")])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc, port
        except OSError:
            assert proc.poll() is None, "rsync --daemon ended"
            time.sleep(0.2)
    proc.kill()
    raise AssertionError("rsync --daemon does not listen on %d" % port)


def _source(src, stamp):
    _write(os.path.join(src, "profiles/repo_name"), "gse-sync\n")
    _write(os.path.join(src, "metadata/layout.conf"), "masters = gse-test\nthin-manifests = true\n")
    # What Portage's rsync sync reads first, to tell whether the source changed.
    _write(os.path.join(src, "metadata/timestamp.chk"), stamp + "\n")
    _write(os.path.join(src, "app-misc/synced/synced-1.ebuild"),
           'EAPI=8\nDESCRIPTION="synced"\nSLOT="0"\nKEYWORDS="amd64"\n')


def test_a_sync_that_brings_nothing_skips_the_parts_after_it(gse_fixture, fixture_http, signing):
    d = tempfile.mkdtemp(prefix="gse-syncskip-", dir="/var/tmp")
    env = BuildEnv(d, gse_fixture, fixture_http, *signing)
    repos = os.path.join(d, "repos")
    shutil.copytree(os.path.dirname(gse_fixture.repo), repos, symlinks=True)
    src = os.path.join(d, "sync-src")
    _source(src, "Mon, 30 Nov 2026 00:00:00 +0000")
    daemon, port = _serve(d, src)
    conf = os.path.join(d, "gse-sync.conf")
    _write(conf, "[gse-sync]\nlocation = /var/db/repos/gse-sync\nsync-type = rsync\n"
                 "sync-uri = rsync://127.0.0.1:%d/gse-sync\nauto-sync = yes\n" % port)
    env.vars.update(gse_repos_dir=repos, gse_sync_method="emerge",
                    gse_inject_custom=[{"src": conf, "dest": "/etc/portage/repos.conf/gse-sync.conf"}])
    record = env.workdir() + ".built.json"
    try:
        rc, res = env.run()
        assert rc == 0, res.failed()
        first = tarball(env)
        first_build = os.path.basename(os.path.dirname(first))
        (check,) = task(res, CHECK)
        assert not check["after_sync"] and check["reason"] == "no record of a completed build", check
        assert task(res, SYNCED) == []  # nothing to decide after the sync: everything ran
        assert os.path.isfile(os.path.join(repos, "gse-sync/app-misc/synced/synced-1.ebuild"))
        # The record holds the repositories as the build left them, what the next sync starts from.
        with open(record, encoding="utf-8") as f:
            assert json.load(f)["components"]["tree:" + repos] == build_inputs.tree_digest(repos)
        published = published_versions(env)

        # The source did not change: the sync brings nothing, the parts after it are skipped.
        rc, res = env.run()
        assert rc == 0, res.failed()
        (check,) = task(res, CHECK)
        assert not check["unchanged"] and check["after_sync"], check
        assert check["recorded"]["build"] == first_build
        # Parts B and C run up to the sync: the mounts, the sync itself.
        assert res.ran("Mount proc, sys, dev") and res.ran("Sync the repositories with emerge --sync")
        (synced,) = task(res, SYNCED)
        assert synced["unchanged"] and synced["built"] == first_build, synced
        assert task(res, "Part B unchanged since the last build") == []
        for name in AFTER_SYNC:
            (message,) = task(res, name)
            assert message["msg"].endswith(": unchanged since %s: skipped" % first_build), message
        assert task(res, "Install eix") == [] and task(res, "Build the eix cache") == []
        assert task(res, "Deselect the build-only tools") == []
        # Part K released what part B mounted, and took the image over.
        assert mounts_under(env.workdir()) == []
        (taken,) = task(res, "Take over the image of the unchanged root")
        assert taken["taken_over"] and taken["src"] == os.path.dirname(first), taken
        assert task(res, "Pack the system") == []
        (publish,) = [r for r in res.ran("Publish the image") if "image" in r]
        assert not publish["changed"] and publish["msg"].startswith("unchanged: "), publish
        assert published_versions(env) == published
        with open(record, encoding="utf-8") as f:
            assert json.load(f)["build"] == first_build

        # A new ebuild at the source: the sync brings it, everything after the sync runs.
        _source(src, "Mon, 30 Nov 2026 06:00:00 +0000")
        _write(os.path.join(src, "app-misc/synced/synced-2.ebuild"),
               'EAPI=8\nDESCRIPTION="synced"\nSLOT="0"\nKEYWORDS="amd64"\n')
        rc, res = env.run()
        assert rc == 0, res.failed()
        third = tarball(env)
        (check,) = task(res, CHECK)
        assert check["after_sync"], check
        (synced,) = task(res, SYNCED)
        assert not synced["unchanged"] and synced["reason"] == "the sync changed: tree:" + repos, synced
        assert os.path.isfile(os.path.join(repos, "gse-sync/app-misc/synced/synced-2.ebuild"))
        assert all(task(res, name) == [] for name in SKIP_MESSAGES)
        assert task(res, "Take over the image of the unchanged root") == []
        (pack,) = task(res, "Pack the system")
        assert pack["packed"], pack
        with open(record, encoding="utf-8") as f:
            assert json.load(f)["build"] == os.path.basename(os.path.dirname(third))
    finally:
        daemon.terminate()
        daemon.wait(timeout=30)
        env.wait_released()
        assert mounts_under(d) == []
        if not mounts_under(d):
            shutil.rmtree(d)
