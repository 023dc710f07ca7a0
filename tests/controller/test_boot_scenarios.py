"""Boot clients in QEMU (TCG) against a publication tree served by nginx on
loopback, and check the serial console and the disk afterwards.

The scenarios share one client disk and run in order, as one client's life:
blank disk -> first install -> no new version (backup made) -> refused
images and pointers (corrupt, truncated, bad signature, forged by an unknown
key, cut; a refused image is not downloaded again at the next boot) ->
update with a new config.d -> unhealthy version -> fallback -> replayed
older pointer -> server down -> server errors -> power cut while writing ->
recovery.
"""
import os
import subprocess

import pytest

import pubtree
import vm
from client import Client, booted, loopback_http


@pytest.fixture(scope="module")
def client(controller, signing, tmp_path_factory):
    return Client(controller, signing, str(tmp_path_factory.mktemp("client")))


def test_first_boot_on_blank_disk(client):
    client.publish("v1")
    out, secs, rc = client.boot()
    assert "gse: blank disk /dev/vda" in out
    assert "gse: installed v1 (serial 1) on /dev/vda2" in out
    assert booted(out) == "v1"
    # The booted system: read-only root, tmpfs /etc (seeded), /var/log, /tmp.
    assert "GSETEST mount / ext4 ro," in out
    for d in ("/etc", "/var/log", "/tmp"):
        assert f"GSETEST mount {d} tmpfs rw" in out
    assert "GSETEST root readonly" in out
    # The state area is read-only to the booted system but for health/.
    assert "GSETEST state readonly" in out and "GSETEST startup recorded" in out
    assert "GSETEST etc-seed=seeded-v1" in out
    # Each tmpfs has the image directory's mode and owner.
    assert "GSETEST mode /tmp 1777 0:0" in out and "GSETEST mode /etc 755 0:0" in out
    assert "GSETEST shutdown recorded" in out
    assert vm.by_label(client.disk) == {"GSESTATE": None, "SYSFS": "v1", "BACKUPFS": None}
    assert vm.state_file(client.disk, "health/cycle").strip() == "version=v1"


def test_no_new_version_makes_backup_after_healthy_cycle(client):
    out, secs, rc = client.boot()
    assert "gse: version: v1 (serial 1) is installed, no new version" in out
    assert "gse: health: last life cycle of v1 healthy" in out
    assert "refreshing BACKUPFS" in out
    assert booted(out) == "v1"
    assert vm.by_label(client.disk) == {"GSESTATE": None, "SYSFS": "v1", "BACKUPFS": "v1"}


@pytest.fixture(scope="module")
def stranger(tmp_path_factory):
    """A GNUPGHOME whose key the controller does not trust."""
    home = str(tmp_path_factory.mktemp("stranger"))
    pubtree.make_key(home, uid="Stranger <stranger@localhost>")
    yield home
    subprocess.run(["gpgconf", "--homedir", home, "--kill", "all"], check=False)


# A pointer that is refused must not raise the highest serial this client
# accepts (or a forged pointer with a huge serial would lock out every genuine
# one); those damages leave `serial` as it was.
POINTER_DAMAGES = ("badsig", "forged", "cut")


@pytest.mark.parametrize("damage, reason", [
    ("corrupt", "image refused: SHA512 mismatch"),
    ("truncated", "image refused: size"),
    ("badsig", "version refused: version.txt: bad signature"),
    ("forged", "version refused: version.txt: unknown key "),
    ("cut", "version refused: version.txt: no signature (not signed or truncated)"),
    ("sums", "image refused: SHA512SUMS signature: bad signature"),
])
def test_damaged_publication_is_refused(client, stranger, damage, reason):
    serial_before = vm.state_file(client.disk, "serial")
    image = client.publish(f"bad-{damage}")
    if damage == "corrupt":
        # Same size, one byte changed after the pointer was signed.
        with open(image, "r+b") as f:
            f.seek(os.path.getsize(image) // 2)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0xFF]))
    elif damage == "truncated":
        with open(image, "r+b") as f:
            f.truncate(os.path.getsize(image) - 4096)
    elif damage == "badsig":
        p = os.path.join(client.tree, "version.txt")
        text = open(p).read().replace(f"version: bad-{damage}", "version: bad-forged")
        open(p, "w").write(text)
    elif damage == "forged":
        # A well-formed pointer to a published image, with a serial far
        # above any genuine one, signed by a key the controller does not hold.
        pubtree.set_version(stranger, client.tree, 10 ** 30, f"bad-{damage}")
    elif damage == "cut":
        # An upload that stopped half-way.
        p = os.path.join(client.tree, "version.txt")
        data = open(p, "rb").read()
        open(p, "wb").write(data[:len(data) // 2])
    elif damage == "sums":
        sums = os.path.join(os.path.dirname(image), "SHA512SUMS")
        with open(sums, "a") as f:
            f.write("0" * 128 + "  extra\n")
    out, secs, rc = client.boot()
    assert reason in out
    assert booted(out) == "v1"
    labels = vm.by_label(client.disk)
    assert labels["SYSFS"] == "v1"
    assert f"bad-{damage}" not in labels.values()
    assert reason in vm.state_file(client.disk, "log/controller.log")
    if damage in POINTER_DAMAGES:
        assert vm.state_file(client.disk, "serial") == serial_before
        assert "gse: installing" not in out
    if damage in ("corrupt", "truncated"):
        # The refusal names the bytes received; the signed image is not
        # blacklisted but backs off: the next boot does not fetch it, the
        # one after tries again.
        refused = vm.state_file(client.disk, "refused").splitlines()[-1]
        assert f"bad-{damage} signed=" in refused and " digest: received " in refused
        signed = refused.split("signed=", 1)[1].split()[0]
        assert signed not in refused.split(" digest: ", 1)[1]
        out, secs, rc = client.boot()
        assert f"gse: version: the image of bad-{damage} failed 1 time(s), next attempt after 1 more boot(s)" in out
        assert "gse: streaming" not in out
        assert booted(out) == "v1"


def test_update_with_new_config(client):
    client.publish("v2")
    pubtree.add_config(client.gnupghome, client.tree, 1, {
        "controller.conf": "GSE_TMPFS_EXTRA=/run\n",
        "rootfs/etc/gse-test-config": "from-config-1\n",
        "runlevels": "add gse-health boot\n",
    })
    out, secs, rc = client.boot()
    assert "gse: config.d: serial 1 fetched and exported" in out
    assert "gse: installed v2 (serial" in out
    assert booted(out) == "v2"
    assert "GSETEST config=from-config-1" in out
    assert "gse: tmpfs: /run" in out
    # v1 completed a healthy cycle: it is kept as the backup.
    assert vm.by_label(client.disk) == {"GSESTATE": None, "SYSFS": "v2", "BACKUPFS": "v1"}


def test_unhealthy_cycle_falls_back_and_is_not_fetched_again(client):
    client.publish("v3", behaviour="crash")
    out, secs, rc = client.boot()
    assert booted(out) == "v3" and "GSETEST crashing" in out
    assert vm.by_label(client.disk) == {"GSESTATE": None, "SYSFS": "v3", "BACKUPFS": "v2"}
    out, secs, rc = client.boot()
    assert "health: last life cycle of v3 unhealthy: no healthy shutdown recorded" in out
    assert booted(out) == "v2"
    assert vm.by_label(client.disk) == {"GSESTATE": None, "SYSFS": "v2", "DEPRIVED": "v3"}
    assert vm.state_file(client.disk, "deprived").split() == ["v3"]
    out, secs, rc = client.boot()
    assert "gse: version: v3 was deprived on this client, not fetched again" in out
    assert booted(out) == "v2"


def test_replayed_older_pointer_is_refused(client):
    pubtree.set_version(client.gnupghome, client.tree, 1, "v1")
    out, secs, rc = client.boot()
    assert "version refused: serial 1 (v1) is older than the accepted" in out
    assert booted(out) == "v2"


def test_server_down_boots_offline(client):
    out, secs, rc = client.boot(server=False)
    assert "gse: network: server http://10.0.2.2:" in out and "unreachable" in out
    assert "offline boot: fetch, version check and export skipped" in out
    assert booted(out) == "v2"


def test_server_errors_boot_the_installed_system(client):
    with loopback_http(error_status=503, error_prefix="/") as port:
        out, secs, rc = client.boot(port=port)
    assert "gse: network: server http://10.0.2.2:" in out and "reachable" in out
    assert "gse: WARNING: fetch config.txt: HTTP 503 from the server" in out
    assert "gse: WARNING: version check failed: version.txt: HTTP 503 from the server" in out
    assert booted(out) == "v2"
    assert vm.by_label(client.disk)["SYSFS"] == "v2"


def test_power_cut_while_writing_then_recovery(client):
    client.publish("v4", payload=24 << 20)
    out, secs, rc = client.boot(limit_rate="2m", kill_on="gse: streaming images/v4/", kill_after=3.0)
    assert "gse: streaming images/v4/" in out and booted(out) is None
    assert "gse: installed v4" not in out
    labels = vm.by_label(client.disk)
    # The half-written partition is not SYSFS and holds no complete system.
    assert labels["SYSFS"] == "v2"
    assert "v4" not in labels.values()
    out, secs, rc = client.boot(timeout=400)
    assert "gse: installed v4" in out and booted(out) == "v4"
