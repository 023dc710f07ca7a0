"""Parts K and L for real: root_clean, pack, sign, publish with real tar, zstd, gpg, gpgv and mounts.

Checked from outside the way a client or an administrator would: gpgv on the
pointer and the image, sha512sum -c, tar listing.  Keys are generated in a
temporary GNUPGHOME (ed25519, no passphrase).
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, ".collections")
UID = 1234


def module_argv(name, argfile):
    # As a package module (-m), not as a script: the script's directory on
    # sys.path would let plugins/modules/locale.py shadow the standard library's.
    return [sys.executable, "-m", "ansible_collections.gse.stateless.plugins.modules." + name, str(argfile)]


def module(name, tmp_path, args, check=False):
    """Run a module the way Ansible's module runner does: a process reading its arguments from a JSON file."""
    if check:
        args = dict(args, _ansible_check_mode=True)
    argfile = tmp_path / ("%s-args.json" % name)
    argfile.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    proc = subprocess.run(module_argv(name, argfile), capture_output=True, text=True, env=env, cwd=str(tmp_path))
    try:
        return json.loads(proc.stdout)
    except ValueError:
        raise AssertionError("module %s printed no JSON: %s %s" % (name, proc.stdout, proc.stderr)) from None


def sh(*argv, **kw):
    return subprocess.run(list(argv), capture_output=True, text=True, **kw)


@pytest.fixture(scope="module")
def keys(tmp_path_factory):
    home = tmp_path_factory.mktemp("gnupg")
    os.chmod(home, 0o700)
    gen = sh("gpg", "--batch", "--homedir", str(home), "--passphrase", "", "--quick-gen-key",
             "GSE Test Signing <signing@gse.invalid>", "ed25519", "sign", "never")
    assert gen.returncode == 0, gen.stderr
    ring = home / "publication.gpg"
    assert sh("gpg", "--batch", "--homedir", str(home), "--output", str(ring), "--export",
              "signing@gse.invalid").returncode == 0
    yield dict(home=str(home), key="signing@gse.invalid", ring=str(ring))
    sh("gpgconf", "--homedir", str(home), "--kill", "gpg-agent")


@pytest.fixture
def build(tmp_path):
    """A small root below an allowed parent, with a symlink pointing at a 'host' directory."""
    host = tmp_path / "host"
    host.mkdir()
    (host / "precious").write_text("host data")
    root = tmp_path / "cdist" / "workdir-precomp"
    for d in ("etc", "usr/bin", "usr/share/doc/pkg", "var/cache/distfiles", "var"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc/hostname").write_text("lab\n")
    (root / "usr/bin/tool").write_bytes(os.urandom(4096))
    (root / "usr/share/doc/pkg/README").write_text("doc\n" * 100)
    (root / "var/cache/distfiles/src.tar").write_bytes(b"x" * 10000)
    os.chown(root / "etc/hostname", UID, UID)
    os.setxattr(root / "usr/bin/tool", "user.gse", b"kept")
    (root / "var/tmp").symlink_to(host)  # escape attempt: var/tmp -> host directory
    (root / "lib").symlink_to("usr/lib")
    return dict(tmp=tmp_path, host=host, root=root, parent=str(tmp_path / "cdist"))


def clean_args(b):
    return dict(root=str(b["root"]), entries=["var/tmp/*", "var/tmp", "var/cache/distfiles/*"],
                allowed_parents=[b["parent"]])


def test_bind_mount_under_root_makes_clean_and_pack_refuse(build):
    b, tmp = build, build["tmp"]
    target = b["root"] / "mnt"
    target.mkdir()
    assert sh("mount", "--bind", str(b["host"]), str(target)).returncode == 0
    try:
        res = module("root_clean", tmp, clean_args(b))
        assert res.get("failed") and str(target) in res["mounts"]
        assert (b["root"] / "var/cache/distfiles/src.tar").exists() and os.path.islink(b["root"] / "var/tmp")
        res = module("pack", tmp, dict(root=str(b["root"]), dest=str(tmp / "img/image.tar.zst")))
        assert res.get("failed") and "mounted" in res["msg"]
        assert not (tmp / "img/image.tar.zst").exists()
    finally:
        assert sh("umount", str(target)).returncode == 0
    assert (b["host"] / "precious").read_text() == "host data"


def test_clean_symlink_escape_then_not_changed(build):
    b, tmp = build, build["tmp"]
    res = module("root_clean", tmp, clean_args(b), check=True)
    assert res["changed"] and res["removed"] == ["/var/cache/distfiles/src.tar", "/var/tmp"]
    res = module("root_clean", tmp, clean_args(b))
    assert res["changed"] and res["removed"] == ["/var/cache/distfiles/src.tar", "/var/tmp"]
    assert res["bytes"] == 10000
    assert (b["host"] / "precious").read_text() == "host data"  # the link was removed, not followed
    assert not os.path.lexists(b["root"] / "var/tmp")
    assert not module("root_clean", tmp, clean_args(b))["changed"]
    outside = module("root_clean", tmp, dict(clean_args(b), root=str(b["host"])))
    assert outside.get("failed") and (b["host"] / "precious").exists()


def make_image(b, keys, version_dir, extra=None):
    """Part K on the build root: pack, build report, SHA512SUMS over both, sign; returns the image dir."""
    tmp = b["tmp"]
    if extra:
        (b["root"] / "etc/release").write_text(extra)
    dest = version_dir / "image.tar.zst"
    args = dict(root=str(b["root"]), dest=str(dest), excludes=["usr/share/doc"])
    assert module("pack", tmp, args)["changed"]
    (version_dir / "build-report.json").write_text(json.dumps({"version": version_dir.name}))
    assert module("pack", tmp, dict(args, checksum_files=["build-report.json"]))["changed"]
    sargs = dict(files=[str(dest), str(version_dir / "SHA512SUMS")], gnupghome=keys["home"], key=keys["key"])
    assert module("sign", tmp, sargs)["changed"]
    return version_dir


def publish_args(b, keys, src, version, **kw):
    return dict(dict(src=str(src), version=version, publish_dir=str(b["tmp"] / "pub"), default=True,
                     keyring=keys["ring"], gnupghome=keys["home"], signing_key=keys["key"]), **kw)


def pointer(pub, keys, name="version.txt"):
    out = sh("gpgv", "--keyring", keys["ring"], "--output", "-", str(pub / name))
    assert out.returncode == 0, out.stderr
    return dict(line.split(": ", 1) for line in out.stdout.splitlines())


def test_pack_sign_publish_verify_from_outside(build, keys):
    b, tmp = build, build["tmp"]
    src = tmp / "images" / "20261125T190000Z"
    dest = src / "image.tar.zst"
    pargs = dict(root=str(b["root"]), dest=str(dest), excludes=["usr/share/doc", "var/cache/distfiles/*"])
    first = module("pack", tmp, pargs)
    assert first["changed"] and first["packed"] and first["size"] == os.path.getsize(dest)
    assert not module("pack", tmp, pargs)["changed"]
    assert sh("sha512sum", "-c", "SHA512SUMS", cwd=src).returncode == 0

    listing = sh("tar", "--zstd", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-tvvf", str(dest)).stdout
    assert "%d/%d" % (UID, UID) in listing and "./etc/hostname" in listing
    assert "./usr/share/doc" not in listing and "src.tar" not in listing and "./var/cache/distfiles/" in listing
    assert "./lib -> usr/lib" in listing and "./var/tmp -> %s" % b["host"] in listing
    unpack = tmp / "unpacked"
    unpack.mkdir()
    assert sh("tar", "--zstd", "--xattrs", "--xattrs-include=*", "-xf", str(dest), "-C", str(unpack)).returncode == 0
    assert os.getxattr(unpack / "usr/bin/tool", "user.gse") == b"kept"

    (src / "build-report.json").write_text('{"parts": ["gpartk"]}')
    sums = module("pack", tmp, dict(pargs, checksum_files=["build-report.json"]))
    assert sums["changed"] and not sums["packed"]
    sargs = dict(files=[str(dest), str(src / "SHA512SUMS")], gnupghome=keys["home"], key=keys["key"])
    assert module("sign", tmp, sargs)["changed"]
    assert not module("sign", tmp, sargs)["changed"]
    for f in (dest, src / "SHA512SUMS"):
        assert sh("gpgv", "--keyring", keys["ring"], str(f) + ".asc", str(f)).returncode == 0

    conf = tmp / "config.d"
    conf.mkdir()
    (conf / "10-network").write_text("GSE_NET=dhcp\n")
    args = publish_args(b, keys, src, "20261125T190000Z", config_dir=str(conf))
    planned = module("publish", tmp, args, check=True)
    assert planned["changed"] and planned["image"]["serial"] == 1 and not (tmp / "pub").exists()
    res = module("publish", tmp, args)
    assert res["changed"] and res["image"]["serial"] == 1 and res["config"]["serial"] == 1
    pub = tmp / "pub"
    body = pointer(pub, keys)
    assert body["serial"] == "1" and body["version"] == "20261125T190000Z"
    assert body["path"] == "images/20261125T190000Z/image.tar.zst" and body["sha512"] == first["sha512"]
    image_dir = pub / "images/20261125T190000Z"
    assert sh("sha512sum", "-c", "SHA512SUMS", cwd=image_dir).returncode == 0
    assert sh("gpgv", "--keyring", keys["ring"], str(image_dir / "image.tar.zst.asc"),
              str(image_dir / "image.tar.zst")).returncode == 0
    cbody = pointer(pub, keys, "config.txt")
    assert cbody["path"] == "config/1/config.d.tar.gz"
    assert sh("gpgv", "--keyring", keys["ring"], str(pub / "config/1/config.d.tar.gz.asc"),
              str(pub / "config/1/config.d.tar.gz")).returncode == 0
    assert "./10-network" in sh("tar", "-tzf", str(pub / "config/1/config.d.tar.gz")).stdout

    again = module("publish", tmp, args)
    assert not again["changed"] and again["image"]["serial"] == 1

    serials = [1]
    for n, version in enumerate(("20261126T000000Z", "20261127T000000Z"), 2):
        vdir = make_image(b, keys, tmp / "images" / version, extra="release %d\n" % n)
        serials.append(module("publish", tmp, publish_args(b, keys, vdir, version))["image"]["serial"])
        assert pointer(pub, keys)["version"] == version
    assert serials == [1, 2, 3]
    assert (pub / ".gse/serial").read_text() == "3\n"


def test_unsigned_or_corrupt_image_refused_and_not_visible(build, keys):
    b, tmp = build, build["tmp"]
    good = make_image(b, keys, tmp / "images" / "good")
    assert module("publish", tmp, publish_args(b, keys, good, "good"))["changed"]
    pub = tmp / "pub"
    before = (pub / "version.txt").read_bytes()

    unsigned = tmp / "images" / "unsigned"
    shutil.copytree(good, unsigned)
    os.unlink(unsigned / "image.tar.zst.asc")
    corrupt = tmp / "images" / "corrupt"
    shutil.copytree(good, corrupt)
    with open(corrupt / "image.tar.zst", "r+b") as f:
        f.seek(100)
        f.write(b"\0corrupt\0")
    foreign = tmp / "images" / "foreign"  # signed, but by a key outside the publication keyring
    shutil.copytree(good, foreign)
    other = tmp / "other-gnupg"
    other.mkdir(mode=0o700)
    try:
        assert sh("gpg", "--batch", "--homedir", str(other), "--passphrase", "", "--quick-gen-key",
                  "Intruder <x@gse.invalid>", "ed25519", "sign", "never").returncode == 0
        sign = module("sign", tmp, dict(files=[str(foreign / "image.tar.zst")], gnupghome=str(other),
                                        key="x@gse.invalid"))
        assert sign["changed"]
    finally:
        sh("gpgconf", "--homedir", str(other), "--kill", "gpg-agent")

    for name in ("unsigned", "corrupt", "foreign"):
        res = module("publish", tmp, publish_args(b, keys, tmp / "images" / name, name))
        assert res.get("failed"), name
        assert sorted(os.listdir(pub / "images")) == ["good"]
        assert (pub / "version.txt").read_bytes() == before
    assert (pub / ".gse/serial").read_text() == "1\n"

    changed = tmp / "images" / "good-again"
    shutil.copytree(corrupt, changed)
    res = module("publish", tmp, publish_args(b, keys, changed, "good"))
    assert res.get("failed") and "different" in res["msg"]


def test_concurrent_publishers_get_unique_serials(build, keys):
    b, tmp = build, build["tmp"]
    procs = []
    env = dict(os.environ, PYTHONPATH=COLLECTIONS)
    for n in range(6):
        version = "c%d" % n
        # Six different images: identical content would be published once.
        src = make_image(b, keys, tmp / "images" / version, extra=version)
        argfile = tmp / ("pub-%d.json" % n)
        argfile.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": publish_args(b, keys, src, version)}))
        procs.append(subprocess.Popen(module_argv("publish", argfile), stdout=subprocess.PIPE, text=True, env=env,
                                      cwd=str(tmp)))
    results = [json.loads(p.communicate()[0]) for p in procs]
    assert all(r.get("changed") for r in results), results
    serials = sorted(r["image"]["serial"] for r in results)
    assert serials == [1, 2, 3, 4, 5, 6]
    pub = tmp / "pub"
    assert (pub / ".gse/serial").read_text() == "6\n"
    final = pointer(pub, keys)
    assert final["serial"] == "6"
    winner = [r for r in results if r["image"]["serial"] == 6][0]
    assert final["version"] == winner["image"]["version"]
    assert sorted(os.listdir(pub / "images")) == ["c%d" % n for n in range(6)]


def test_ansible_runs_the_chain_then_reports_no_change(build, keys):
    b, tmp = build, build["tmp"]
    img = tmp / "images" / "v1"
    playbook = tmp / "archive.yml"
    playbook.write_text(textwrap.dedent("""\
        - hosts: localhost
          connection: local
          gather_facts: false
          tasks:
            - gse.stateless.root_clean:
                root: "{root}"
                entries: [var/tmp, var/cache/distfiles/*]
                allowed_parents: ["{parent}"]
            - gse.stateless.pack:
                root: "{root}"
                dest: "{img}/image.tar.zst"
                excludes: [usr/share/doc]
            - copy:
                dest: "{img}/build-report.json"
                content: '{{"parts": ["gpartk", "gpartl"]}}'
            - gse.stateless.pack:
                root: "{root}"
                dest: "{img}/image.tar.zst"
                excludes: [usr/share/doc]
                checksum_files: [build-report.json]
            - gse.stateless.sign:
                files: ["{img}/image.tar.zst", "{img}/SHA512SUMS"]
                gnupghome: "{home}"
                key: "{key}"
            - gse.stateless.publish:
                src: "{img}"
                version: v1
                publish_dir: "{pub}"
                default: true
                keyring: "{ring}"
                gnupghome: "{home}"
                signing_key: "{key}"
        """).format(root=b["root"], parent=b["parent"], img=img, pub=tmp / "pub", **keys))
    env = dict(os.environ, ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_COLLECTIONS_PATH=COLLECTIONS,
               ANSIBLE_LOCALHOST_WARNING="false", ANSIBLE_INVENTORY_UNPARSED_WARNING="false")
    ansible = os.path.join(os.path.dirname(sys.executable), "ansible-playbook")

    def play():
        proc = sh(ansible, "-i", "localhost,", "-e", "ansible_python_interpreter=" + sys.executable, str(playbook),
                  env=env, cwd=ROOT)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        recap = proc.stdout[proc.stdout.index("PLAY RECAP"):]
        return int(recap.split("changed=")[1].split()[0])

    assert play() == 6
    assert pointer(tmp / "pub", keys)["version"] == "v1"
    assert play() == 0


def signing_pack_args(b, keys, dest, **kw):
    return dict(dict(root=str(b["root"]), dest=str(dest), sign_key=keys["key"], gnupghome=keys["home"]), **kw)


def test_signature_made_while_packing_verifies_with_gpgv(build, keys):
    b, tmp = build, build["tmp"]
    src = tmp / "images" / "s1"
    src.mkdir(parents=True)
    (src / "build-report.json").write_text('{"version": "s1"}')
    dest = src / "image.tar.zst"
    first = module("pack", tmp, signing_pack_args(b, keys, dest, checksum_files=["build-report.json"]))
    assert first["changed"] and first["signed"] == [str(dest), str(src / "SHA512SUMS")]
    for f in (dest, src / "SHA512SUMS"):
        check = sh("gpgv", "--keyring", keys["ring"], str(f) + ".asc", str(f))
        assert check.returncode == 0, check.stderr
    assert sorted(os.listdir(src)) == [".image.tar.zst.pack.json", "SHA512SUMS", "SHA512SUMS.asc",
                                       "build-report.json", "image.tar.zst", "image.tar.zst.asc"]
    assert not module("pack", tmp, signing_pack_args(b, keys, dest))["changed"]
    # sign takes the signatures over: found, verified with gpgv, not changed.
    sargs = dict(files=[str(dest), str(src / "SHA512SUMS")], gnupghome=keys["home"], key=keys["key"])
    assert not module("sign", tmp, sargs)["changed"]
    published = module("publish", tmp, publish_args(b, keys, src, "s1"))
    assert published.get("changed"), published


def test_failing_gpg_leaves_no_tarball_and_no_signature(build, keys, tmp_path_factory):
    b, tmp = build, build["tmp"]
    dest = tmp / "images" / "f1" / "image.tar.zst"
    unknown = module("pack", tmp, signing_pack_args(b, keys, dest, sign_key="nobody@gse.invalid"))
    assert unknown.get("failed") and "not found" in unknown["msg"] and not dest.parent.exists()

    # A key gpg cannot use unattended (it has a passphrase): gpg fails at the end of the stream.
    home = tmp_path_factory.mktemp("locked")
    os.chmod(home, 0o700)
    assert sh("gpg", "--batch", "--homedir", str(home), "--pinentry-mode", "loopback", "--passphrase", "secret",
              "--quick-gen-key", "Locked <locked@gse.invalid>", "ed25519", "sign", "never").returncode == 0
    try:
        res = module("pack", tmp, signing_pack_args(b, dict(key="locked@gse.invalid", home=str(home)), dest))
    finally:
        sh("gpgconf", "--homedir", str(home), "--kill", "gpg-agent")
    assert res.get("failed") and res["cmd"][0] == "gpg" and res["rc"] != 0, res
    assert os.listdir(dest.parent) == []


@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGKILL"])
def test_interrupted_pack_leaves_no_signature(build, keys, signal_name):
    b, tmp = build, build["tmp"]
    # Incompressible data at zstd's slowest level: the stream lasts long enough to be interrupted.
    (b["root"] / "var/blob").write_bytes(os.urandom(48 << 20))
    dest = tmp / "images" / "i1" / "image.tar.zst"
    argfile = tmp / "pack-interrupted.json"
    argfile.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": signing_pack_args(b, keys, dest, level=19)}))
    proc = subprocess.Popen(module_argv("pack", argfile), env=dict(os.environ, PYTHONPATH=COLLECTIONS),
                            cwd=str(tmp), stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    partial = dest.parent / ".image.tar.zst.partial"
    while proc.poll() is None and not (partial.exists() and partial.stat().st_size > 0):
        time.sleep(0.05)
    assert proc.poll() is None, "pack ended before it could be interrupted"
    proc.send_signal(getattr(signal, signal_name))
    proc.communicate(timeout=120)
    left = sorted(os.listdir(dest.parent))
    assert "image.tar.zst.asc" not in left and "image.tar.zst" not in left
    if signal_name == "SIGINT":
        assert left == []  # cleaned up on the way out
    # The next run starts afresh and signs what it packed.
    assert module("pack", tmp, signing_pack_args(b, keys, dest, level=1))["changed"]
    assert sh("gpgv", "--keyring", keys["ring"], str(dest) + ".asc", str(dest)).returncode == 0
    assert not [n for n in os.listdir(dest.parent) if n.endswith(".partial")]
