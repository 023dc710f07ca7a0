"""gse publish: --list, --rollback and --prune on a tree published with real keys, casync and the real playbook.

Three images are published in turn as the default with the real publish
module (through ansible), so the history is the one publishing writes.  Every
signature here is a real OpenPGP signature made and checked by gpg/gpgv.
"""
import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from ansible_collections.gse.stateless.plugins.module_utils import caindex

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "controller"))
import pubtree  # noqa: E402  (the publication-tree helpers of the controller tests)

VERSIONS = ("v1", "v2", "v3")
ANSIBLE = os.path.join(os.path.dirname(sys.executable), "ansible")
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def make_image_dir(home, build, store, version, tarball_index=False):
    """A signed image directory as part K makes it: tarball, chunk index, report with root_bytes, SHA512SUMS;
    with ``tarball_index`` also the tarball's blob index (v1 only: the others stand for older image
    directories)."""
    root = build / ("root-" + version)
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "os-release").write_text("NAME=test\nVERSION_ID=%s\n" % version)
    (root / "etc" / "shared").write_bytes(b"the same in every version\n" * 2000)
    (root / "etc" / "own").write_bytes(os.urandom(1024 * 64))  # one chunk of each image its own
    d = build / version
    d.mkdir()
    subprocess.run(["tar", "--create", "--zstd", "--numeric-owner", "--file", str(d / "image.tar.zst"),
                    "--directory", str(root), "."], check=True)
    subprocess.run(["casync", "make", "--store=" + str(store), str(d / "image.caidx"), str(root)],
                   check=True, capture_output=True)
    (d / "build-report.json").write_text(json.dumps({"root_bytes": pubtree.root_bytes(str(root))}))
    names = ("build-report.json", "image.caidx", "image.tar.zst")
    if tarball_index:
        subprocess.run(caindex.blob_index_argv(str(build / "blob-store"), str(d / "image.tar.zst.caibx"),
                                               str(d / "image.tar.zst")), check=True, capture_output=True)
        names += ("image.tar.zst.caibx",)
    (d / "SHA512SUMS").write_text("".join("%s  %s\n" % (pubtree.sha512(str(d / n)), n) for n in names))
    for n in ("SHA512SUMS",) + names[1:]:
        pubtree.detach_sign(home, str(d / n))
    return d


def verified_pointer(keyring, pub):
    out = subprocess.run(["gpgv", "--keyring", keyring, "--output", "-", str(pub / "version.txt")],
                         check=True, capture_output=True, text=True).stdout
    return dict(line.split(": ", 1) for line in out.splitlines())


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    """The key and a tree with v1, v2, v3 published in turn as the default (made once: each test copies it)."""
    top = tmp_path_factory.mktemp("publication")
    home = str(top / "gnupg")
    keyring = pubtree.make_key(home)
    fpr = subprocess.run(["gpg", "--batch", "--homedir", home, "--with-colons", "--list-keys"],
                         check=True, capture_output=True, text=True).stdout
    fpr = [line.split(":")[9] for line in fpr.splitlines() if line.startswith("fpr:")][0]
    build, store, pub = top / "build", top / "store", top / "publish"
    build.mkdir()
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"), ANSIBLE_NOCOLOR="1")
    for version in VERSIONS:
        src = make_image_dir(home, build, store, version, tarball_index=version == "v1")
        args = dict(src=str(src), version=version, publish_dir=str(pub), default=True, keyring=keyring,
                    gnupghome=home, signing_key=fpr, chunk_store=str(store))
        r = subprocess.run([ANSIBLE, "localhost", "-c", "local", "-m", "gse.stateless.publish",
                            "-e", "ansible_python_interpreter=" + sys.executable, "-a", json.dumps(args)],
                           capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stdout + r.stderr
    return home, keyring, fpr, pub


@pytest.fixture
def published(gse_env, template):
    """A copy of the template tree (mtimes kept: they order the images), config.d naming it."""
    home, keyring, fpr, tree = template
    pub = gse_env.tmp / "publish"
    shutil.copytree(tree, pub, symlinks=True)
    system = yaml.safe_load((gse_env.configd / "system.yml").read_text())
    gse_env.write_config("system", dict(system, gse_publish_dir=str(pub), gse_gnupghome=home, gse_signing_key=fpr))
    gse_env.write_config("publish", {"gse_publish_keyring": keyring, "gse_publish_keep": 2})
    gse_env.env.pop("GSE_PLAYBOOK_DIR")  # the real playbooks/publication.yml
    return gse_env, pub, keyring


def listing(gse_env):
    r = gse_env.gse("publish", "--list", "--json")
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_list_rollback_and_prune(published):
    gse_env, pub, keyring = published
    assert "tarball_index" not in verified_pointer(keyring, pub)
    seen = listing(gse_env)
    assert seen["current"] == {"version": "v3", "serial": 3} and seen["fallback"] == "v2"
    assert [v["version"] for v in seen["versions"]] == ["v3", "v2", "v1"]
    text = gse_env.gse("publish", "--list")
    assert text.returncode == 0 and text.stdout.splitlines()[0].split()[:2] == ["VERSION", "SERIALS"]
    assert text.stdout.splitlines()[1].split()[0] == "v3" and text.stdout.splitlines()[1].endswith("default")

    dry = gse_env.gse("publish", "--rollback=v1", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.strip() == "v1 would become the default with serial 4", dry.stderr
    assert verified_pointer(keyring, pub)["version"] == "v3"

    r = gse_env.gse("publish", "--rollback=v1")
    assert r.returncode == 0 and r.stdout.strip() == "v1 is the default with serial 4", r.stderr
    pointer = verified_pointer(keyring, pub)
    assert (pointer["version"], pointer["serial"], pointer["format"]) == ("v1", "4", "2")
    assert pointer["index"] == "images/v1/image.caidx"
    # v1's blob index is named again by the rolled-back pointer (v3, an older image directory, had none).
    blob = pub / "images/v1/image.tar.zst.caibx"
    assert pointer["tarball_index"] == "images/v1/image.tar.zst.caibx"
    assert pointer["tarball_index_sha512"] == pubtree.sha512(str(blob))
    assert pointer["tarball_index_size"] == str(blob.stat().st_size)
    assert listing(gse_env)["fallback"] == "v3"

    # keep 1: v1 (current, and the most recent) and v3 (its fallback) stay, v2 goes with the chunks only it has.
    chunks = {v: set(caindex.read_index(str(pub / "images" / v / "image.caidx"))[2]) for v in VERSIONS}
    own = chunks["v2"] - chunks["v1"] - chunks["v3"]
    assert own, "the fixture gives each image a chunk of its own"
    r = gse_env.gse("publish", "--prune", "--keep=1")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("removed 1 image(s) (v2) and %d unreferenced chunk(s)" % len(own)), r.stdout
    for chunk in own:
        assert not os.path.exists(caindex.chunk_path(str(pub / "store"), chunk))
    assert sorted(os.listdir(pub / "images")) == ["v1", "v3"]
    for version in ("v1", "v3"):  # every chunk the kept indexes need is still there
        subprocess.run(["casync", "--store=" + str(pub / "store"), "digest", str(pub / "images" / version /
                        "image.caidx")], check=True, capture_output=True)
    again = gse_env.gse("publish", "--prune")  # gse_publish_keep: 2 from config.d keeps both
    assert again.returncode == 0 and again.stdout.startswith("removed 0 image(s)"), again.stdout + again.stderr


@pytest.mark.parametrize("args, code, message", [
    (["--rollback=v9"], 1, "v9 is not published here (published: v1, v2, v3)"),
    (["--rollback=../v1"], 2, "name a published version"),
    ([], 2, "one of the arguments --list --rollback --prune --pin --unpin is required"),
    (["--pin=room2"], 2, "give GROUP=VERSION"),
    (["--pin=../room2=v1"], 2, "give GROUP=VERSION"),
    (["--pin=room2=.staging-v1"], 2, "give GROUP=VERSION"),
    (["--unpin=.room2"], 2, "name a pinned group"),
    (["--pin=room2=v9"], 1, "v9 is not published here (published: v1, v2, v3)"),
    (["--pin=room2=v1", "--keep=1"], 2, "--keep goes with --prune"),
    (["--list", "--keep=1"], 2, "--keep goes with --prune"),
    (["--prune", "--keep=0"], 2, "keep 1 to 1000"),
    (["--rollback=v1", "--json"], 2, "--json goes with --list"),
])
def test_bad_requests_change_nothing(published, args, code, message):
    gse_env, pub, keyring = published
    before = {p: (pub / p).read_bytes() for p in ("version.txt", ".gse/serial", ".gse/history")}
    r = gse_env.gse("publish", *args)
    assert r.returncode == code and message in r.stderr, (r.returncode, r.stderr)
    assert r.stderr.startswith("gse publish: ") and len(r.stderr.strip().splitlines()) == 1
    assert {p: (pub / p).read_bytes() for p in before} == before
    assert sorted(os.listdir(pub / "images")) == list(VERSIONS)
    assert not (pub / "groups").exists() and not (pub / "config.txt").exists()


def verified(keyring, path):
    out = subprocess.run(["gpgv", "--keyring", keyring, "--output", "-", str(path)],
                         check=True, capture_output=True, text=True).stdout
    return dict(line.split(": ", 1) for line in out.splitlines())


def test_pin_and_unpin(published):
    gse_env, pub, keyring = published
    dry = gse_env.gse("publish", "--pin=room2=v1", "--dry-run")
    assert dry.returncode == 0 and dry.stdout.startswith("group room2 would be pinned to v1 with serial 4"), \
        dry.stdout + dry.stderr
    assert not (pub / "groups").exists()

    r = gse_env.gse("publish", "--pin", "room2=v1")
    assert r.returncode == 0 and r.stdout.startswith("group room2 is pinned to v1 with serial 4"), r.stdout + r.stderr
    pin = verified(keyring, pub / "groups/room2/version.txt")
    assert (pin["version"], pin["serial"], pin["group"]) == ("v1", "4", "room2")
    assert pin["index"] == "images/v1/image.caidx"
    default = verified_pointer(keyring, pub)
    assert (default["version"], default["serial"]) == ("v3", "5") and "group" not in default
    config = verified(keyring, pub / "config.txt")
    tar = subprocess.run(["tar", "-xzOf", str(pub / config["path"]), "./pinned"], check=True,
                         capture_output=True, text=True).stdout
    assert tar == "room2\n"
    subprocess.run(["gpgv", "--keyring", keyring, str(pub / config["path"]) + ".asc", str(pub / config["path"])],
                   check=True, capture_output=True)
    seen = listing(gse_env)
    assert seen["pins"] == {"room2": {"version": "v1", "serial": 4}}
    text = gse_env.gse("publish", "--list").stdout.splitlines()
    assert [line for line in text if line.startswith("v1 ")][0].endswith("pinned: room2")
    assert text[-1] == "group room2 pinned to v1 (serial 4)"
    # The pinned version outlives a prune to one image.
    r = gse_env.gse("publish", "--prune", "--keep=1")
    assert r.returncode == 0 and sorted(os.listdir(pub / "images")) == ["v1", "v2", "v3"], r.stdout

    r = gse_env.gse("publish", "--unpin=room2")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("group room2 is unpinned; version.txt (v3) is signed again with serial 6"), r.stdout
    pointer = verified_pointer(keyring, pub)
    assert (pointer["version"], pointer["serial"]) == ("v3", "6")
    assert not (pub / "groups/room2").exists() and listing(gse_env)["pins"] == {}


def test_rollback_to_a_damaged_image_is_refused(published):
    gse_env, pub, keyring = published
    with open(pub / "images" / "v1" / "image.tar.zst", "r+b") as f:
        f.seek(10)
        f.write(b"\0")
    r = gse_env.gse("publish", "--rollback=v1")
    assert r.returncode == 1 and "image.tar.zst" in r.stderr, r.stderr
    assert verified_pointer(keyring, pub)["version"] == "v3"
    assert yaml.safe_load((pub / ".gse" / "serial").read_text()) == 3


def run_awx_template(gse_env, tmp, answers):
    """playbooks/publication.yml with the extra variables AWX gives the "GSE publication" template for
    ``answers`` (tests/integration/awxjob.py: survey defaults, then the answers); config.d as gse_env's.

    What this cannot show: AWX itself (its receptor, the pod); the playbook, the survey's rules and the
    variables are the real ones."""
    from tests.integration import awxjob
    jt = awxjob.by_name(awxjob.load()["job_templates"], "GSE publication")
    evars = awxjob.extra_vars(jt, answers)
    path = tmp / "extravars.json"
    path.write_text(json.dumps(evars))
    env = dict(gse_env.env, ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"),
               ANSIBLE_CONFIG=os.path.join(ROOT, "ansible.cfg"))
    r = subprocess.run([os.path.join(os.path.dirname(sys.executable), "ansible-playbook"),
                        os.path.join(ROOT, "playbooks", "publication.yml"), "-e", "@" + str(path)],
                       capture_output=True, text=True, env=env, cwd=ROOT, timeout=600)
    return evars, r


def test_the_awx_template_lists_and_prunes_with_its_survey(published, tmp_path):
    gse_env, pub, keyring = published
    # The survey's defaults alone: list, which changes nothing; the empty Keep is not passed (config.d's 2).
    evars, r = run_awx_template(gse_env, tmp_path, {})
    assert evars["gse_publication_action"] == "list" and "gse_publish_keep" not in evars, evars
    assert r.returncode == 0, r.stdout + r.stderr
    assert "- 3 published image(s); default v3" in r.stdout, r.stdout
    assert sorted(os.listdir(pub / "images")) == list(VERSIONS)
    # Rollback without a Version: refused by the playbook's first task, nothing changes.
    _evars, r = run_awx_template(gse_env, tmp_path, {"gse_publication_action": "rollback"})
    assert r.returncode != 0 and "gse_publication_action is list, rollback (with gse_publication_version)" in r.stdout
    assert verified_pointer(keyring, pub)["version"] == "v3"
    # Rollback to v1 (the Version answer): v1 is the default, v3 its fallback.
    _evars, r = run_awx_template(gse_env, tmp_path, {"gse_publication_action": "rollback",
                                                     "gse_publication_version": "v1"})
    assert r.returncode == 0, r.stdout + r.stderr
    assert verified_pointer(keyring, pub)["version"] == "v1"
    # Prune with Keep 1 although config.d keeps 3: v1 (current, most recent) and v3 (its fallback) stay.
    gse_env.write_config("publish", {"gse_publish_keyring": keyring, "gse_publish_keep": 3})
    evars, r = run_awx_template(gse_env, tmp_path, {"gse_publication_action": "prune", "gse_publish_keep": 1})
    assert r.returncode == 0, r.stdout + r.stderr
    assert sorted(os.listdir(pub / "images")) == ["v1", "v3"]
