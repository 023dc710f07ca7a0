"""The nightly AWX workflow of awx/gse.yml runs a build on the fixture, without AWX.

The jobs get exactly what AWX would give them, derived from the import file
(tests/integration/awxjob.py): the templates' playbooks, extra variables,
--become and tags, the inventory of the inventory source, and the signing key
credential's injected file, environment and variables.  They run through
ansible-runner as an unprivileged user that becomes root with sudo through
the execution environment's own sudoers rule (awx/ee/sudoers, its uid
replaced by the test user's: uid 1000 belongs to someone else on a test
machine), with the Python packages of the execution environment's build
context (ansible-builder create) in a virtual environment of their own.
The persistent volumes of the container group's pod spec
(awx/container-group-pod-spec.yml) are directories shared by the jobs and
nothing else: each job has a private data directory of its own, removed
after it, as AWX does.

What a double cannot show: the pod, the image and receptor (no Kubernetes or
container engine here); the host's Debian tools stand in for the image's
Fedora packages of bindep.txt.
"""
import glob
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile

import pytest
import yaml

from ansible_collections.gse.stateless.plugins.module_utils.mountinfo import mounts_under

from tests.integration import awxjob
from tests.integration.buildrun import ROOT

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="builds chroot and mount, adds a user: root only")

BIN = os.path.dirname(sys.executable)
POD_SPEC = os.path.join(ROOT, "awx", "container-group-pod-spec.yml")


def role_defaults(role):
    with open(os.path.join(ROOT, "roles", role, "defaults", "main.yml"), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.fixture(scope="module")
def ee_context(tmp_path_factory):
    """The execution environment's build context, made by ansible-builder."""
    out = tmp_path_factory.mktemp("ee") / "context"
    p = subprocess.run([os.path.join(BIN, "ansible-builder"), "create", "-c", str(out),
                        "-f", os.path.join(ROOT, "execution-environment.yml")], cwd=ROOT,
                       capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    return out


@pytest.fixture(scope="module")
def base():
    d = tempfile.mkdtemp(prefix="gse-awx-", dir="/var/tmp")
    os.chmod(d, 0o755)
    yield d
    assert mounts_under(d) == [], "mounts left under the AWX test's directories"
    if not os.environ.get("GSE_TEST_KEEP"):  # keep the jobs' directories to read them
        shutil.rmtree(d)


@pytest.fixture(scope="module")
def ee_python(ee_context, base):
    """A virtual environment with the Python side of the execution environment: its ansible-core and
    ansible-runner pins and the context's requirements.txt (the host's Python 3.11 stands in for the
    image's 3.12; ansible-core 2.19 is in the pinned range on both)."""
    with open(os.path.join(ROOT, "execution-environment.yml"), encoding="utf-8") as fh:
        deps = yaml.safe_load(fh)["dependencies"]
    venv = os.path.join(base, "ee-venv")
    subprocess.run(["/usr/bin/python3", "-m", "venv", venv], check=True)
    p = subprocess.run([os.path.join(venv, "bin", "pip"), "install", "-q", "--disable-pip-version-check",
                        deps["ansible_core"]["package_pip"], deps["ansible_runner"]["package_pip"],
                        "-r", str(ee_context / "_build" / "requirements.txt")], capture_output=True, text=True)
    assert p.returncode == 0, p.stdout + p.stderr
    return os.path.join(venv, "bin")


@pytest.fixture(scope="module")
def job_user(base):
    """An unprivileged user whose sudo rule is the execution environment's (awx/ee/sudoers)."""
    name = "gseawx%d" % os.getpid()
    home = os.path.join(base, "home")
    subprocess.run(["useradd", "--no-create-home", "--home-dir", home, "--shell", "/bin/sh", name], check=True)
    sudoers = "/etc/sudoers.d/gse-awx-test-%s" % name
    try:
        uid = pwd.getpwnam(name).pw_uid
        os.makedirs(home)
        os.chown(home, uid, uid)
        with open(os.path.join(ROOT, "awx", "ee", "sudoers"), encoding="utf-8") as fh:
            rule = fh.read().replace("#1000", "#%d" % uid)
        with open(sudoers + ".tmp", "w", encoding="utf-8") as fh:
            fh.write(rule)
        os.chmod(sudoers + ".tmp", 0o440)
        subprocess.run(["visudo", "-cf", sudoers + ".tmp"], check=True, capture_output=True)
        os.rename(sudoers + ".tmp", sudoers)
        yield name
    finally:
        for f in (sudoers, sudoers + ".tmp"):
            if os.path.exists(f):
                os.unlink(f)
        subprocess.run(["userdel", name], capture_output=True)


@pytest.fixture(scope="module")
def volumes(base):
    """The pod spec's volumes, as directories of this test (root's, as hostPath makes them)."""
    return awxjob.copy_pod_paths(POD_SPEC, os.path.join(base, "host"))


def on_volume(volumes, path):
    """Where ``path`` (a default of the roles) lies in this test's volumes; None when on none."""
    for mount in sorted(volumes, key=len, reverse=True):
        if path == mount or path.startswith(mount + "/"):
            return volumes[mount] + path[len(mount):]
    return None


def test_persistent_paths_are_pod_volumes(volumes):
    # Everything a later job reads must outlive the job that wrote it.
    common = role_defaults("common")
    for var in ("gse_cdistdir", "gse_log_root", "gse_publish_dir", "gse_gnupghome", "gse_state_dir"):
        assert on_volume(volumes, common[var]), (var, common[var])
    assert on_volume(volumes, "/var/db/repos") and on_volume(volumes, "/var/cache/distfiles")


def test_ee_context_holds_what_the_jobs_need(ee_context):
    build = ee_context / "_build"
    reqs = (build / "requirements.txt").read_text()
    for pkg in ("jinja2", "pyyaml", "passlib"):
        assert pkg in reqs
    # sudo (become), gpg/gpgv (signing, verify), tar and zstd (pack, verify), casync (chunk index).
    bindep = (build / "bindep.txt").read_text()
    for pkg in ("sudo", "gnupg2", "tar", "zstd", "casync"):
        assert any(line.split()[0] == pkg for line in bindep.splitlines() if line.strip() and line[0] != "#"), pkg
    dockerfile = next(p for p in (ee_context / "Containerfile", ee_context / "Dockerfile") if p.exists()).read_text()
    assert "COPY _build/configs/sudoers /etc/sudoers.d/gse" in dockerfile
    assert (build / "configs" / "sudoers").read_text() == open(os.path.join(ROOT, "awx", "ee", "sudoers")).read()
    # The job user the rule names is the one the image runs as.
    users = [line.split()[1] for line in dockerfile.splitlines() if line.startswith("USER ")]
    assert users[-1] == "1000"


def secret_key(home, fingerprint):
    return subprocess.run(["gpg", "--batch", "--homedir", home, "--armor", "--export-secret-keys", fingerprint],
                          capture_output=True, text=True, check=True).stdout


class Workflow:
    """The nightly workflow's jobs, started as AWX starts them."""

    def __init__(self, data, base, user, python_bin, inventory_vars, credential_inputs):
        self.data = data
        self.base = base
        self.user = user
        self.bin = python_bin
        self.inventory = awxjob.inventory(data, inventory_vars)
        self.cred_type = awxjob.by_name(data["credential_types"], "GSE signing key")
        self.inputs = credential_inputs
        self.jobs = []

    def launch(self, node, artifacts):
        jt = awxjob.template_of(self.data, node["unified_job_template"])
        pdd = os.path.join(self.base, "job-%d" % len(self.jobs))
        os.makedirs(pdd)
        job = awxjob.Job(pdd, self.user)
        runtime = dict(node.get("extra_data") or {}, **artifacts)
        os.makedirs(os.path.join(pdd, "env"), mode=0o700)
        env, cred_vars, files = awxjob.inject(self.cred_type, self.inputs, os.path.join(pdd, "env"))
        assert files and all(awxjob.mode_is_private(f) for f in files)
        evars = awxjob.extra_vars(jt, runtime)
        evars.update(cred_vars)
        evars.update(awx_job_id=len(self.jobs) + 1, awx_job_template_name=jt["name"],
                     awx_workflow_job_name="GSE nightly")
        env = dict(env, ANSIBLE_NOCOLOR="1", ANSIBLE_COLLECTIONS_PATH=os.path.join(ROOT, ".collections"))
        job.prepare(jt, evars, awxjob.cmdline(jt), env, self.inventory)
        uid = pwd.getpwnam(self.user).pw_uid
        for root, dirs, names in os.walk(pdd):
            for n in dirs + names:
                os.lchown(os.path.join(root, n), uid, uid)
        os.lchown(pdd, uid, uid)
        rc = self.run(job, jt["playbook"])
        self.jobs.append((node["identifier"], jt, evars, job, rc))
        job.remove_private_files(files)
        ok = rc == 0 and "buildhost" in job.hosts()
        return ok, job.artifacts() if ok else {}

    def run(self, job, playbook):
        argv = ["runuser", "-u", self.user, "--", "env", "-i", "HOME=" + os.path.join(self.base, "home"),
                "PATH=%s:/usr/sbin:/usr/bin:/sbin:/bin" % self.bin, "LANG=C.UTF-8",
                os.path.join(self.bin, "ansible-runner"), "run", job.dir, "-p", playbook, "--ident", "job"]
        p = subprocess.run(argv, capture_output=True, text=True, timeout=3600)
        with open(os.path.join(job.dir, "runner.log"), "w", encoding="utf-8") as fh:
            fh.write(p.stdout + p.stderr)
        return p.returncode


@pytest.fixture(scope="module")
def nightly(gse_fixture, fixture_http, signing, base, job_user, ee_python, volumes):
    data = awxjob.load()
    common = role_defaults("common")
    demo = yaml.safe_load(open(os.path.join(ROOT, "inventories", "demo", "group_vars", "all.yml")))
    # The AWX inventory's own variables: the fixture's site (the bundled default) and the paths
    # of the pod's volumes as this test has them.
    inventory_vars = dict(demo, gse_stage3_mirror=fixture_http, gse_stage3_keyring=gse_fixture.keyring,
                          gse_repos_dir=os.path.dirname(gse_fixture.repo),
                          gse_verify_entries=["usr/sbin/openrc-init", "etc/os-release"])
    for var in ("gse_cdistdir", "gse_log_root", "gse_publish_dir", "gse_gnupghome", "gse_state_dir"):
        inventory_vars[var] = on_volume(volumes, common[var])
    home, fingerprint = signing
    inputs = {"fingerprint": fingerprint, "secret_key": secret_key(home, fingerprint)}
    flow = Workflow(data, base, job_user, ee_python, inventory_vars, inputs)
    wfjt = awxjob.by_name(data["workflow_job_templates"], "GSE nightly")
    try:
        ran = awxjob.walk_workflow(wfjt, flow.launch)
        yield flow, ran, inventory_vars, inputs, wfjt
    finally:
        gnupghome = inventory_vars["gse_gnupghome"]
        subprocess.run(["gpgconf", "--homedir", gnupghome, "--kill", "all"], capture_output=True)
        subprocess.run([os.path.join(ROOT, ".venv", "bin", "ansible-playbook"), os.path.join(ROOT, "playbooks",
                        "release.yml"), "-e", "gse_base=precomp", "-e", json.dumps(
                        {"gse_cdistdir": inventory_vars["gse_cdistdir"], "gse_configd_dirs": []})],
                       cwd=ROOT, capture_output=True)


def job(flow, ident):
    found = [j for j in flow.jobs if j[0] == ident]
    assert found, "node %s never ran" % ident
    return found[-1]


def explain(j):
    return j[3].stdout()[-4000:] + open(os.path.join(j[3].dir, "runner.log")).read()[-2000:]


def test_nightly_builds_verifies_and_publishes(nightly):
    flow, ran, inv, _, _ = nightly
    for ident, ok in ran:
        assert ok, "%s failed:\n%s" % (ident, explain(job(flow, ident)))
    assert [i for i, _ in ran] == ["build", "verify", "publish"]
    build_id = job(flow, "build")[3].artifacts()["gse_build_id"]
    # publish.py's layout: the version's directory and the signed pointer naming it (docs/publication.md).
    pub = inv["gse_publish_dir"]
    assert glob.glob(os.path.join(pub, "images", build_id, "image.tar.*"))
    with open(os.path.join(pub, "version.txt"), encoding="utf-8") as fh:
        assert "version: %s\n" % build_id in fh.read()  # marked default only after verify passed


def test_jobs_ran_unprivileged_with_become(nightly, job_user):
    flow, _, _, _, _ = nightly
    for ident, jt, _, j, _ in flow.jobs:
        assert jt["become_enabled"], ident
        with open(os.path.join(j.dir, "env", "cmdline")) as fh:
            assert "--become" in fh.read().split()
        st = os.stat(os.path.join(j.dir, "artifacts", "job", "stdout"))
        assert st.st_uid == pwd.getpwnam(job_user).pw_uid, "ansible-runner did not run as the job user"


def test_build_left_publishing_to_the_workflow(nightly):
    # The build node's lawful-good answer (a survey variable, no Skip Tags) skipped part L.
    flow, _, _, _, wfjt = nightly
    _, jt, evars, j, _ = job(flow, "build")
    assert not jt.get("ask_skip_tags_on_launch") and "skip_tags" not in jt
    assert evars["gse_survey_lawful_good"] == ["gpartl"]
    assert "--skip-tags" not in open(os.path.join(j.dir, "env", "cmdline")).read()
    started = [e["event_data"].get("task", "") for e in j.events() if e.get("event") == "runner_on_ok"]
    assert not [t for t in started if "Publish the image" in t], "the build job published"


def test_signing_key_never_logged(nightly):
    flow, _, _, inputs, _ = nightly
    body = [line for line in inputs["secret_key"].splitlines() if len(line) > 40]
    assert body
    for _, _, _, j, _ in flow.jobs:
        for path in glob.glob(os.path.join(j.dir, "artifacts", "**", "*"), recursive=True):
            if os.path.isfile(path):
                text = open(path, errors="replace").read()
                assert not any(line in text for line in body), path
        # The injected file is gone with the job.
        assert not glob.glob(os.path.join(j.dir, "env", "cred_*"))


def test_failed_verification_publishes_nothing(nightly, volumes):
    flow, _, inv, _, wfjt = nightly
    build_id = job(flow, "build")[3].artifacts()["gse_build_id"]
    published = sorted(os.listdir(os.path.join(inv["gse_publish_dir"])))
    image = glob.glob(os.path.join(inv["gse_cdistdir"], "images", build_id, "image.tar.*"))
    image = [i for i in image if not i.endswith(".asc")][0]
    with open(image, "ab") as fh:  # one byte more: the signature and the digest no longer match
        fh.write(b"\0")
    nodes = dict(wfjt, related=dict(wfjt["related"], workflow_nodes=[
        n for n in wfjt["related"]["workflow_nodes"] if n["identifier"] != "build"]))
    before = len(flow.jobs)
    artifacts = job(flow, "build")[3].artifacts()
    ran = []

    def launch(node, handed):
        ok, out = flow.launch(node, dict(handed, **artifacts))
        ran.append(node["identifier"])
        return ok, out
    awxjob.walk_workflow(nodes, launch)
    assert ran == ["verify"], ran
    assert flow.jobs[before][4] != 0
    assert sorted(os.listdir(inv["gse_publish_dir"])) == published
