"""playbooks/build.yml end to end on the fixture, checked from outside.

One precomp build (the bundled default) runs once for this module; the tests
after it read its products and then reuse its work directory for the
behaviours that start from a built chroot: a rerun that changes nothing, a
failing emerge and its skip-first continuation, --build-minimal, lawful-good
and enforce.  A catalyst build through the catalyst double runs separately.
"""
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile

import pytest

from ansible_collections.gse.stateless.plugins.module_utils import caindex
from ansible_collections.gse.stateless.plugins.module_utils.mountinfo import mounts_under

from tests.integration import gitrepo
from tests.integration.buildrun import ROOT, BuildEnv

sys.path.insert(0, os.path.join(ROOT, "tests", "controller"))
import vm  # noqa: E402
from gse.serve import Server  # noqa: E402
from tests.fixture import kernel as kernel_fixture  # noqa: E402

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds chroot and mount: root only")

SECRET = "Lab-Pass-7c1e9f"


def need_boot_tools():
    missing = [t for t in ("dracut", "qemu-system-x86_64", "busybox", "sfdisk", "nginx") if not shutil.which(t)
               and not os.path.exists("/usr/sbin/" + t)]
    if missing:
        pytest.skip(f"missing: {' '.join(missing)} (scripts/bootstrap installs them)")


def tar_list(tarball):
    out = subprocess.run(["tar", "--zstd", "-tvf", tarball], capture_output=True, text=True, check=True).stdout
    entries = {}
    for line in out.splitlines():
        fields = line.split(None, 5)
        name = fields[5]
        target = None
        if " -> " in name:
            name, target = name.split(" -> ", 1)
        entries[name.lstrip("./").rstrip("/")] = target
    return entries


def tar_read(tarball, member):
    return subprocess.run(["tar", "--zstd", "-xOf", tarball, "./" + member],
                          capture_output=True, text=True, check=True).stdout


def image_dir(env):
    images = os.path.join(env.cdist, "images")
    return os.path.join(images, sorted(os.listdir(images))[-1])


def make_env(gse_fixture, fixture_http, signing):
    d = tempfile.mkdtemp(prefix="gse-build-", dir="/var/tmp")
    return BuildEnv(d, gse_fixture, fixture_http, *signing)


def drop_env(env):
    env.wait_released()
    assert mounts_under(env.dir) == [], "mounts left under the build directories"
    shutil.rmtree(env.dir)


# A client config.d published with the image (part L): an OpenRC service
# that reports what the booted image sees on the console and, once the
# image's own gse-health service recorded a healthy startup, shuts the
# system down in order (so gse-health records the shutdown too).
CHAIN_SERVICE = r"""#!/sbin/openrc-run
description="GSE chain test: report, then shut down in order"
start() {
    {
        echo "GSECHAIN up"
        for m in / /etc /var/log /tmp /var/lib/gse/state; do
            awk -v m="$m" '$2==m {print "GSECHAIN mount " $2 " " $3 " " $4}' /proc/mounts
        done
    } > /dev/console 2>&1
    (
        i=0
        while [ ! -e /var/lib/gse/state/health/startup ] && [ $i -lt 600 ]; do sleep 1; i=$((i + 1)); done
        echo "GSECHAIN startup recorded: $(cat /var/lib/gse/state/health/startup 2>/dev/null)"
        openrc-shutdown -p now
    ) > /dev/console 2>&1 &
    return 0
}
"""


def write_client_configd(path):
    os.makedirs(os.path.join(path, "rootfs", "etc", "init.d"))
    with open(os.path.join(path, "runlevels"), "w") as f:
        f.write("add gse-chain-test default\n")
    svc = os.path.join(path, "rootfs", "etc", "init.d", "gse-chain-test")
    with open(svc, "w") as f:
        f.write(CHAIN_SERVICE)
    os.chmod(svc, 0o755)
    return path


# The image's own kernel: Debian's, given as --kernel (part H installs it in
# /boot), its modules injected (part B) as a kernel package would install
# them; part K builds the controller against them.
KERNEL_MODULES = ("virtio_blk virtio_pci virtio_net virtio_scsi sd_mod ahci nvme e1000 e1000e virtio_rng ext4 btrfs "
                  "af_packet").split()


@pytest.fixture(scope="module")
def precomp(gse_fixture, fixture_http, signing):
    env = make_env(gse_fixture, fixture_http, signing)
    env.vars["gse_users"] = [{"name": "student", "comment": "Lab student", "groups": ["users"], "password": SECRET}]
    env.vars["gse_client_configd"] = write_client_configd(os.path.join(env.dir, "client-config.d"))
    kt = kernel_fixture.tree(KERNEL_MODULES)
    env.kernel = kt
    env.vars["gse_kernel_path"] = os.path.join(kt["root"], "boot", "vmlinuz-" + kt["kver"])
    env.vars["gse_inject_custom"] = [{"src": os.path.join(kt["root"], "lib", "modules", kt["kver"]) + "/",
                                      "dest": "/lib/modules/" + kt["kver"] + "/"}]
    rc, res = env.run()
    env.first = (rc, res)
    yield env
    drop_env(env)


# --- the product --------------------------------------------------------------


def test_build_succeeds_and_releases_mounts(precomp):
    rc, res = precomp.first
    assert rc == 0, res.failed()
    assert mounts_under(precomp.dir) == []


def test_signatures_and_digests_verify(precomp):
    d = image_dir(precomp)
    keyring = os.path.join(precomp.cdist, "publication-keyring.gpg")
    for f in ("image.tar.zst", "SHA512SUMS", "image.caidx", "image.tar.zst.caibx"):
        p = subprocess.run(["gpgv", "--keyring", keyring, f + ".asc", f], cwd=d, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
    p = subprocess.run(["sha512sum", "-c", "SHA512SUMS"], cwd=d, capture_output=True, text=True)
    assert p.returncode == 0 and "image.tar.zst: OK" in p.stdout and "image.caidx: OK" in p.stdout
    assert "image.tar.zst.caibx: OK" in p.stdout
    assert not os.path.lexists(keyring + ".tmp")


def test_published_and_marked_default(precomp):
    keyring = os.path.join(precomp.cdist, "publication-keyring.gpg")
    p = subprocess.run(["gpgv", "--keyring", keyring, "--output", "-", "version.txt"],
                       cwd=precomp.publish, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    body = dict(line.split(": ", 1) for line in p.stdout.splitlines() if ": " in line)
    assert body["serial"] == "1"
    assert os.path.isfile(os.path.join(precomp.publish, body["path"]))
    assert body["format"] == "2" and body["store"] == "store" and int(body["root_bytes"]) > 0
    p = subprocess.run(["casync", "--store=store", "digest", body["index"]], cwd=precomp.publish,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    assert os.path.isfile(os.path.join(precomp.publish, "publication-key.asc"))


def test_published_pointer_names_the_tarballs_blob_index(precomp):
    """Part K's blob index of the tarball, published beside it: version.txt names it (digest, size), and its
    chunks are the tarball's byte ranges by SHA-256 (computed here from the published tarball)."""
    keyring = os.path.join(precomp.cdist, "publication-keyring.gpg")
    p = subprocess.run(["gpgv", "--keyring", keyring, "--output", "-", "version.txt"],
                       cwd=precomp.publish, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    body = dict(line.split(": ", 1) for line in p.stdout.splitlines() if ": " in line)
    blob = os.path.join(precomp.publish, body["tarball_index"])
    assert body["tarball_index"] == body["path"] + ".caibx"
    with open(blob, "rb") as f:
        assert body["tarball_index_sha512"] == hashlib.sha512(f.read()).hexdigest()
    assert int(body["tarball_index_size"]) == os.path.getsize(blob)
    _flags, table = caindex.read_table(blob)
    with open(os.path.join(precomp.publish, body["path"]), "rb") as f:
        for start, end, chunk_id in table:
            assert f.tell() == start and hashlib.sha256(f.read(end - start)).hexdigest() == chunk_id
        assert f.read() == b"" and table[-1][1] == int(body["size"])
    # The signed build report names the same index.
    with open(os.path.join(image_dir(precomp), "build-report.json")) as f:
        report = json.load(f)
    assert report["tarball_index"] == {"sha512": body["tarball_index_sha512"],
                                       "size": int(body["tarball_index_size"]), "chunks": len(table)}


def test_verify_playbook_passes_the_image_and_fails_an_altered_copy(precomp):
    """playbooks/verify.yml (the AWX workflow's step before publishing): the built image passes, its entries
    found through the image's own links (the fixture's /sbin links to usr/sbin, as in a merged /usr, and it
    boots openrc-init: it has no /sbin/init); copies of it with the tarball's blob index altered, its signature
    missing, or an entry the root lacks each fail (the original image directory is left as it is)."""
    d = image_dir(precomp)
    version = os.path.basename(d)
    before = sorted(os.listdir(os.path.dirname(d)))
    entries = ["/sbin/openrc-init", "/etc/os-release"]
    rc, res = precomp.run(playbook="verify.yml", extra={"gse_build_id": version, "gse_verify_entries": entries},
                          timeout=600)
    assert rc == 0, res.failed()
    assert res.ran("Verify every signature with gpgv")
    assert res.ran("Check that the image holds")[0]["entries"] == {"/sbin/openrc-init": "usr/sbin/openrc-init",
                                                                   "/etc/os-release": "usr/lib/os-release"}
    images = os.path.dirname(d)

    def altered(name, change, **extra):
        copy = os.path.join(images, version + "-" + name)
        shutil.copytree(d, copy, symlinks=True)
        try:
            change(copy)
            return precomp.run(playbook="verify.yml", timeout=600,
                               extra=dict({"gse_build_id": os.path.basename(copy), "gse_verify_entries": entries},
                                          **extra))
        finally:
            shutil.rmtree(copy)

    def flip(copy):
        with open(os.path.join(copy, "image.tar.zst.caibx"), "r+b") as f:
            f.seek(200)
            b = f.read(1)
            f.seek(200)
            f.write(bytes([b[0] ^ 0xFF]))

    rc, res = altered("flipped", flip)
    assert rc != 0 and any("image.tar.zst.caibx" in str(t) for t in res.failed()), res.failed()
    rc, res = altered("unsigned", lambda copy: os.unlink(os.path.join(copy, "image.tar.zst.caibx.asc")))
    assert rc != 0 and res.failed(), res.failed()
    rc, res = altered("lacking", lambda copy: None, gse_verify_entries=entries + ["/no/such/entry"])
    assert rc != 0 and any("/no/such/entry: /no is not in the image" in str(t) for t in res.failed()), res.failed()
    assert sorted(os.listdir(images)) == before


def test_published_pointer_names_the_images_controller(precomp):
    """Product II: part K built the image's kernel with an initramfs against
    its /lib/modules into the image directory; SHA512SUMS covers both and
    version.txt names them (digest, size)."""
    keyring = os.path.join(precomp.cdist, "publication-keyring.gpg")
    p = subprocess.run(["gpgv", "--keyring", keyring, "--output", "-", "version.txt"],
                       cwd=precomp.publish, capture_output=True, text=True)
    assert p.returncode == 0, p.stderr
    body = dict(line.split(": ", 1) for line in p.stdout.splitlines() if ": " in line)
    version = body["version"]
    for key, name in (("kernel", "vmlinuz"), ("initramfs", "initramfs")):
        path = os.path.join(precomp.publish, "images", version, name)
        assert body[key] == f"images/{version}/{name}"
        assert body[key + "_sha512"] == subprocess.run(["sha512sum", path], capture_output=True, text=True,
                                                       check=True).stdout.split()[0]
        assert int(body[key + "_size"]) == os.path.getsize(path)
    with open(os.path.join(precomp.publish, "images", version, "vmlinuz"), "rb") as a, \
            open(os.path.join(precomp.kernel["root"], "boot", "vmlinuz-" + precomp.kernel["kver"]), "rb") as b:
        assert a.read() == b.read()
    script = open(os.path.join(precomp.publish, "boot.ipxe")).read()
    assert f"kernel images/{version}/vmlinuz initrd=initramfs root=gse" in script
    assert f"initrd images/{version}/initramfs" in script


def test_published_image_boots_under_the_controller(precomp):
    """The whole chain: the image part K packed and part L published (with
    its client config.d and its controller), served by nginx, installed on a
    blank disk by the published controller (the image's kernel, an
    initramfs built against the image's modules, trusting the publication
    keyring), booted under the image's own OpenRC (the stand-in stage3 has
    no /sbin/init: init= names openrc-init), its gse-health service
    recording a healthy life cycle."""
    need_boot_tools()
    version = os.path.basename(image_dir(precomp))
    ctl = {"kernel": os.path.join(precomp.publish, "images", version, "vmlinuz"),
           "initrd": os.path.join(precomp.publish, "images", version, "initramfs")}
    disk = vm.make_disk(os.path.join(precomp.dir, "client.img"), "2G")
    try:
        with Server(precomp.publish) as srv, open(os.path.join(precomp.dir, "client-boot.log"), "w") as log:
            out, secs, rc = vm.boot(ctl["kernel"], ctl["initrd"], disk,
                                    f"init=/usr/sbin/openrc-init gse.server=http://10.0.2.2:{srv.port}",
                                    timeout=1500, log=log)
        assert "gse: config.d: serial 1 fetched and exported" in out
        assert f"gse: installed {version} (serial 1) on /dev/vda2" in out
        assert "kernel: refusing" not in out
        assert "gse: runlevels: add gse-chain-test default" in out
        assert "GSECHAIN up" in out
        assert "GSECHAIN mount / ext4 ro," in out
        for d in ("/etc", "/var/log", "/tmp"):
            assert f"GSECHAIN mount {d} tmpfs rw" in out
        assert "GSECHAIN startup recorded: 20" in out
        assert vm.by_label(disk) == {"GSESTATE": None, "SYSFS": version, "BACKUPFS": None}
        assert vm.state_file(disk, "health/cycle").strip() == f"version={version}"
        assert vm.state_file(disk, "health/startup").startswith("20")
        assert vm.state_file(disk, "health/shutdown").startswith("20")
    finally:
        os.unlink(disk)


def test_image_holds_the_configuration(precomp):
    tarball = os.path.join(image_dir(precomp), "image.tar.zst")
    entries = tar_list(tarball)
    assert "en_US.UTF-8 UTF-8" in tar_read(tarball, "etc/locale.gen")
    assert "de_DE.UTF-8 UTF-8" in tar_read(tarball, "etc/locale.gen")
    assert 'LANG="en_US.UTF-8"' in tar_read(tarball, "etc/env.d/02locale")
    assert entries["etc/localtime"].endswith("usr/share/zoneinfo/Europe/Berlin")
    assert 'keymap="de"' in tar_read(tarball, "etc/conf.d/keymaps")
    fstab = tar_read(tarball, "etc/fstab")
    assert "LABEL=SYSFS" in fstab and "fileserver:/home" in fstab
    assert "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIGSEdemo" in tar_read(tarball, "root/.ssh/authorized_keys")
    shadow = [l for l in tar_read(tarball, "etc/shadow").splitlines() if l.startswith("student:")]
    assert shadow and shadow[0].split(":")[1].startswith("$6$")
    assert entries["etc/runlevels/default/agetty"] == "/etc/init.d/agetty"
    assert entries["etc/runlevels/shutdown/savecache"] == "/etc/init.d/savecache"


def test_image_holds_the_packages_and_not_the_build_tools(precomp):
    entries = tar_list(os.path.join(image_dir(precomp), "image.tar.zst"))
    pkgs = {e for e in entries if e.startswith("var/db/pkg/") and e.count("/") == 4}
    assert any(p.startswith("var/db/pkg/app-misc/lab-tools-") for p in pkgs)
    assert any(p.startswith("var/db/pkg/app-misc/hello-lab-") for p in pkgs)
    assert not any(p.startswith("var/db/pkg/app-portage/eix-") for p in pkgs)
    assert "usr/bin/eix" not in entries
    # Part K's cleanup.
    assert not [e for e in entries if e.startswith("var/tmp/portage/")]
    assert "usr/share/man/man1/lab-tools.1" in entries or "usr/share/man/man1/lab-tools.1.bz2" in entries


def test_password_is_never_logged(precomp):
    for root, _, files in os.walk(precomp.dir):
        if "workdir-" in root:
            continue
        for f in files:
            if f.startswith("vars-"):
                continue  # the test's own input to ansible-playbook
            path = os.path.join(root, f)
            if os.path.getsize(path) < 5_000_000:
                with open(path, "rb") as fh:
                    assert SECRET.encode() not in fh.read(), path


# --- behaviours on the built chroot ---------------------------------------------


def test_rerunning_configuration_changes_nothing(precomp):
    rc, res = precomp.run(tags=["gmount", "gparte"])
    assert rc == 0, res.failed()
    assert res.changed_tasks("chroot") == []
    assert mounts_under(precomp.dir) == []


def test_failing_emerge_reports_and_skipfirst_continues(precomp):
    # Packages the image does not have yet, so that emerge's resume list holds them.
    extra = {"gse_packages": ["dev-util/broken-build", "sys-boot/grub", "dev-util/ccache"],
             "gse_build_id": "failing"}
    rc, res = precomp.run(tags=["gmount", "gpkg"], extra=extra)
    assert rc != 0
    failed = [r for n, h, r in res.failed()]
    assert len(failed) == 1
    f = failed[0]
    assert f["failed_package"].startswith("dev-util/broken-build-")
    assert f["resume"][0].startswith("dev-util/broken-build-"), f["resume"]
    assert any(c.startswith("sys-boot/grub-") for c in f["resume"]), f["resume"]
    assert any(c.startswith("dev-util/ccache-") for c in f["resume"]), f["resume"]
    assert f["log"] and "intentional failure" in "\n".join(f["log_tail"])
    assert mounts_under(precomp.dir) == []

    rc, res = precomp.run(tags=["gmount", "gpkg"], extra=dict(extra, gse_emerge_resume="skipfirst"))
    assert rc == 0, res.failed()
    merged = res.ran("Emerge the requested packages", "chroot")[0]
    assert merged["changed"] is True
    vdb = os.path.join(precomp.workdir(), "var/db/pkg")
    assert not os.path.exists(os.path.join(vdb, "dev-util/broken-build-1.0"))
    assert [d for d in os.listdir(os.path.join(vdb, "sys-boot")) if d.startswith("grub-")]
    assert [d for d in os.listdir(os.path.join(vdb, "dev-util")) if d.startswith("ccache-")]


def test_build_minimal_leaves_out_its_entries(precomp):
    rc, res = precomp.run(tags=["gpartk"], extra={"gse_build_minimal": True, "gse_build_id": "minimal"})
    assert rc == 0, res.failed()
    entries = tar_list(os.path.join(precomp.cdist, "images", "minimal", "image.tar.zst"))
    for gone in ("usr/share/doc", "usr/share/man", "usr/include"):
        assert not [e for e in entries if e == gone or e.startswith(gone + "/")], gone
    assert "usr/bin/hello-lab" in entries
    # The chunk index leaves out the same entries: as many entries as the tarball, none of the excluded.
    listed = subprocess.run(["casync", "--store=" + os.path.join(precomp.cdist, "chunks"), "list",
                             os.path.join(precomp.cdist, "images", "minimal", "image.caidx")],
                            capture_output=True, text=True, check=True).stdout.splitlines()
    indexed = [line.split(" ", 1)[1] for line in listed]
    for gone in ("usr/share/doc", "usr/share/man", "usr/include"):
        assert not [e for e in indexed if e == gone or e.startswith(gone + "/")], gone
    assert "usr/bin/hello-lab" in indexed and len(indexed) == len(entries)


def test_lawful_good_wins_and_enforce_redoes(precomp):
    shadow = os.path.join(precomp.workdir(), "etc/shadow")
    assert "student:" in open(shadow).read()
    # lawful-good over enforce: the enforced extraction is skipped, nothing changes.
    rc, res = precomp.run(tags=["gparta"], skip_tags=["gextr"], extra={"gse_enforce": ["gextr"]})
    assert rc == 0 and res.ran("Extract the stage3 into /") == []
    assert "student:" in open(shadow).read()
    # enforce alone: the stage3 is extracted again, so part E's work is gone ...
    rc, res = precomp.run(tags=["gparta"], extra={"gse_enforce": ["gextr"]})
    assert rc == 0 and res.ran("Extract the stage3 into /")[0]["changed"] is True
    assert "student:" not in open(shadow).read()
    # ... and a skipped part E leaves no trace.
    rc, res = precomp.run(tags=["gpartb", "gparte"], skip_tags=["gparte"])
    assert rc == 0, res.failed()
    assert "student:" not in open(shadow).read()
    assert "gse-lab" not in open(os.path.join(precomp.workdir(), "etc/conf.d/hostname")).read() \
        if os.path.exists(os.path.join(precomp.workdir(), "etc/conf.d/hostname")) else True
    assert mounts_under(precomp.dir) == []


# --- catalyst base ------------------------------------------------------------------


def test_catalyst_base_from_nothing_through_the_double(gse_fixture, fixture_http, signing):
    # catalyst runs as tests/doubles/catalyst (catalyst does not run on
    # Debian).  Real here: the seed stage3 fetch and verification, the git
    # repository fetched over file:// and its signed commit verified with
    # git verify-commit, the squashfs snapshot (git archive | tar2sqfs) and
    # the specs.  What the double cannot show: a real stage1..3 build (its
    # stages repack the seed with a marker line), real binary packages in
    # the pkgcache, and catalyst's own chroot mounts.
    env = make_env(gse_fixture, fixture_http, signing)
    try:
        # From nothing: no catalyst directory, no seed, no snapshot, no repository.
        storedir = os.path.join(env.cdist, "catalyst")
        assert not os.path.exists(storedir)
        # The ebuild repository, as its mirror serves it: the fixture's test
        # repository in git, committed first without a signature.
        upstream = os.path.join(env.dir, "upstream")
        shutil.copytree(gse_fixture.repo, upstream)
        unsigned = gitrepo.commit(upstream, {})
        extra = {
            "gse_base": "catalyst",
            "gse_catalyst_executable": os.path.join(ROOT, "tests/doubles/catalyst"),
            "gse_catalyst_repo_url": "file://" + upstream,
            "gse_catalyst_repo_keyring": gse_fixture.keyring,
            "gse_catalyst_compression": "tar",
            "gse_catalyst_profile": "default/linux/amd64",
            "gse_catalyst_version_stamp": "t1",
            "gse_distfiles_dir": os.path.join(env.cdist, "distfiles"),
        }
        rc, res = env.run(extra=extra, skip_tags=["gpartl"])
        assert rc != 0
        [(name, _host, refused)] = res.failed()
        assert name.endswith("Fetch and verify the ebuild repository of catalyst's snapshot")
        assert unsigned in refused["msg"] and "no good signature" in refused["msg"]
        # Refused before catalyst or the seed fetch ran: nothing was written.
        assert not os.path.exists(storedir)
        assert res.ran("Fetch and verify the latest stage3") == []

        # The mirror's next commit is signed with the release key.
        home, fingerprint = signing
        commit = gitrepo.commit(upstream, {"metadata/timestamp.chk": "Mon, 30 Nov 2026 00:00:00 +0000\n"},
                                home, fingerprint)
        rc, res = env.run(extra=extra, skip_tags=["gpartl"])
        assert rc == 0, res.failed()
        repo = res.ran("Fetch and verify the ebuild repository of catalyst's snapshot")[0]
        assert repo["commit"] == commit and repo["signer"] == fingerprint and repo["changed"]
        # The seed is the mirror's stage3, fetched and verified as precomp's is.
        fetched = res.ran("Fetch and verify the latest stage3")[0]
        assert fetched["changed"] and fetched["path"].startswith(os.path.join(env.cdist, "downloads") + "/")
        seed = os.path.join(storedir, "builds", "seeds", "stage3-amd64-openrc-latest.tar.xz")
        assert os.path.realpath(seed) == fetched["path"]
        # The snapshot is named by the verified commit and made from it.
        snapshot = res.ran("Create the Portage snapshot catalyst builds from")[0]
        assert snapshot["snapshot"]["made"]
        assert snapshot["snapshot"]["path"] == os.path.join(storedir, "snapshots", "gentoo-%s.sqfs" % commit)
        assert subprocess.run(["rdsquashfs", "-c", "metadata/timestamp.chk", snapshot["snapshot"]["path"]],
                              capture_output=True, text=True, check=True).stdout.startswith("Mon, 30 Nov")
        cat = res.ran("Build stage1, stage2 and stage3")[0]
        assert [s["target"] for s in cat["stages"]] == ["stage1", "stage2", "stage3"]
        assert all(s["built"] for s in cat["stages"])
        # Every spec names that commit and the stage's package cache.
        for stage in cat["stages"]:
            spec = open(stage["spec"]).read()
            assert "snapshot_treeish: %s\n" % commit in spec
            cache = os.path.join(storedir, "packages", "gse", "%s-amd64" % stage["target"])
            assert stage["pkgcache"] == cache and "pkgcache_path: %s\n" % cache in spec
        assert "pkgcache" in open(os.path.join(storedir, "config", "catalyst.conf")).read()
        entries = tar_list(os.path.join(image_dir(env), "image.tar.zst"))
        assert "etc/catalyst-double-stage" in entries
        assert any(e.startswith("var/db/pkg/app-misc/lab-tools-") for e in entries)

        # gcat without gseed: the repository already there is verified in place
        # (no fetch) and its commit used; the stages exist, nothing is rebuilt.
        rc, res = env.run(extra=extra, tags=["gparta"], skip_tags=["gseed"])
        assert rc == 0, res.failed()
        [again] = res.ran("Fetch and verify the ebuild repository of catalyst's snapshot")
        assert again["commit"] == commit and again["fetched"] is False and not again["changed"]
        assert not any(s["built"] for s in res.ran("Build stage1, stage2 and stage3")[0]["stages"])
    finally:
        drop_env(env)


def test_distcc_and_ccache_wait_for_their_install_and_the_binary_cache_is_on(precomp):
    rc, res = precomp.run(tags=["gmount", "genv"], extra={
        "gse_distcc": "on", "gse_ccache": "on", "gse_distcc_hosts": ["10.0.0.5/4", "localhost"],
        "gse_ccache_size": "2G"})
    assert rc == 0, res.failed()
    make_conf = open(os.path.join(precomp.workdir(), "etc/portage/make.conf")).read()
    features = [l for l in make_conf.splitlines() if l.startswith("FEATURES=")][0]
    # Part B writes the hosts, but FEATURES names distcc and ccache only once
    # part C installed them (tests/integration/test_compile_caches.py).
    assert "distcc" not in features and "ccache" not in features
    assert open(os.path.join(precomp.workdir(), "etc/distcc/hosts")).read() == "10.0.0.5/4 localhost\n"
    # The binary package cache: kept at PKGDIR and used.
    assert "buildpkg" in features.split('"')[1].split()
    assert 'PKGDIR="/var/cache/binpkgs"' in make_conf
    assert 'EMERGE_DEFAULT_OPTS="--usepkg --binpkg-respect-use=y --binpkg-changed-deps=y"' in make_conf
    # Turned off, the binary cache leaves make.conf again.
    rc, res = precomp.run(tags=["gmount", "genv"], extra={"gse_binpkg_dir": ""})
    assert rc == 0, res.failed()
    make_conf = open(os.path.join(precomp.workdir(), "etc/portage/make.conf")).read()
    assert "buildpkg" not in make_conf and "--usepkg" not in make_conf


def test_kernel_and_initramfs_built_or_taken_from_paths(precomp, tmp_path):
    # Enforced: genkernel and dracut (the fixture's stand-ins) build them
    # (without the --kernel this module's build was given).
    rc, res = precomp.run(tags=["gmount", "gess", "gker", "ginitrd"],
                          extra={"gse_enforce": ["gker", "ginitrd"], "gse_kernel_path": ""})
    assert rc == 0, res.failed()
    boot = os.listdir(os.path.join(precomp.workdir(), "boot"))
    assert any(f.startswith("vmlinuz-") and f.endswith("-gentoo-dist") for f in boot), boot
    assert any(f.startswith("initramfs-") for f in boot), boot
    # --kernel=PATH / --initrd=PATH: taken as they are.
    kernel = tmp_path / "vmlinuz-6.6.0-site"
    kernel.write_bytes(b"\x7fkernel")
    initrd = tmp_path / "initramfs-6.6.0-site.img"
    initrd.write_bytes(b"070701initrd")
    rc, res = precomp.run(tags=["gmount", "gker", "ginitrd"],
                          extra={"gse_kernel_path": str(kernel), "gse_initrd_path": str(initrd)})
    assert rc == 0, res.failed()
    assert open(os.path.join(precomp.workdir(), "boot", kernel.name), "rb").read() == b"\x7fkernel"
    assert open(os.path.join(precomp.workdir(), "boot", initrd.name), "rb").read() == b"070701initrd"


@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_interrupted_build_releases_its_mounts(precomp, sig):
    import signal
    import time
    from tests.integration.buildrun import PLAYBOOK_BIN
    import yaml
    vars_file = os.path.join(precomp.dir, "interrupt.yml")
    with open(vars_file, "w") as fh:
        yaml.safe_dump(precomp.vars, fh)
    p = subprocess.Popen([PLAYBOOK_BIN, os.path.join(ROOT, "playbooks/build.yml"), "-i",
                          os.path.join(ROOT, "inventories/demo"), "-e", "@" + vars_file,
                          "-e", "gse_enforce=['grebuild']", "-e", "gse_rebuild_world=true",
                          "--tags", "gmount,grebuild"], cwd=ROOT, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 600
        while len(mounts_under(precomp.workdir())) < 4 and time.monotonic() < deadline and p.poll() is None:
            time.sleep(0.2)
        assert len(mounts_under(precomp.workdir())) >= 4, "the build never mounted"
        p.send_signal(getattr(signal, sig))
        p.wait(timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    deadline = time.monotonic() + 30
    while mounts_under(precomp.dir) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert mounts_under(precomp.dir) == []
