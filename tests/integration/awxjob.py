"""Start the jobs of awx/gse.yml the way AWX starts them, without AWX.

Everything a job gets is derived from the import file: the playbook, the
extra variables (template extra_vars, then the survey defaults that pass the
survey's rules, then the launch's variables, refused unless the survey names
them or the template asks for variables on launch), the command line
(--become when become_enabled, -t job_tags, --skip-tags skip_tags), the
inventory (the inventory source's file as `ansible-inventory --list --export`
gives it, plus the AWX inventory's own variables), and what a credential type
injects (its file templates written into the job's private directory with
mode 0600, its env and extra_vars rendered with tower.filename.<name>).  The
job runs through ansible-runner in a private data directory laid out as AWX
lays it out (env/extravars, env/envvars, env/cmdline, inventory/hosts,
project/), as the user AWX's execution environment runs it as.

What this cannot show: AWX's receptor, the pod itself and the container
image (no Kubernetes or container engine here).  The rules followed are
AWX's SurveyJobTemplateMixin (survey defaults, _accept_or_ignore_variables),
RunJob.build_args and the credential type injectors (awx/main/models).
"""
import json
import os
import stat
import subprocess
import sys

import jinja2.sandbox
import yaml
from awxkit import yaml_file

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
ASSETS = os.path.join(ROOT, "awx", "gse.yml")
BIN = os.path.dirname(sys.executable)


def load():
    with open(ASSETS, encoding="utf-8") as fh:
        return yaml.load(fh, Loader=yaml_file.Loader)  # what `awx import -f yaml` reads


def by_name(items, name):
    found = [i for i in items if i["name"] == name]
    assert len(found) == 1, name
    return found[0]


def template_of(data, ref):
    """The job or workflow template a natural key names."""
    kind = {"job_template": "job_templates", "workflow_job_template": "workflow_job_templates"}[ref["type"]]
    return by_name(data[kind], ref["name"])


# -- extra variables (SurveyJobTemplateMixin) ---------------------------------

def _survey_errors(q, data):
    var = q["variable"]
    if var not in data:
        return ["%s missing" % var] if q["required"] else []
    value = data[var]
    if q["type"] in ("text", "textarea", "password"):
        if not isinstance(value, str):
            return ["%s: not a string" % var]
        if q.get("min") not in ("", None) and len(value) < int(q["min"]):
            return ["%s: too short" % var]
        if q.get("max") not in ("", None) and len(value) > int(q["max"]):
            return ["%s: too long" % var]
    elif q["type"] == "multiselect":
        if not isinstance(value, list):
            return ["%s: not a list" % var]
        return ["%s: %s not a choice" % (var, v) for v in value if v not in q["choices"]]
    elif q["type"] == "multiplechoice" and value not in q["choices"]:
        return ["%s: %s not a choice" % (var, value)]
    elif q["type"] in ("integer", "float"):
        # An empty default ("": AWX accepts it in a spec) is no number: the variable is not passed.
        if type(value) is not int and not (q["type"] == "float" and type(value) is float):
            return ["%s: not an %s" % (var, q["type"])]
        if q.get("min") not in ("", None) and value < int(q["min"]):
            return ["%s: too small" % var]
        if q.get("max") not in ("", None) and value > int(q["max"]):
            return ["%s: too large" % var]
    return []


def extra_vars(jt, runtime):
    """The job's extra variables; AssertionError for what AWX would refuse at launch."""
    out = dict(yaml.safe_load(jt.get("extra_vars") or "{}") or {})
    spec = jt["related"]["survey_spec"]["spec"] if jt.get("survey_enabled") else []
    for q in spec:
        if q.get("default") is not None and not _survey_errors(q, {q["variable"]: q["default"]}):
            out[q["variable"]] = q["default"]
    survey = {q["variable"] for q in spec}
    refused = [k for k in runtime if k not in survey and not jt.get("ask_variables_on_launch")]
    assert not refused, "%s refuses launch variables %s" % (jt["name"], refused)
    errors = [e for q in spec for e in _survey_errors(q, runtime) if q["variable"] in runtime]
    assert not errors, errors
    out.update(runtime)
    return out


def cmdline(jt):
    """RunJob.build_args for what the templates set."""
    args = []
    if jt.get("become_enabled"):
        args.append("--become")
    if jt.get("verbosity"):
        args.append("-" + "v" * min(5, jt["verbosity"]))
    if jt.get("job_tags"):
        args += ["-t", jt["job_tags"]]
    if jt.get("skip_tags"):
        args.append("--skip-tags=%s" % jt["skip_tags"])
    return args


# -- credentials (CredentialType.inject_credential) ---------------------------

def inject(credential_type, inputs, env_dir):
    """(environment, extra variables, files written) of a credential of ``credential_type``."""
    sandbox = jinja2.sandbox.ImmutableSandboxedEnvironment(undefined=jinja2.StrictUndefined)
    injectors = credential_type["injectors"]
    filenames, files = {}, []
    for key, template in injectors.get("file", {}).items():
        name = key.split(".", 1)[1] if "." in key else None
        path = os.path.join(env_dir, "cred_%s" % (name or "file"))
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(sandbox.from_string(template).render(**inputs))
        files.append(path)
        if name:
            filenames[name] = path
        else:
            filenames = path
    context = dict(inputs, tower={"filename": filenames}, awx={"filename": filenames})
    env = {k: sandbox.from_string(v).render(**context) for k, v in injectors.get("env", {}).items()}
    evars = {k: sandbox.from_string(v).render(**context) for k, v in injectors.get("extra_vars", {}).items()}
    return env, evars, files


# -- the inventory ------------------------------------------------------------

def inventory(data, variables):
    """The AWX inventory: its source's hosts and groups, and ``variables`` as the inventory's own."""
    src = data["inventory_sources"][0]
    out = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", os.path.join(ROOT, src["source_path"]),
                          "--list", "--export"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    inv = json.loads(out)
    inv.setdefault("all", {}).setdefault("vars", {}).update(variables)
    return inv


# -- running a job ------------------------------------------------------------

class Job:
    """One job's private data directory, run by ansible-runner as ``user``."""

    def __init__(self, directory, user):
        self.dir = directory
        self.user = user

    def prepare(self, jt, evars, args, env, inv):
        os.makedirs(os.path.join(self.dir, "env"), mode=0o700, exist_ok=True)
        os.makedirs(os.path.join(self.dir, "inventory"))
        os.symlink(ROOT, os.path.join(self.dir, "project"))  # AWX copies the project revision here
        with open(os.path.join(self.dir, "env", "extravars"), "w", encoding="utf-8") as fh:
            json.dump(evars, fh)
        with open(os.path.join(self.dir, "env", "envvars"), "w", encoding="utf-8") as fh:
            json.dump(env, fh)
        with open(os.path.join(self.dir, "env", "cmdline"), "w", encoding="utf-8") as fh:
            fh.write(" ".join(args))
        hosts = os.path.join(self.dir, "inventory", "hosts")
        with open(hosts, "w", encoding="utf-8") as fh:
            # An inventory script, as AWX writes it, run by the job's own python3.
            fh.write("#!/usr/bin/env python3\nimport json\nprint(json.dumps(%r))\n" % (inv,))
        os.chmod(hosts, 0o755)

    def events(self):
        d = os.path.join(self.dir, "artifacts", "job", "job_events")
        out = []
        for name in sorted(os.listdir(d), key=lambda n: int(n.split("-", 1)[0])):
            with open(os.path.join(d, name), encoding="utf-8") as fh:
                out.append(json.load(fh))
        return out

    def hosts(self):
        """The hosts of the play recap (a job whose inventory did not parse has none)."""
        stats = [e for e in self.events() if e.get("event") == "playbook_on_stats"]
        data = stats[-1]["event_data"] if stats else {}
        return set().union(*(set(data.get(k) or {}) for k in ("ok", "changed", "failures", "dark", "skipped")))

    def artifacts(self):
        """What set_stats handed on (the playbook_on_stats event's artifact_data), as AWX keeps it."""
        stats = [e for e in self.events() if e.get("event") == "playbook_on_stats"]
        return stats[-1]["event_data"].get("artifact_data", {}) if stats else {}

    def stdout(self):
        with open(os.path.join(self.dir, "artifacts", "job", "stdout"), encoding="utf-8", errors="replace") as fh:
            return fh.read()

    def remove_private_files(self, files):
        """AWX removes a job's private data directory when the job ends; the injected files go with it."""
        for f in files:
            os.unlink(f)


def walk_workflow(wfjt, launch):
    """Run a workflow's nodes as AWX does: roots first, then the success, failure or always edges.

    ``launch(node, artifacts)`` runs one node's job and returns (ok, artifacts).
    Returns [(identifier, ok)] in the order the nodes ran.
    """
    nodes = {n["identifier"]: n for n in wfjt["related"]["workflow_nodes"]}
    children = set()
    for n in nodes.values():
        for edge in ("success_nodes", "failure_nodes", "always_nodes"):
            children.update(c["identifier"] for c in n["related"].get(edge, []))
    todo = [(i, {}) for i in nodes if i not in children]
    ran = []
    while todo:
        ident, artifacts = todo.pop(0)
        ok, produced = launch(nodes[ident], artifacts)
        ran.append((ident, ok))
        handed = dict(artifacts, **produced)  # ancestors' artifacts reach every descendant
        for edge in ("success_nodes" if ok else "failure_nodes", "always_nodes"):
            todo += [(c["identifier"], handed) for c in nodes[ident]["related"].get(edge, [])]
    return ran


def mode_is_private(path):
    return stat.S_IMODE(os.stat(path).st_mode) & 0o077 == 0


def copy_pod_paths(spec_path, base):
    """{mountPath: directory under ``base``} for each volume of the pod spec (the persistent volumes)."""
    with open(spec_path, encoding="utf-8") as fh:
        pod = yaml.safe_load(fh)
    mounts = pod["spec"]["containers"][0]["volumeMounts"]
    out = {}
    for m in mounts:
        d = os.path.join(base, m["mountPath"].lstrip("/"))
        os.makedirs(d, exist_ok=True)
        out[m["mountPath"]] = d
    return out

