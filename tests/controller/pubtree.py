"""Publication trees for the controller tests, written as docs/publication.md says.

A test key (ed25519, no passphrase) signs everything in a GNUPGHOME the
caller owns.  Images are small busybox roots (see testimage.py).  Format 2
adds the casync index of the image root (images/<version>/image.caidx,
signed) and the chunk store shared by all versions (store/), made with the
real casync.
"""
import io
import os
import stat
import subprocess
import tarfile
import tempfile

from tests.fixture.digest import sha512  # noqa: F401  (pubtree.sha512: the tests' and benches' name for it)


def gpg(gnupghome, *args, **kw):
    return subprocess.run(["gpg", "--batch", "--quiet", "--homedir", gnupghome, *args],
                          check=True, capture_output=True, **kw)


def make_key(gnupghome, uid="GSE test <gse-test@localhost>"):
    """Create the signing key; return the path of its exported public keyring."""
    os.makedirs(gnupghome, mode=0o700, exist_ok=True)
    gpg(gnupghome, "--pinentry-mode", "loopback", "--passphrase", "",
        "--quick-gen-key", uid, "ed25519", "sign", "never")
    keyring = os.path.join(gnupghome, "gse.gpg")
    with open(keyring, "wb") as f:
        f.write(gpg(gnupghome, "--export").stdout)
    return keyring


def detach_sign(gnupghome, path):
    gpg(gnupghome, "--yes", "--armor", "--detach-sign", "--output", path + ".asc", path)


def clearsign_pointer(gnupghome, dest, fields):
    """Write a clearsigned `key: value` pointer to dest (via .tmp + rename)."""
    body = "".join(f"{k}: {v}\n" for k, v in fields.items())
    tmp = dest + ".tmp"
    gpg(gnupghome, "--yes", "--clearsign", "--output", tmp, input=body.encode())
    os.replace(tmp, dest)


def pointer_fields(serial, version, relpath, tree, compression="zstd"):
    full = os.path.join(tree, relpath)
    return {
        "format": 1, "serial": serial, "version": version, "path": relpath,
        "sha512": sha512(full), "size": os.path.getsize(full),
        "compression": compression, "published": "2026-11-25T19:20:01Z",
    }


def root_bytes(root):
    """What the unpacked root needs (docs/publication.md): the apparent sizes
    of its regular files plus 4096 per directory, symlink or special entry."""
    total = 4096
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            st = os.lstat(os.path.join(dirpath, name))
            total += st.st_size if stat.S_ISREG(st.st_mode) else 4096
    return total


def make_index(tree, version, root):
    """images/<version>/image.caidx of root, its chunks added to store/
    (chunks already there are kept: they are immutable)."""
    d = os.path.join(tree, "images", version)
    os.makedirs(d, exist_ok=True)
    idx = os.path.join(d, "image.caidx")
    subprocess.run(["casync", "make", f"--store={os.path.join(tree, 'store')}", idx, root],
                   check=True, capture_output=True)
    return idx


def make_tarball_index(tarball, chunk_size="65536:262144:1048576"):
    """<tarball>.caibx: the casync blob index of the tarball, with part K's
    command line (caindex.blob_index_argv: SHA-256 chunk ids); smaller
    chunks than part K's (1/4/16 MiB) unless chunk_size is None, so that a
    test image of a few MiB has enough of them to keep several in flight.
    casync's store of the chunks is thrown away: clients fetch the
    tarball's byte ranges."""
    from ansible_collections.gse.stateless.plugins.module_utils import caindex
    idx = tarball + ".caibx"
    with tempfile.TemporaryDirectory() as store:
        argv = caindex.blob_index_argv(store, idx, tarball)
        if chunk_size:
            argv = [a if not a.startswith("--chunk-size=") else "--chunk-size=" + chunk_size for a in argv]
        subprocess.run(argv, check=True, stdout=subprocess.DEVNULL)
    return idx


def add_image(gnupghome, tree, version, tarball, root=None, pair=None, tarball_index=False):
    """images/<version>/: image.tar.zst, its signature, SHA512SUMS(.asc);
    with root (format 2): image.caidx and its signature too, the chunks in
    store/; with pair ({"kernel", "initrd"} paths): the image's controller
    as vmlinuz and initramfs, covered by SHA512SUMS."""
    d = os.path.join(tree, "images", version)
    os.makedirs(d, exist_ok=True)
    if pair:
        _copy(pair["kernel"], os.path.join(d, "vmlinuz"))
        _copy(pair["initrd"], os.path.join(d, "initramfs"))
    img = os.path.join(d, "image.tar.zst")
    os.replace(tarball, img) if os.path.dirname(tarball) == d else _copy(tarball, img)
    detach_sign(gnupghome, img)
    if tarball_index:
        detach_sign(gnupghome, make_tarball_index(img, **({} if tarball_index is True else tarball_index)))
    if root is not None:
        detach_sign(gnupghome, make_index(tree, version, root))
        # Kept beside the tree (not served): set_version signs it.
        os.makedirs(tree + ".meta", exist_ok=True)
        with open(os.path.join(tree + ".meta", f"{version}.root_bytes"), "w") as f:
            f.write(str(root_bytes(root)))
    with open(os.path.join(d, "build-report.json"), "w") as f:
        # root_bytes as part K reports it: the publication module reads it back (a rollback).
        extra = ', "root_bytes": %s' % root_bytes(root) if root is not None else ""
        f.write('{"version": "%s"%s}\n' % (version, extra))
    # Every file but SHA512SUMS itself and the signatures (docs/publication.md).
    names = sorted(n for n in os.listdir(d) if not n.startswith("SHA512SUMS") and not n.endswith(".asc"))
    with open(os.path.join(d, "SHA512SUMS"), "w") as f:
        for n in names:
            f.write(f"{sha512(os.path.join(d, n))}  {n}\n")
    detach_sign(gnupghome, os.path.join(d, "SHA512SUMS"))
    return f"images/{version}/image.tar.zst"


def index_fields(tree, version):
    """The format-2 keys of version.txt for images/<version> (which
    add_image made with a root)."""
    idx = os.path.join(tree, "images", version, "image.caidx")
    with open(os.path.join(tree + ".meta", f"{version}.root_bytes")) as f:
        rb = f.read().strip()
    return {"format": 2, "index": f"images/{version}/image.caidx", "index_sha512": sha512(idx),
            "index_size": os.path.getsize(idx), "store": "store", "root_bytes": rb}


def set_version(gnupghome, tree, serial, version, relpath=None, **override):
    """version.txt for version: format 2 when images/<version> has an index;
    override replaces (or, set to None, drops) fields."""
    relpath = relpath or f"images/{version}/image.tar.zst"
    fields = pointer_fields(serial, version, relpath, tree)
    if os.path.exists(os.path.join(tree, "images", version, "image.caidx")):
        fields.update(index_fields(tree, version))
    tidx = os.path.join(tree, "images", version, "image.tar.zst.caibx")
    if os.path.exists(tidx):
        fields.update({"tarball_index": f"images/{version}/image.tar.zst.caibx", "tarball_index_sha512": sha512(tidx),
                       "tarball_index_size": os.path.getsize(tidx)})
    for key, name in (("kernel", "vmlinuz"), ("initramfs", "initramfs")):
        # The controller's keys, as part L adds them (docs/publication.md).
        path = os.path.join(tree, "images", version, name)
        if os.path.exists(path):
            fields.update({key: f"images/{version}/{name}", key + "_sha512": sha512(path),
                           key + "_size": os.path.getsize(path)})
    fields.update(override)
    fields = {k: v for k, v in fields.items() if v is not None}
    clearsign_pointer(gnupghome, os.path.join(tree, "version.txt"), fields)
    return fields


def add_config(gnupghome, tree, serial, files):
    """config/<serial>/config.d.tar.gz from {relative path: text or (text,
    mode)} + config.txt."""
    d = os.path.join(tree, "config", str(serial))
    os.makedirs(d, exist_ok=True)
    path = os.path.join(d, "config.d.tar.gz")
    with tarfile.open(path, "w:gz") as tar:
        for name, text in sorted(files.items()):
            text, mode = text if isinstance(text, tuple) else (text, 0o644)
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = mode
            tar.addfile(info, io.BytesIO(data))
    detach_sign(gnupghome, path)
    rel = f"config/{serial}/config.d.tar.gz"
    clearsign_pointer(gnupghome, os.path.join(tree, "config.txt"),
                      pointer_fields(serial, serial, rel, tree, compression="gzip"))
    return rel


def _copy(src, dst):
    with open(src, "rb") as a, open(dst, "wb") as b:
        while True:
            block = a.read(1 << 20)
            if not block:
                break
            b.write(block)
