"""Parts K and L with the chunk index: real casync, tar, zstd, gpg and gpgv; a client's view over loopback HTTP.

The image root is the small root of test_archive_publish.py (owners, xattrs,
symlinks, an excluded directory).  The published index is extracted with
``casync extract`` from the published store served by tests/fixture/http.py,
exactly as a client would fetch it, and compared with the tarball's content.
"""
import hashlib
import os
import shutil
import stat
import sys
import textwrap
import urllib.error
import urllib.request

import pytest

from ansible_collections.gse.stateless.plugins.module_utils import caindex, openpgp

from tests.fixture.http import FixtureServer
from tests.integration.test_archive_publish import COLLECTIONS, ROOT, build, keys, module, pointer, sh  # noqa: F401

pytestmark = pytest.mark.skipif(not shutil.which("casync"), reason="casync missing (scripts/bootstrap installs it)")

EXCLUDES = ["usr/share/doc"]


def image(b, keys, version, level=3, chunks=None):
    """Part K: chunk index, build report with root_bytes, tarball, its blob index, SHA512SUMS over all,
    signatures."""
    tmp = b["tmp"]
    vdir = tmp / "images" / version
    idx = module("chunk_index", tmp, dict(root=str(b["root"]), dest=str(vdir / "image.caidx"),
                                          store=str(chunks or tmp / "chunks"), excludes=EXCLUDES))
    assert idx["changed"] and not idx.get("failed"), idx
    (vdir / "build-report.json").write_text('{"version": "%s", "root_bytes": %d}' % (version, idx["root_bytes"]))
    pack_args = dict(root=str(b["root"]), dest=str(vdir / "image.tar.zst"), excludes=EXCLUDES, level=level)
    pack = module("pack", tmp, dict(pack_args, sums=False))
    assert pack["changed"], pack
    blob = module("tarball_index", tmp, dict(tarball=str(vdir / "image.tar.zst"),
                                             dest=str(vdir / "image.tar.zst.caibx")))
    assert blob["changed"] and not blob.get("failed"), blob
    # pack again, as part K does: the tarball is up to date, SHA512SUMS is written over all.
    sums = module("pack", tmp, dict(pack_args, checksum_files=["build-report.json", "image.caidx",
                                                                "image.tar.zst.caibx"]))
    assert not sums.get("failed"), sums
    files = [str(vdir / n) for n in ("image.tar.zst", "SHA512SUMS", "image.caidx", "image.tar.zst.caibx")]
    assert module("sign", tmp, dict(files=files, gnupghome=keys["home"], key=keys["key"]))["changed"]
    return vdir, idx


def publish(b, keys, vdir, **kw):
    args = dict(src=str(vdir), version=vdir.name, publish_dir=str(b["tmp"] / "pub"), default=True,
                keyring=keys["ring"], gnupghome=keys["home"], signing_key=keys["key"],
                chunk_store=str(b["tmp"] / "chunks"))
    return module("publish", b["tmp"], dict(args, **kw))


def entry(path):
    st = os.lstat(path)
    out = [stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid]
    if stat.S_ISLNK(st.st_mode):
        return out + [os.readlink(path)]
    out += [st.st_mtime_ns, sorted((x, os.getxattr(path, x)) for x in os.listxattr(path))]
    if stat.S_ISREG(st.st_mode):
        with open(path, "rb") as f:
            out.append(hashlib.sha256(f.read()).hexdigest())
    return out


def tree(top):
    """Every entry of ``top`` (itself included): type, mode, owner, mtime, xattrs, content digest or link."""
    out = {".": entry(top)}
    for dirpath, dirnames, filenames in os.walk(top):
        for name in dirnames + filenames:
            path = os.path.join(dirpath, name)
            out[os.path.relpath(path, top)] = entry(path)
    return out


def store_files(pub):
    return sorted(os.path.relpath(os.path.join(d, f), pub / "store") for d, _, fs in os.walk(pub / "store")
                  for f in fs)


def test_published_index_extracts_over_http_to_the_tarball_content(build, keys):
    b, tmp = build, build["tmp"]
    vdir, idx = image(b, keys, "v1")
    assert idx["chunks"] >= 1 and idx["root_bytes"] > 4096
    assert not module("chunk_index", tmp, dict(root=str(b["root"]), dest=str(vdir / "image.caidx"),
                                               store=str(tmp / "chunks"), excludes=EXCLUDES))["changed"]
    assert not os.path.lexists(b["root"].parent / ".workdir-precomp.index-view")

    res = publish(b, keys, vdir)
    assert res["changed"] and res["image"]["published"] and res["image"]["chunks_added"] == idx["chunks"], res
    pub = tmp / "pub"
    body = pointer(pub, keys)
    published_index = pub / "images/v1/image.caidx"
    assert body["format"] == "2" and body["index"] == "images/v1/image.caidx" and body["store"] == "store"
    assert body["index_sha512"] == hashlib.sha512(published_index.read_bytes()).hexdigest()
    assert body["index_size"] == str(published_index.stat().st_size)
    assert body["root_bytes"] == str(idx["root_bytes"])
    assert sh("gpgv", "--keyring", keys["ring"], str(published_index) + ".asc", str(published_index)).returncode == 0
    check = sh("sha512sum", "-c", "SHA512SUMS", cwd=pub / "images/v1")
    assert check.returncode == 0 and "image.caidx: OK" in check.stdout
    # The store holds exactly the chunks the index names, in casync's layout.
    _flags, _size, chunks = caindex.read_index(str(published_index))
    assert store_files(pub) == sorted("%s/%s.cacnk" % (c[:4], c) for c in set(chunks))
    # The public key for administrators and clients: the keyring, armored.
    with open(keys["ring"], "rb") as f:
        assert openpgp.dearmor((pub / "publication-key.asc").read_bytes()) == f.read()

    # The tarball's blob index: summed, signed, named by the pointer with its digest and size.
    blob = pub / "images/v1/image.tar.zst.caibx"
    assert "image.tar.zst.caibx: OK" in check.stdout
    assert sh("gpgv", "--keyring", keys["ring"], str(blob) + ".asc", str(blob)).returncode == 0
    assert body["tarball_index"] == "images/v1/image.tar.zst.caibx"
    assert body["tarball_index_sha512"] == hashlib.sha512(blob.read_bytes()).hexdigest()
    assert body["tarball_index_size"] == str(blob.stat().st_size)
    assert not (set(os.listdir(tmp / "images")) - {"v1"})  # casync's throwaway store is gone

    # A client: index and chunks over HTTP; casync checks each chunk against the signed index.
    client = tmp / "client"
    from_tar = tmp / "from-tar"
    from_tar.mkdir()
    assert sh("tar", "--zstd", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls", "-xpf",
              str(vdir / "image.tar.zst"), "-C", str(from_tar)).returncode == 0
    with FixtureServer(str(pub)) as server:
        got = sh("casync", "--store=%s/store" % server.url, "extract", server.url + "/" + body["index"],
                 str(client))
        assert got.returncode == 0, got.stderr
        fetched = [r for r in server.requests if "/store/" in r[1]]
    assert len(fetched) == len(set(chunks))
    extracted, packed = tree(client), tree(from_tar)
    assert extracted == packed
    assert "usr/share/doc" not in extracted and extracted["etc/hostname"][2:4] == [1234, 1234]
    assert extracted["usr/bin/tool"][5] == [("user.gse", b"kept")]


def test_tarball_fetched_by_its_blob_index_over_http_ranges_is_the_tarball(build, keys):
    """A client without a system: the signed blob index names byte ranges of the published tarball by SHA-256;
    fetched one HTTP Range request per chunk and checked, they make up the tarball byte for byte."""
    b, tmp = build, build["tmp"]
    vdir, _idx = image(b, keys, "v1")
    # The same tarball gives the same index: a second run leaves it untouched.
    again = module("tarball_index", tmp, dict(tarball=str(vdir / "image.tar.zst"),
                                              dest=str(vdir / "image.tar.zst.caibx")))
    made = hashlib.sha512((vdir / "image.tar.zst.caibx").read_bytes()).hexdigest()
    assert not again["changed"] and again["sha512"] == made
    assert publish(b, keys, vdir)["changed"]
    pub = tmp / "pub"
    body = pointer(pub, keys)
    _flags, table = caindex.read_table(str(pub / body["tarball_index"]))
    tarball = (pub / body["path"]).read_bytes()
    assert table[0][0] == 0 and table[-1][1] == len(tarball) == int(body["size"])
    got = b""
    with FixtureServer(str(pub)) as server:
        for start, end, chunk_id in table:
            req = urllib.request.Request(server.url + "/" + body["path"],
                                         headers={"Range": "bytes=%d-%d" % (start, end - 1)})
            with urllib.request.urlopen(req) as r:
                assert r.status == 206
                data = r.read()
            assert hashlib.sha256(data).hexdigest() == chunk_id
            got += data
        ranges = [r[2] for r in server.requests if r[1].endswith("/image.tar.zst")]
    assert got == tarball and hashlib.sha512(got).hexdigest() == body["sha512"]
    assert ranges == ["bytes=%d-%d" % (s, e - 1) for s, e, _c in table]


def test_the_index_of_the_tarball_holds_its_clamped_times_and_extracts_to_its_content(build, keys):
    """Part K's way: pack (clamped to SOURCE_DATE_EPOCH), then index the tarball's tree; the root is only read."""
    b, tmp = build, build["tmp"]
    vdir = tmp / "images" / "v1"
    epoch = int(os.stat(b["root"] / "etc/hostname").st_mtime) - 3600  # every file of the root is newer
    pack = module("pack", tmp, dict(root=str(b["root"]), dest=str(vdir / "image.tar.zst"), excludes=EXCLUDES,
                                    source_date_epoch=epoch, sums=False))
    assert pack["packed"] and not (vdir / "SHA512SUMS").exists(), pack
    before = {n: os.lstat(b["root"] / n).st_ctime_ns for n in ("etc/hostname", "usr/bin/tool", "usr")}
    args = dict(root=str(b["root"]), tarball=str(vdir / "image.tar.zst"), dest=str(vdir / "image.caidx"),
                store=str(tmp / "chunks"))
    idx = module("chunk_index", tmp, args)
    assert idx["changed"] and "reused" not in idx, idx
    assert {n: os.lstat(b["root"] / n).st_ctime_ns for n in before} == before
    assert not os.path.lexists(b["root"].parent / ".workdir-precomp.index-view")
    # The next build of the same root: the same tarball, the index taken over.
    v2 = tmp / "images" / "v2"
    again = module("pack", tmp, dict(root=str(b["root"]), dest=str(v2 / "image.tar.zst"), excludes=EXCLUDES,
                                     source_date_epoch=epoch, sums=False))
    assert again["reused"] == str(vdir / "image.tar.zst"), again
    taken = module("chunk_index", tmp, dict(args, tarball=str(v2 / "image.tar.zst"), dest=str(v2 / "image.caidx")))
    assert taken["reused"] == str(vdir / "image.caidx") and taken["sha512"] == idx["sha512"], taken

    from_tar, client = tmp / "from-tar", tmp / "client"
    from_tar.mkdir()
    assert sh("tar", "--zstd", "--numeric-owner", "--xattrs", "--xattrs-include=*", "--acls", "-xpf",
              str(vdir / "image.tar.zst"), "-C", str(from_tar)).returncode == 0
    pub = tmp / "pub"
    (pub / "images/v1").mkdir(parents=True)
    shutil.copy(vdir / "image.caidx", pub / "images/v1/image.caidx")
    _flags, _size, chunks = caindex.read_index(str(vdir / "image.caidx"))
    for c in set(chunks):
        os.makedirs(os.path.dirname(caindex.chunk_path(str(pub / "store"), c)), exist_ok=True)
        shutil.copy(caindex.chunk_path(str(tmp / "chunks"), c), caindex.chunk_path(str(pub / "store"), c))
    with FixtureServer(str(pub)) as server:
        got = sh("casync", "--store=%s/store" % server.url, "extract", server.url + "/images/v1/image.caidx",
                 str(client))
        assert got.returncode == 0, got.stderr
    extracted, packed = tree(client), tree(from_tar)
    assert extracted == packed
    assert extracted["etc/hostname"][4] == epoch * 10**9  # the tarball's clamped time, not the root's
    assert "usr/share/doc" not in extracted


def test_unchanged_content_publishes_nothing(build, keys):
    b, tmp = build, build["tmp"]
    v1, _ = image(b, keys, "v1")
    assert publish(b, keys, v1)["changed"]
    pub = tmp / "pub"
    before = (pub / "version.txt").read_bytes()
    chunks_before = store_files(pub)

    same = tmp / "images" / "v2"  # the same tarball and index under a new version
    shutil.copytree(v1, same)
    # The same root packed at another level: another tarball, the same index.
    relevel, _ = image(b, keys, "v3", level=9)
    assert hashlib.sha512((relevel / "image.tar.zst").read_bytes()).digest() != \
        hashlib.sha512((v1 / "image.tar.zst").read_bytes()).digest()
    for vdir in (same, relevel):
        res = publish(b, keys, vdir)
        assert not res.get("failed") and not res["changed"], res
        assert res["msg"] == "unchanged: v1 is already published"
        assert res["image"]["unchanged"] and res["image"]["version"] == "v1"
        assert res["image"]["requested"] == vdir.name
        assert sorted(os.listdir(pub / "images")) == ["v1"]
        assert (pub / "version.txt").read_bytes() == before  # clients see no new serial: they fetch nothing
        assert store_files(pub) == chunks_before

    (b["root"] / "etc/hostname").write_text("lab-2\n")
    v4, _ = image(b, keys, "v4")
    res = publish(b, keys, v4)
    assert res["changed"] and pointer(pub, keys)["version"] == "v4" and pointer(pub, keys)["serial"] == "2"
    assert 0 < res["image"]["chunks_added"] < res["image"]["chunks"] or res["image"]["chunks"] == 1


def assert_tree_verifies(pub, keys, version):
    """What a client checks: the pointer's signature, the image's digests and signatures, every chunk."""
    body = pointer(pub, keys)
    assert body["version"] == version
    d = pub / "images" / version
    assert sh("sha512sum", "-c", "SHA512SUMS", cwd=d).returncode == 0
    for name in ("image.tar.zst", "image.caidx", "SHA512SUMS"):
        assert sh("gpgv", "--keyring", keys["ring"], str(d / name) + ".asc", str(d / name)).returncode == 0
    assert sh("casync", "--store=%s" % (pub / "store"), "digest", str(pub / body["index"])).returncode == 0
    assert not os.path.lexists(pub / ".gse/chunks.partial")


@pytest.mark.parametrize("damage", ["missing", "corrupt"])
def test_a_failed_publish_leaves_nothing_visible(build, keys, damage):
    b, tmp = build, build["tmp"]
    v1, _ = image(b, keys, "v1")
    assert publish(b, keys, v1)["changed"]
    pub = tmp / "pub"
    before, chunks_before = (pub / "version.txt").read_bytes(), store_files(pub)

    # More new bytes than two of casync's largest chunks (256 KiB): at least
    # three chunks hold some of them, whatever the content-defined cuts
    # (200 KB could fall into one chunk now and then).
    (b["root"] / "usr/bin/new-tool").write_bytes(os.urandom(600000))
    v2, _ = image(b, keys, "v2")
    _flags, _size, chunks = caindex.read_index(str(v2 / "image.caidx"))
    new = [c for c in chunks if "%s/%s.cacnk" % (c[:4], c) not in chunks_before]
    assert len(new) >= 2
    victim = caindex.chunk_path(str(tmp / "chunks"), new[-1])
    if damage == "missing":
        os.unlink(victim)
    else:  # a chunk file whose content is another chunk: casync refuses it by its id
        shutil.copyfile(caindex.chunk_path(str(tmp / "chunks"), new[0]), victim)
    res = publish(b, keys, v2)
    assert res.get("failed"), res
    assert sorted(os.listdir(pub / "images")) == ["v1"]
    assert (pub / "version.txt").read_bytes() == before
    assert store_files(pub) == chunks_before  # the chunks this run added are gone again
    assert_tree_verifies(pub, keys, "v1")


def test_a_killed_publish_leaves_the_pointer_and_tree_verifying(build, keys):
    """The publisher is killed (SIGKILL, no cleanup) after its new chunks are in the store, before the
    image directory is renamed into place: simulated by a casync stand-in that kills its caller."""
    b, tmp = build, build["tmp"]
    v1, _ = image(b, keys, "v1")
    assert publish(b, keys, v1)["changed"]
    pub = tmp / "pub"
    before = (pub / "version.txt").read_bytes()
    (b["root"] / "usr/bin/new-tool").write_bytes(os.urandom(200000))
    v2, _ = image(b, keys, "v2")
    killer = tmp / "casync-killer"
    killer.write_text("#!/bin/sh\nkill -KILL $PPID\nexec sleep 30\n")
    killer.chmod(0o755)
    args = dict(src=str(v2), version="v2", publish_dir=str(pub), default=True, keyring=keys["ring"],
                gnupghome=keys["home"], signing_key=keys["key"], chunk_store=str(tmp / "chunks"),
                casync=str(killer))
    with pytest.raises(AssertionError, match="printed no JSON"):
        module("publish", tmp, args)
    assert sorted(os.listdir(pub / "images")) == [".staging-v2", "v1"]  # in progress: clients never name it
    assert (pub / "version.txt").read_bytes() == before
    pointer_body = pointer(pub, keys)
    assert pointer_body["version"] == "v1"
    d = pub / "images/v1"
    assert sh("sha512sum", "-c", "SHA512SUMS", cwd=d).returncode == 0
    assert sh("casync", "--store=%s" % (pub / "store"), "digest", str(d / "image.caidx")).returncode == 0

    res = publish(b, keys, v2)  # the next publish cleans up and completes
    assert res["changed"] and not res.get("failed"), res
    assert sorted(os.listdir(pub / "images")) == ["v1", "v2"]
    assert_tree_verifies(pub, keys, "v2")



def test_the_next_publish_of_another_version_removes_what_a_killed_one_left(build, keys):
    """A publish of v2 is killed (SIGKILL) after its new chunks are in the store; the next publish is
    of v3, another content: the staging directory of v2 and the chunks only it named are gone, v1 is
    untouched, and a symlink planted with a staging name is neither followed nor removed."""
    b, tmp = build, build["tmp"]
    v1, _ = image(b, keys, "v1")
    assert publish(b, keys, v1)["changed"]
    pub = tmp / "pub"
    v1_files = {n: (pub / "images/v1" / n).read_bytes() for n in os.listdir(pub / "images/v1")}
    v1_chunks = store_files(pub)
    (b["root"] / "usr/bin/new-tool").write_bytes(os.urandom(200000))
    v2, _ = image(b, keys, "v2")
    killer = tmp / "casync-killer"
    killer.write_text("#!/bin/sh\nkill -KILL $PPID\nexec sleep 30\n")
    killer.chmod(0o755)
    with pytest.raises(AssertionError, match="printed no JSON"):
        publish(b, keys, v2, casync=str(killer))
    assert os.path.isdir(pub / "images/.staging-v2")
    left = store_files(pub)
    outside = tmp / "outside"
    outside.mkdir()
    (outside / "precious").write_text("keep me\n")
    os.symlink(str(outside), str(pub / "images/.staging-planted"))

    os.unlink(b["root"] / "usr/bin/new-tool")
    (b["root"] / "usr/bin/other-tool").write_bytes(os.urandom(100000))
    v3, _ = image(b, keys, "v3")
    res = publish(b, keys, v3)
    assert res["changed"] and not res.get("failed"), res
    assert res["stale"]["removed"] == ["images/.staging-v2"]
    assert res["stale"]["skipped"] == [
        "images/.staging-planted is not a directory (a symlink is never followed); left alone"]
    assert sorted(os.listdir(pub / "images")) == [".staging-planted", "v1", "v3"]
    assert (outside / "precious").read_text() == "keep me\n"
    assert {n: (pub / "images/v1" / n).read_bytes() for n in os.listdir(pub / "images/v1")} == v1_files
    named = set()
    for v in ("v1", "v3"):
        named.update("%s/%s.cacnk" % (c[:4], c) for c in caindex.read_index(str(pub / "images" / v / "image.caidx"))[2])
    assert store_files(pub) == sorted(named)  # v2's own chunks are gone, every chunk v1 and v3 name is there
    # Removed before v3 was staged: what v2 added, v1 not naming it (v3 copies again what it shares).
    assert res["stale"]["chunks_removed"] == len(set(left) - set(v1_chunks)) > 0
    assert_tree_verifies(pub, keys, "v3")
    assert sh("casync", "--store=%s" % (pub / "store"), "digest", str(pub / "images/v1/image.caidx")).returncode == 0


def test_index_refuses_a_root_with_the_controller_record(build):
    b, tmp = build, build["tmp"]
    (b["root"] / ".gse-installed").write_text("version: forged\n")
    dest = tmp / "img" / "image.caidx"
    res = module("chunk_index", tmp, dict(root=str(b["root"]), dest=str(dest), store=str(tmp / "chunks")))
    assert res.get("failed") and ".gse-installed" in res["msg"] and "controller" in res["msg"]
    assert not dest.exists() and not (tmp / "chunks").exists()
    res = module("chunk_index", tmp, dict(root=str(b["root"]), dest=str(dest), store=str(tmp / "chunks")),
                 check=True)
    assert res.get("failed") and ".gse-installed" in res["msg"]


def play(playbook, cwd):
    """ansible-playbook on localhost; returns the recap's changed count."""
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")
    proc = sh(ansible, "-i", "localhost,", "-e", "ansible_python_interpreter=" + sys.executable, str(playbook),
              env=env, cwd=str(cwd))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    recap = proc.stdout[proc.stdout.index("PLAY RECAP"):]
    return int(recap.split("changed=")[1].split()[0])


def test_publish_role_leaves_no_temporary_keyring_and_publishes_the_key(build, keys):
    """roles/publish/tasks/mark.yml as part L runs it: the exported keyring's temporary file is gone after
    every run, and the tree carries the key (publication-key.asc) that verifies its pointer."""
    b, tmp = build, build["tmp"]
    vdir, _ = image(b, keys, "v1")
    cdist, pub = tmp / "cdist", tmp / "pub"
    playbook = tmp / "mark.yml"
    playbook.write_text(textwrap.dedent("""\
        - hosts: localhost
          connection: local
          gather_facts: false
          vars:
            gse_publish_keyring: ""
            gse_gnupghome: "{home}"
            gse_signing_key: "{key}"
            gse_cdistdir: "{cdist}"
            gse_image_dir: "{vdir}"
            gse_build_id: v1
            gse_publish_dir: "{pub}"
            gse_chunk_store: "{chunks}"
            gse_mark_default: true
            gse_enforce: []
            gse_lawful_good: []
            gse_client_configd: ""
          tasks:
            - ansible.builtin.import_tasks: {mark}
        """).format(cdist=cdist, vdir=vdir, pub=pub, chunks=tmp / "chunks", home=keys["home"], key=keys["key"],
                    mark=os.path.join(ROOT, "roles/publish/tasks/mark.yml")))
    for run in (1, 2):
        assert play(playbook, tmp) == (2 if run == 1 else 0)  # the keyring copy and the publication
        assert sorted(n for n in os.listdir(cdist) if n.startswith("publication")) == ["publication-keyring.gpg"]
    ring = tmp / "from-tree.gpg"
    ring.write_bytes(openpgp.dearmor((pub / "publication-key.asc").read_bytes()))
    assert sh("gpgv", "--keyring", str(ring), str(pub / "version.txt")).returncode == 0


@pytest.mark.skipif(not (shutil.which("nginx") or os.path.exists("/usr/sbin/nginx")), reason="nginx missing")
def test_nginx_serves_the_chunks_as_immutable(build, keys):
    """The server role's site (through gse serve's Server): chunks cacheable for ever, the key served,
    the chunks being copied not served."""
    from gse.serve import Server
    b, tmp = build, build["tmp"]
    vdir, _ = image(b, keys, "v1")
    assert publish(b, keys, vdir)["changed"]
    pub = tmp / "pub"
    chunk = store_files(pub)[0]
    (pub / ".gse/chunks.partial").mkdir()
    (pub / ".gse/chunks.partial/x").write_text("partial")
    with Server(str(pub)) as srv:
        with urllib.request.urlopen("%s/store/%s" % (srv.url, chunk), timeout=30) as r:
            assert r.status == 200 and "immutable" in r.headers["Cache-Control"]
            assert r.read() == (pub / "store" / chunk).read_bytes()
        with urllib.request.urlopen(srv.url + "/publication-key.asc", timeout=30) as r:
            assert r.read() == (pub / "publication-key.asc").read_bytes()
        with pytest.raises(urllib.error.HTTPError) as err:
            urllib.request.urlopen(srv.url + "/.gse/chunks.partial/x", timeout=30)
        assert err.value.code == 404
        got = sh("casync", "--store=%s/store" % srv.url, "extract", srv.url + "/images/v1/image.caidx",
                 str(tmp / "client"))
        assert got.returncode == 0, got.stderr
