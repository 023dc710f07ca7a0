"""publish: exact gpg/gpgv argv, staging and refusal, pointers and serials, idempotency.

gpg and gpgv are replaced by the recorder of fake_gpg.py (a transparent
stand-in signature format) so that the module's decisions can be followed
argv by argv.  tar for the config.d runs for real.
The integration test repeats all of this with real keys.
"""
import hashlib
import json
import os

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gse.stateless.plugins.module_utils import pubtree
from ansible_collections.gse.stateless.plugins.module_utils.checksums import format_sums, parse_sums
from ansible_collections.gse.stateless.plugins.modules import publish
from fake_gpg import MARK, FakeGpg, make_image


def run_module(capsys, monkeypatch, fake, args, check=False):
    monkeypatch.setattr(basic.AnsibleModule, "run_command", lambda self, *a, **kw: fake(self, *a, **kw))
    if check:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args), pytest.raises(SystemExit):
        publish.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def env(tmp_path):
    ring = tmp_path / "keyring.gpg"
    ring.write_text("pub")
    src = tmp_path / "build" / "v1"
    sha = make_image(src)
    args = dict(src=str(src), version="v1", publish_dir=str(tmp_path / "pub"), default=True, keyring=str(ring),
                gnupghome=str(tmp_path / "home"), signing_key="KEY")
    return tmp_path, args, sha


def test_publish_argv_pointer_and_rerun(capsys, monkeypatch, env):
    tmp_path, args, sha = env
    pub, home, ring = tmp_path / "pub", args["gnupghome"], args["keyring"]
    fake = FakeGpg()
    res = run_module(capsys, monkeypatch, fake, args)
    staging = str(pub / "images/.staging-v1")
    assert fake.calls[:2] == [
        ["gpgv", "--status-fd", "1", "--keyring", ring, staging + "/SHA512SUMS.asc", staging + "/SHA512SUMS"],
        ["gpgv", "--status-fd", "1", "--keyring", ring, staging + "/image.tar.zst.asc", staging + "/image.tar.zst"],
    ]
    assert fake.calls[2] == ["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--homedir", home,
                             "--local-user", "KEY", "--clearsign", "--output", str(pub / "version.txt.tmp"),
                             str(pub / ".gse/version.txt.body")]
    check = fake.calls[3]
    assert check[:5] == ["gpgv", "--status-fd", "1", "--keyring", ring] and check[5] == "--output"
    assert check[7] == str(pub / "version.txt.tmp") and len(fake.calls) == 4

    assert res["changed"] and res["image"]["published"] and res["image"]["pointer_moved"]
    assert res["image"]["serial"] == 1
    assert sorted(os.listdir(pub / "images")) == ["v1"]
    assert ".image.tar.zst.pack.json" not in os.listdir(pub / "images/v1")
    body = pubtree.parse_pointer((pub / "version.txt").read_text()[len(MARK):])
    assert body["serial"] == "1" and body["version"] == "v1" and body["sha512"] == sha
    assert body["path"] == "images/v1/image.tar.zst" and body["size"] == "11" and body["compression"] == "zstd"
    assert (pub / ".gse/serial").read_text() == "1\n"
    assert not os.path.exists(pub / "version.txt.tmp") and not os.path.exists(pub / ".gse/version.txt.body")

    again = FakeGpg()
    res2 = run_module(capsys, monkeypatch, again, args)
    assert not res2["changed"] and res2["image"]["serial"] == 1
    assert [c[0] for c in again.calls] == ["gpgv"]  # only the current pointer is read


def test_serial_grows_with_each_default(capsys, monkeypatch, env):
    tmp_path, args, _sha = env
    serials = []
    for n in range(1, 4):
        src = tmp_path / "build" / ("w%d" % n)
        make_image(src, payload=b"image %d" % n)
        res = run_module(capsys, monkeypatch, FakeGpg(), dict(args, src=str(src), version="w%d" % n))
        serials.append(res["image"]["serial"])
    assert serials == [1, 2, 3]
    # Republishing an older version as default moves the pointer forward, never back.
    res = run_module(capsys, monkeypatch, FakeGpg(), dict(args, src=str(tmp_path / "build/w1"), version="w1"))
    assert res["changed"] and not res["image"]["published"] and res["image"]["serial"] == 4


@pytest.mark.parametrize("damage", ["bad_signature", "wrong_sum", "unlisted_file", "missing_asc"])
def test_refused_image_is_not_visible(capsys, monkeypatch, env, damage):
    tmp_path, args, _sha = env
    src = tmp_path / "build" / "bad"
    make_image(src, sig="forged" if damage == "bad_signature" else "good")
    if damage == "wrong_sum":
        (src / "image.tar.zst").write_bytes(b"tampered!!!")
    elif damage == "unlisted_file":
        (src / "vmlinuz").write_bytes(b"kernel")
    elif damage == "missing_asc":
        os.unlink(src / "SHA512SUMS.asc")
    res = run_module(capsys, monkeypatch, FakeGpg(), dict(args, src=str(src), version="bad"))
    assert res["failed"]
    pub = tmp_path / "pub"
    assert os.listdir(pub / "images") == [] and not (pub / "version.txt").exists()
    assert not (pub / ".gse/serial").exists()


def test_same_version_other_content_refused(capsys, monkeypatch, env):
    tmp_path, args, _sha = env
    run_module(capsys, monkeypatch, FakeGpg(), args)
    other = tmp_path / "build" / "v1-other"
    make_image(other, payload=b"other image")
    res = run_module(capsys, monkeypatch, FakeGpg(), dict(args, src=str(other)))
    assert res["failed"] and "different" in res["msg"]
    sums = parse_sums((tmp_path / "pub/images/v1/SHA512SUMS").read_text())
    assert sums["image.tar.zst"] == hashlib.sha512(b"image-bytes").hexdigest()


def test_check_mode_reports_and_writes_nothing(capsys, monkeypatch, env):
    tmp_path, args, _sha = env
    fake = FakeGpg()
    res = run_module(capsys, monkeypatch, fake, args, check=True)
    assert res["changed"] and res["image"]["published"] and res["image"]["serial"] == 1
    assert not (tmp_path / "pub").exists()
    assert not any("--clearsign" in c for c in fake.calls)


def test_config_published_with_own_pointer(capsys, monkeypatch, env):
    tmp_path, args, _sha = env
    conf = tmp_path / "config.d"
    conf.mkdir()
    (conf / "network").write_text("DHCP=yes\n")
    cargs = dict(args, src=None, version=None, default=False, config_dir=str(conf))
    fake = FakeGpg()
    res = run_module(capsys, monkeypatch, fake, cargs)
    pub = tmp_path / "pub"
    staged = str(pub / "config/.staging-1/config.d.tar.gz")
    assert ["gpg", "--batch", "--yes", "--pinentry-mode", "loopback", "--homedir", args["gnupghome"],
            "--local-user", "KEY", "--armor", "--detach-sign", "--output", staged + ".asc", staged] in fake.calls
    assert res["changed"] and res["config"]["serial"] == 1
    assert sorted(os.listdir(pub / "config/1")) == ["config.d.tar.gz", "config.d.tar.gz.asc"]
    body = pubtree.parse_pointer((pub / "config.txt").read_text()[len(MARK):])
    assert body["path"] == "config/1/config.d.tar.gz" and body["compression"] == "gzip"
    # Same content (even with a new mtime): not changed.
    os.utime(conf / "network", (1, 1))
    assert not run_module(capsys, monkeypatch, FakeGpg(), cargs)["changed"]
    (conf / "network").write_text("DHCP=no\n")
    res3 = run_module(capsys, monkeypatch, FakeGpg(), cargs)
    assert res3["changed"] and res3["config"]["serial"] == 2 and (pub / ".gse/config-serial").read_text() == "2\n"
    assert not (pub / ".gse/serial").exists()  # the image pointer's counter is its own


def test_identical_content_under_a_new_version_publishes_nothing(capsys, monkeypatch, env):
    tmp_path, args, sha = env
    pub, ring = tmp_path / "pub", args["keyring"]
    assert run_module(capsys, monkeypatch, FakeGpg(), args)["changed"]
    pointer = (pub / "version.txt").read_bytes()
    src = tmp_path / "build" / "v2"
    make_image(src)  # the same bytes
    fake = FakeGpg()
    res = run_module(capsys, monkeypatch, fake, dict(args, src=str(src), version="v2"))
    assert not res["changed"] and res["msg"] == "unchanged: v1 is already published"
    assert res["image"]["unchanged"] and res["image"]["requested"] == "v2" and res["image"]["serial"] == 1
    # The current pointer, then the new image checked in place before it is called unchanged.
    assert fake.calls[0][:6] == ["gpgv", "--status-fd", "1", "--keyring", ring, "--output"]
    assert fake.calls[1:] == [
        ["gpgv", "--status-fd", "1", "--keyring", ring, str(src / "SHA512SUMS.asc"), str(src / "SHA512SUMS")],
        ["gpgv", "--status-fd", "1", "--keyring", ring, str(src / "SHA512SUMS.asc"), str(src / "SHA512SUMS")],
        ["gpgv", "--status-fd", "1", "--keyring", ring, str(src / "image.tar.zst.asc"), str(src / "image.tar.zst")],
    ]
    assert sorted(os.listdir(pub / "images")) == ["v1"] and (pub / "version.txt").read_bytes() == pointer

    # A damaged copy of the same content is refused, not called unchanged.
    bad = tmp_path / "build" / "v3"
    make_image(bad, sig="forged")
    res = run_module(capsys, monkeypatch, FakeGpg(), dict(args, src=str(bad), version="v3"))
    assert res["failed"] and "image.tar.zst" in res["msg"]


def test_public_key_published_armored_and_replaced_when_it_changes(capsys, monkeypatch, env):
    tmp_path, args, _sha = env
    pub = tmp_path / "pub"
    res = run_module(capsys, monkeypatch, FakeGpg(), args)
    assert res["public_key"]["changed"]
    text = (pub / "publication-key.asc").read_text()
    assert text.startswith("-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n") and "cHVi\n" in text  # base64 of "pub"
    assert not run_module(capsys, monkeypatch, FakeGpg(), args)["changed"]
    with open(args["keyring"], "w") as f:
        f.write("pub2")
    res = run_module(capsys, monkeypatch, FakeGpg(), args)
    assert res["changed"] and res["public_key"]["changed"] and not res["image"]["published"]
    assert "cHViMg==\n" in (pub / "publication-key.asc").read_text()


def add_controller(d, kernel=b"kernel-bytes", initramfs=b"initramfs-bytes", only=None):
    """vmlinuz and initramfs in the image directory, covered by SHA512SUMS (only: just that one)."""
    for name, data in (("vmlinuz", kernel), ("initramfs", initramfs)):
        if only in (None, name):
            (d / name).write_bytes(data)
    names = [n for n in sorted(os.listdir(d)) if n in ("image.tar.zst", "build-report.json", "vmlinuz", "initramfs")]
    (d / "SHA512SUMS").write_text(format_sums({n: hashlib.sha512((d / n).read_bytes()).hexdigest() for n in names}))


def test_controller_pair_is_named_by_the_pointer_and_boot_script(capsys, monkeypatch, env):
    tmp_path, args, sha = env
    pub = tmp_path / "pub"
    add_controller(tmp_path / "build" / "v1")
    res = run_module(capsys, monkeypatch, FakeGpg(), dict(args, boot_cmdline="root=gse console=ttyS0"))
    assert res["changed"] and res["image"]["pointer_moved"], res
    body = pubtree.parse_pointer((pub / "version.txt").read_text()[len(MARK):])
    assert body["format"] == "1"  # clients of format 1 ignore the added keys
    for key, data in (("kernel", b"kernel-bytes"), ("initramfs", b"initramfs-bytes")):
        name = "vmlinuz" if key == "kernel" else "initramfs"
        assert body[key] == "images/v1/" + name
        assert body[key + "_sha512"] == hashlib.sha512(data).hexdigest()
        assert body[key + "_size"] == str(len(data))
        assert (pub / "images/v1" / name).read_bytes() == data
    script = (pub / "boot.ipxe").read_text()
    assert script.startswith("#!ipxe\n")
    assert "kernel images/v1/vmlinuz initrd=initramfs root=gse console=ttyS0\n" in script
    assert "initrd images/v1/initramfs\n" in script and script.endswith("boot\n")
    assert res["image"]["boot_script"] == str(pub / "boot.ipxe")

    # Published again, unchanged: neither the pointer nor the script moves.
    res2 = run_module(capsys, monkeypatch, FakeGpg(), dict(args, boot_cmdline="root=gse console=ttyS0"))
    assert not res2["changed"] and "boot_script" not in res2["image"]


@pytest.mark.parametrize("only", ["vmlinuz", "initramfs"])
def test_half_a_controller_is_refused(capsys, monkeypatch, env, only):
    tmp_path, args, _sha = env
    add_controller(tmp_path / "build" / "v1", only=only)
    res = run_module(capsys, monkeypatch, FakeGpg(), args)
    assert res.get("failed") and "published as a pair" in res["msg"], res
    assert not os.path.exists(tmp_path / "pub" / "version.txt")


def test_image_without_controller_writes_no_boot_script(capsys, monkeypatch, env):
    tmp_path, args, _sha = env
    res = run_module(capsys, monkeypatch, FakeGpg(), args)
    assert res["image"]["pointer_moved"]
    body = pubtree.parse_pointer((tmp_path / "pub" / "version.txt").read_text()[len(MARK):])
    assert "kernel" not in body and not os.path.exists(tmp_path / "pub" / "boot.ipxe")


def add_tarball_index(d, data=b"blob index bytes", sig="good"):
    """image.tar.zst.caibx with its signature, covered by SHA512SUMS (its bytes are not read by publish)."""
    (d / "image.tar.zst.caibx").write_bytes(data)
    (d / "image.tar.zst.caibx.asc").write_text(sig)
    names = [n for n in sorted(os.listdir(d)) if n in ("image.tar.zst", "build-report.json", "image.tar.zst.caibx")]
    (d / "SHA512SUMS").write_text(format_sums({n: hashlib.sha512((d / n).read_bytes()).hexdigest() for n in names}))


def test_tarball_index_is_published_and_named_by_the_pointer(capsys, monkeypatch, env):
    tmp_path, args, sha = env
    pub, ring = tmp_path / "pub", args["keyring"]
    add_tarball_index(tmp_path / "build" / "v1")
    fake = FakeGpg()
    res = run_module(capsys, monkeypatch, fake, args)
    assert res["changed"] and res["image"]["pointer_moved"], res
    staging = str(pub / "images/.staging-v1")
    assert ["gpgv", "--status-fd", "1", "--keyring", ring, staging + "/image.tar.zst.caibx.asc",
            staging + "/image.tar.zst.caibx"] in fake.calls
    assert (pub / "images/v1/image.tar.zst.caibx").read_bytes() == b"blob index bytes"
    assert (pub / "images/v1/image.tar.zst.caibx.asc").exists()
    body = pubtree.parse_pointer((pub / "version.txt").read_text()[len(MARK):])
    assert body["format"] == "1" and body["sha512"] == sha  # additive keys: the format stays
    assert body["tarball_index"] == "images/v1/image.tar.zst.caibx"
    assert body["tarball_index_sha512"] == hashlib.sha512(b"blob index bytes").hexdigest()
    assert body["tarball_index_size"] == str(len(b"blob index bytes"))
    assert res["image"]["tarball_index_sha512"] == body["tarball_index_sha512"]
    assert not run_module(capsys, monkeypatch, FakeGpg(), args)["changed"]


def test_tarball_index_without_its_signature_is_refused(capsys, monkeypatch, env):
    tmp_path, args, _sha = env
    src = tmp_path / "build" / "v1"
    add_tarball_index(src)
    (src / "image.tar.zst.caibx.asc").unlink()
    res = run_module(capsys, monkeypatch, FakeGpg(), args)
    assert res["failed"] and "image.tar.zst.caibx.asc" in res["msg"], res
    assert not os.path.exists(tmp_path / "pub" / "version.txt")
    src2 = tmp_path / "build" / "v2"
    make_image(src2)
    add_tarball_index(src2, sig="forged")
    res = run_module(capsys, monkeypatch, FakeGpg(), dict(args, src=str(src2), version="v2"))
    assert res["failed"] and not os.path.exists(tmp_path / "pub" / "version.txt")


def test_same_tarball_with_an_index_moves_a_pointer_without_one(capsys, monkeypatch, env):
    """An image published before its blob index existed: identical content with one is published anew."""
    tmp_path, args, sha = env
    pub = tmp_path / "pub"
    assert run_module(capsys, monkeypatch, FakeGpg(), args)["image"]["serial"] == 1
    src = tmp_path / "build" / "v2"
    make_image(src)
    add_tarball_index(src)
    res = run_module(capsys, monkeypatch, FakeGpg(), dict(args, src=str(src), version="v2"))
    assert res["changed"] and res["image"]["published"] and res["image"]["serial"] == 2, res
    body = pubtree.parse_pointer((pub / "version.txt").read_text()[len(MARK):])
    assert body["version"] == "v2" and body["sha512"] == sha
    assert body["tarball_index"] == "images/v2/image.tar.zst.caibx"
    # Then the same content with the same index under yet another version: unchanged.
    src3 = tmp_path / "build" / "v3"
    make_image(src3)
    add_tarball_index(src3)
    res3 = run_module(capsys, monkeypatch, FakeGpg(), dict(args, src=str(src3), version="v3"))
    assert not res3["changed"] and res3["image"]["unchanged"] and res3["image"]["version"] == "v2"
