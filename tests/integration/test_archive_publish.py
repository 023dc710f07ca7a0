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


@pytest.mark.parametrize("kind", ["rsa", "subkey", "p256"])
def test_one_digest_signature_verifies_with_gpgv(build, tmp_path_factory, kind):
    """The tarball's signature is made from the stream's own SHA-512 by gpg-agent (RSA, EdDSA); gpg signs
    the stream itself for other algorithms.  Either way gpgv accepts it, by the key gpg would choose."""
    b, tmp = build, build["tmp"]
    home = tmp_path_factory.mktemp("gnupg-" + kind)
    os.chmod(home, 0o700)
    gpg = ["gpg", "--batch", "--homedir", str(home), "--passphrase", ""]
    algo = {"rsa": "rsa2048", "subkey": "ed25519", "p256": "nistp256"}[kind]
    assert sh(*gpg, "--quick-gen-key", "K <k@gse.invalid>", algo, "sign", "never").returncode == 0
    listing = sh("gpg", "--homedir", str(home), "--with-colons", "--list-keys", "k@gse.invalid").stdout
    primary = [line.split(":")[9] for line in listing.splitlines() if line.startswith("fpr")][0]
    if kind == "subkey":  # gpg signs with the newest signing subkey
        assert sh(*gpg, "--pinentry-mode", "loopback", "--quick-add-key", primary, "ed25519", "sign",
                  "never").returncode == 0
    ring = home / "ring.gpg"
    assert sh("gpg", "--homedir", str(home), "--output", str(ring), "--export", primary).returncode == 0
    try:
        dest = tmp / "images" / kind / "image.tar.zst"
        res = module("pack", tmp, signing_pack_args(b, dict(key="k@gse.invalid", home=str(home)), dest))
    finally:
        sh("gpgconf", "--homedir", str(home), "--kill", "gpg-agent")
    assert res["changed"] and res["sign_method"] == ("stream" if kind == "p256" else "digest"), res
    check = sh("gpgv", "--status-fd", "1", "--keyring", str(ring), str(dest) + ".asc", str(dest))
    assert check.returncode == 0, check.stderr
    validsig = [line.split() for line in check.stdout.splitlines() if "VALIDSIG" in line][0]
    assert validsig[-1] == primary and (validsig[2] != primary) == (kind == "subkey")
    assert validsig[9] == "10" or kind == "p256"  # SHA-512: the digest of SHA512SUMS


def test_failing_gpg_leaves_no_tarball_and_no_signature(build, keys, tmp_path_factory):
    b, tmp = build, build["tmp"]
    dest = tmp / "images" / "f1" / "image.tar.zst"
    unknown = module("pack", tmp, signing_pack_args(b, keys, dest, sign_key="nobody@gse.invalid"))
    assert unknown.get("failed") and "not found" in unknown["msg"] and not dest.parent.exists()

    # A key gpg cannot use unattended (it has a passphrase): refused before anything is packed.
    home = tmp_path_factory.mktemp("locked")
    os.chmod(home, 0o700)
    assert sh("gpg", "--batch", "--homedir", str(home), "--pinentry-mode", "loopback", "--passphrase", "secret",
              "--quick-gen-key", "Locked <locked@gse.invalid>", "ed25519", "sign", "never").returncode == 0
    try:
        res = module("pack", tmp, signing_pack_args(b, dict(key="locked@gse.invalid", home=str(home)), dest))
    finally:
        sh("gpgconf", "--homedir", str(home), "--kill", "gpg-agent")
    assert res.get("failed") and "passphrase" in res["msg"] and res["cmd"][:2] == ["gpg-agent", "KEYINFO"], res
    assert not dest.parent.exists()


# A gate in front of a real program of the pipeline.  At the gate the shim
# writes its pid to $GATE/ready and waits until $GATE/open exists.
# - zstd, "before": stopped before it reads anything, so pack waits in the
#   middle of the stream; "after": the whole compressed stream has been
#   written, only the end of it (zstd's exit) is held back, so pack has hashed
#   every byte and would sign next.
# - gpg signing the stream itself (keys that gpg-agent does not sign a digest
#   for here; its data comes on stdin: the last two arguments are --output
#   FILE), "after": it holds the whole stream and would sign next.
# The pipeline stands still at a known point when the signal is sent: no
# timing decides what the test sees.  Every other call passes through.
GATED = r"""#!/bin/sh
gate() {
    echo $$ > "$GATE/ready.tmp" && mv "$GATE/ready.tmp" "$GATE/ready"
    while [ ! -e "$GATE/open" ]; do sleep 0.05; done
}
case "$0" in
*/zstd)
    [ "$GATE_AT" = before ] && gate
    %(zstd)s "$@" || exit
    [ "$GATE_AT" = after ] && gate
    exit 0 ;;
esac
prev= last=
for a; do prev=$last; last=$a; done
case " $* " in *" --detach-sign "*) [ "$prev" = --output ] && stream=1 ;; esac
[ -n "$stream" ] || exec %(gpg)s "$@"
cat > "$GATE/data"
gate
exec %(gpg)s "$@" < "$GATE/data"
"""


def wait_for(predicate, what, seconds=120):
    deadline = time.monotonic() + seconds
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting for " + what
        time.sleep(0.05)


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open("/proc/%d/stat" % pid) as f:  # a zombie has finished
        return f.read().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture(scope="module")
def ecdsa_keys(tmp_path_factory):
    """A NIST P-256 key: gpg-agent is not asked to sign a digest for it, gpg signs the stream itself."""
    home = tmp_path_factory.mktemp("gnupg-ecdsa")
    os.chmod(home, 0o700)
    assert sh("gpg", "--batch", "--homedir", str(home), "--passphrase", "", "--quick-gen-key",
              "GSE Test P-256 <p256@gse.invalid>", "nistp256", "sign", "never").returncode == 0
    ring = home / "publication.gpg"
    assert sh("gpg", "--batch", "--homedir", str(home), "--output", str(ring), "--export",
              "p256@gse.invalid").returncode == 0
    yield dict(home=str(home), key="p256@gse.invalid", ring=str(ring))
    sh("gpgconf", "--homedir", str(home), "--kill", "gpg-agent")


@pytest.mark.parametrize("gated,gate_at", [("zstd", "before"), ("zstd", "after"), ("gpg", "after")])
@pytest.mark.parametrize("signal_name", ["SIGINT", "SIGTERM", "SIGKILL"])
def test_interrupted_pack_leaves_no_signature(build, keys, ecdsa_keys, signal_name, gated, gate_at):
    b, tmp = build, build["tmp"]
    keys = ecdsa_keys if gated == "gpg" else keys
    # Incompressible: the compressed stream is far larger than a pipe's buffer.
    (b["root"] / "var/blob").write_bytes(os.urandom(4 << 20))
    dest = tmp / "images" / "i1" / "image.tar.zst"
    bindir, gate = tmp / "gated-bin", tmp / "gate"
    bindir.mkdir()
    gate.mkdir()
    shim = bindir / gated
    shim.write_text(GATED % dict(gpg=shutil.which("gpg"), zstd=shutil.which("zstd")))
    shim.chmod(0o755)
    argfile = tmp / "pack-interrupted.json"
    argfile.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": signing_pack_args(b, keys, dest, level=1)}))
    env = dict(os.environ, PYTHONPATH=COLLECTIONS, PATH="%s:%s" % (bindir, os.environ["PATH"]), GATE=str(gate),
               GATE_AT=gate_at)
    # SIGINT at its default: a suite started in the background (nohup, a
    # shell's &) hands its children SIGINT ignored, and an ignored signal
    # stays ignored across exec.
    proc = subprocess.Popen(module_argv("pack", argfile), env=env, cwd=str(tmp), stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    wait_for(lambda: (gate / "ready").exists() or proc.poll() is not None, "%s at the gate" % gated)
    assert proc.poll() is None, proc.communicate()
    held = int((gate / "ready").read_text())
    proc.send_signal(getattr(signal, signal_name))
    # Open the gate at once: a pack (or gpg) that went on after the signal would sign now.
    (gate / "open").touch()
    out, err = proc.communicate(timeout=120)
    assert proc.returncode != 0, out
    wait_for(lambda: not alive(held), "the gated %s to end" % gated)
    left = sorted(os.listdir(dest.parent))
    assert "image.tar.zst.asc" not in left and "image.tar.zst" not in left
    assert ".image.tar.zst.asc.partial" not in left  # no signature was finished
    if signal_name != "SIGKILL":
        assert left == []  # cleaned up on the way out
    # The next run (no gate) starts afresh and signs what it packed.
    assert module("pack", tmp, signing_pack_args(b, keys, dest, level=1))["changed"]
    assert sh("gpgv", "--keyring", keys["ring"], str(dest) + ".asc", str(dest)).returncode == 0
    assert not [n for n in os.listdir(dest.parent) if n.endswith(".partial")]
