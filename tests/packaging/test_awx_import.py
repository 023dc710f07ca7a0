"""awx/gse.yml is what `awx import` (awxkit) accepts, and its job templates run this repository.

awxkit has no schema for the import format: `awx import` loads the file with
awxkit's YAML loader and hands it to ApiV2.import_assets, which needs a live
AWX for the field lists (OPTIONS).  These checks follow that code without a
server: the top-level keys it iterates (EXPORTABLE_RESOURCES), the natural
keys it resolves references by (each page class's NATURAL_KEY), the order it
creates objects in (page_creation_order), the fields its payload builders
know (a field AWX does not have is silently dropped by the import), and the
survey and schedule rules the AWX API applies when the related objects are
posted.
"""
import os
import re
import subprocess
import sys

import pytest
import yaml
from awxkit import yaml_file
from awxkit.api import pages
from awxkit.api.mixins import has_create
from awxkit.api.pages.api import EXPORTABLE_RESOURCES
from dateutil import rrule

from ansible_collections.gse.stateless.plugins.module_utils.hooks import ALL_HOOKS
from tests.packaging.test_version import ROOT

BIN = os.path.dirname(sys.executable)
ASSETS = os.path.join(ROOT, "awx", "gse.yml")

# Resource key of the import file -> (awxkit page class, natural key type).
RESOURCES = {
    "organizations": (pages.Organization, "organization"),
    "execution_environments": (pages.ExecutionEnvironment, "execution_environment"),
    "projects": (pages.Project, "project"),
    "inventory": (pages.Inventory, "inventory"),
    "inventory_sources": (pages.InventorySource, "inventory_source"),
    "job_templates": (pages.JobTemplate, "job_template"),
    "workflow_job_templates": (pages.WorkflowJobTemplate, "workflow_job_template"),
    "credential_types": (pages.CredentialType, "credential_type"),
    "schedules": (pages.Schedule, "schedule"),
}
CLASS_OF_TYPE = {t: cls for cls, t in RESOURCES.values()}
# The survey question types the AWX API accepts (JobTemplateSurveySpec).
SURVEY_TYPES = {"text", "textarea", "password", "integer", "float", "multiplechoice", "multiselect"}


@pytest.fixture(scope="module")
def data():
    with open(ASSETS, encoding="utf-8") as fh:
        # What `awx import -f yaml` does with its input.
        return yaml.load(fh, Loader=yaml_file.Loader)


def assets(data):
    for key, items in data.items():
        for item in items:
            yield key, item


def schedules(data):
    for jt in data["job_templates"] + data.get("workflow_job_templates", []):
        for s in jt.get("related", {}).get("schedules", []):
            yield jt, s


def workflow_nodes(data):
    for wf in data.get("workflow_job_templates", []):
        for node in wf["related"]["workflow_nodes"]:
            yield wf, node


def references(asset):
    return {k: v for k, v in asset.items() if k != "natural_key" and isinstance(v, dict) and "type" in v}


def test_only_resources_awx_import_reads(data):
    assert set(data) <= set(EXPORTABLE_RESOURCES), set(data) - set(EXPORTABLE_RESOURCES)
    assert set(data) <= set(RESOURCES)


def test_natural_keys_match_awxkit_and_the_asset(data):
    keys = []
    nodes = [("workflow_nodes", n) for _, n in workflow_nodes(data)]
    for resource, asset in list(assets(data)) + [("schedules", s) for _, s in schedules(data)] + nodes:
        if resource == "workflow_nodes":
            cls, typ = pages.WorkflowJobTemplateNode, "workflow_job_template_node"
            asset = dict(asset, name=asset["identifier"])
        else:
            cls, typ = RESOURCES[resource]
        nk = asset["natural_key"]
        assert nk["type"] == typ, asset["name"]
        # get_natural_key takes the NATURAL_KEY fields the object has (an
        # inventory source's organization comes only with some AWX versions).
        ident = "identifier" if resource == "workflow_nodes" else "name"
        assert ident in nk and set(nk) <= set(cls.NATURAL_KEY) | {"type"}, (asset["name"], nk)
        for field in cls.NATURAL_KEY:
            if field in asset:
                assert asset[field] == nk[field], (asset["name"], field)
        keys.append(yaml.safe_dump(nk, sort_keys=True))
    assert len(keys) == len(set(keys)), "two objects share a natural key"


def test_job_template_organization_is_its_projects(data):
    # AWX derives a job template's organization from its project.
    for jt in data["job_templates"]:
        assert jt["natural_key"]["organization"] == jt["project"]["organization"], jt["name"]


def test_every_reference_resolves_to_an_object_created_before(data):
    order = has_create.page_creation_order(*(cls for cls, _ in RESOURCES.values()))
    rank = {cls: i for i, level in enumerate(order) for cls in level}
    known = {yaml.safe_dump(a["natural_key"], sort_keys=True): RESOURCES[r][0] for r, a in assets(data)}
    for resource, asset in assets(data):
        for field, ref in references(asset).items():
            key = yaml.safe_dump(ref, sort_keys=True)
            assert key in known, (asset["name"], field, ref)
            assert rank[known[key]] < rank[RESOURCES[resource][0]], (asset["name"], field)
    for _, s in schedules(data):
        # Related sets are posted after every list: any object may be named.
        assert yaml.safe_dump(s["unified_job_template"], sort_keys=True) in known
    node_keys = {yaml.safe_dump(n["natural_key"], sort_keys=True) for _, n in workflow_nodes(data)}
    for wf, n in workflow_nodes(data):
        assert yaml.safe_dump(n["unified_job_template"], sort_keys=True) in known, n["identifier"]
        assert n["natural_key"]["workflow_job_template"] == wf["natural_key"]
        for edge in ("success_nodes", "failure_nodes", "always_nodes"):
            for child in n["related"].get(edge, []):
                assert yaml.safe_dump(child, sort_keys=True) in node_keys, (n["identifier"], child)


def test_job_template_fields_are_awx_fields(data):
    # Foreign keys and playbook are set by the payload builder from objects;
    # every scalar field must survive JobTemplate.payload, as the import
    # would otherwise drop it without a word.
    foreign = {"project", "inventory", "execution_environment", "playbook", "natural_key", "related", "extra_vars"}
    for jt in data["job_templates"]:
        scalars = {k: v for k, v in jt.items() if k not in foreign}
        kept = pages.JobTemplate.payload(None, **scalars)
        assert set(scalars) <= set(kept), (jt["name"], set(scalars) - set(kept))


def test_workflow_and_credential_type_fields_are_awx_fields(data):
    for wf in data["workflow_job_templates"]:
        scalars = {k: v for k, v in wf.items() if k not in {"organization", "inventory", "natural_key", "related"}}
        kept = pages.WorkflowJobTemplate.payload(None, **scalars)
        assert set(scalars) <= set(kept), (wf["name"], set(scalars) - set(kept))
    for ct in data["credential_types"]:
        scalars = {k: v for k, v in ct.items() if k != "natural_key"}
        kept = pages.CredentialType.payload(None, **scalars)
        assert set(scalars) <= set(kept), (ct["name"], set(scalars) - set(kept))


def test_project_fields_are_awx_fields(data):
    foreign = {"organization", "default_environment", "natural_key", "related"}
    for p in data["projects"]:
        scalars = {k: v for k, v in p.items() if k not in foreign}
        kept = pages.Project.payload(None, None, **scalars)
        assert set(scalars) <= set(kept), (p["name"], set(scalars) - set(kept))


def test_playbooks_exist_and_parse(data):
    for jt in data["job_templates"]:
        path = os.path.join(ROOT, jt["playbook"])
        assert os.path.isfile(path), jt["playbook"]
        p = subprocess.run([os.path.join(BIN, "ansible-playbook"), "--syntax-check", "-i",
                            os.path.join(ROOT, "inventories/default"), path],
                           cwd=ROOT, capture_output=True, text=True)
        assert p.returncode == 0, p.stdout + p.stderr


def test_inventory_source_is_an_inventory_of_the_project(data):
    for src in data["inventory_sources"]:
        assert src["source"] == "scm"
        p = subprocess.run([os.path.join(BIN, "ansible-inventory"), "-i", os.path.join(ROOT, src["source_path"]),
                            "--list"], cwd=ROOT, capture_output=True, text=True)
        assert p.returncode == 0, p.stderr
        inv = yaml.safe_load(p.stdout)
        assert inv["gse_build_host"]["hosts"] == ["buildhost"]
        assert inv["gse_chroot"]["hosts"] == ["chroot"]


def survey_questions(jt):
    return jt["related"]["survey_spec"]["spec"] if jt.get("survey_enabled") else []


def test_surveys_follow_the_awx_rules(data):
    for jt in data["job_templates"]:
        if not jt.get("survey_enabled"):
            continue
        spec = jt["related"]["survey_spec"]
        assert spec["name"] and "description" in spec and isinstance(spec["spec"], list) and spec["spec"]
        variables = [q["variable"] for q in spec["spec"]]
        assert len(variables) == len(set(variables)), jt["name"]
        for q in spec["spec"]:
            assert q["question_name"] and q["type"] in SURVEY_TYPES, q
            assert isinstance(q["required"], bool)
            assert "default" in q, "%s: every question needs a default (unattended runs)" % q["variable"]
            if q["type"] == "multiplechoice":
                assert q["default"] in q["choices"], q["variable"]
            elif q["type"] == "multiselect":
                chosen = [c for c in q["default"].split("\n") if c]
                assert set(chosen) <= set(q["choices"]), q["variable"]
            elif q["type"] == "text" and q["default"]:
                assert q.get("min", 0) <= len(q["default"]) <= q.get("max", 1024), q["variable"]
            elif q["type"] == "integer" and q["default"] != "":
                # AWX takes "" for no default (the variable is then not passed); anything else is a number.
                assert type(q["default"]) is int and q.get("min", 0) <= q["default"] <= q.get("max", 1024)


def test_survey_hooks_are_the_hook_table(data):
    for jt in data["job_templates"]:
        for q in survey_questions(jt):
            if q["type"] == "multiselect":
                assert q["choices"] == list(ALL_HOOKS), q["variable"]
        if jt.get("job_tags"):
            assert set(jt["job_tags"].split(",")) <= set(ALL_HOOKS)


# The playbooks of playbooks/ that no job template runs, and why (docs/awx.md says so too).
NOT_FOR_AWX = {
    "build.yml": "the build of the gse command; AWX runs it through awx_build.yml, which imports it",
    "release.yml": "releases a build's mounts by hand on the build host (part K and the mount guard do it "
                   "for every build, also an AWX job's)",
    "server.yml": "deploys nginx on the hosts of gse_servers, which the build host's inventory does not hold",
    "room_cache.yml": "deploys a room cache on the hosts of gse_room_caches, which the build host's inventory "
                      "does not hold",
}


def test_every_playbook_meant_for_awx_has_a_template(data):
    playbooks = {f for f in os.listdir(os.path.join(ROOT, "playbooks")) if f.endswith(".yml")}
    templated = {os.path.basename(jt["playbook"]) for jt in data["job_templates"]}
    assert templated <= playbooks
    assert not templated & set(NOT_FOR_AWX), "a playbook both templated and said not to be"
    assert set(NOT_FOR_AWX) <= playbooks, "a playbook said not to be templated no longer exists"
    assert playbooks - templated - set(NOT_FOR_AWX) == set(), "playbooks without a job template"
    docs = open(os.path.join(ROOT, "docs", "awx.md"), encoding="utf-8").read()
    for playbook in sorted(playbooks):
        assert "`playbooks/%s`" % playbook in docs, playbook


ROLE_REF = re.compile(r"(?:gse\.stateless\.|roles/)([a-z_]+)")
PLAYBOOK_REF = re.compile(r"(?:import_playbook:|vars_files:\s*-|^\s*-)\s*([\w./]+\.yml)\s*$", re.M)


def uncommented(path):
    with open(path, encoding="utf-8") as fh:
        return "".join(line for line in fh if not line.lstrip().startswith("#"))


def files_of_playbook(playbook):
    """The playbook, what it imports (playbooks, vars files) and every file of the roles it or they run."""
    files, roles, todo = [], set(), [os.path.join(ROOT, playbook)]
    while todo:
        path = todo.pop()
        if path in files or not os.path.isfile(path):
            continue
        files.append(path)
        text = uncommented(path)
        if path.startswith(os.path.join(ROOT, "playbooks")):
            todo += [os.path.normpath(os.path.join(os.path.dirname(path), m)) for m in PLAYBOOK_REF.findall(text)]
        for role in set(ROLE_REF.findall(text)) - roles:
            top = os.path.join(ROOT, "roles", role)
            if not os.path.isdir(top):
                continue  # a module of the collection, not a role
            roles.add(role)
            todo += [os.path.join(d, f) for d, _, names in os.walk(top) for f in names
                     if f.endswith((".yml", ".j2")) and "argument_specs" not in f]
    return files


def reads(playbook, var):
    """Whether the playbook, or a file it runs, uses ``var`` in a value (not only defines it as a key)."""
    used = re.compile(r"(?<![\w.])%s(?!\w)(?!\s*:(?:\s|$))" % re.escape(var), re.M)
    return any(used.search(uncommented(f)) for f in files_of_playbook(playbook))


def test_reads_looks_only_where_the_playbook_runs():
    # The controller's output directory is read by the controller role, which publication.yml never runs.
    assert reads("playbooks/controller.yml", "gse_controller_output")
    assert not reads("playbooks/publication.yml", "gse_controller_output")
    # awx_build.yml defines gse_lawful_good (a key) from the survey's answer and build.yml's roles read it.
    assert reads("playbooks/awx_build.yml", "gse_survey_lawful_good")
    assert not reads("playbooks/verify.yml", "gse_survey_lawful_good")


def test_survey_variables_are_read_by_the_playbooks(data):
    # A question whose variable nothing the job runs reads would be a setting that does nothing.
    for jt in data["job_templates"]:
        for q in survey_questions(jt):
            assert reads(jt["playbook"], q["variable"]), (jt["name"], q["variable"])


def module_options(name):
    with open(os.path.join(ROOT, "plugins", "modules", name + ".py"), encoding="utf-8") as fh:
        text = fh.read()
    doc = text.split('DOCUMENTATION = r"""', 1)[1].split('"""', 1)[0]
    return yaml.safe_load(doc)["options"]


def test_publication_survey_is_the_modules_options(data):
    """The publication template asks what playbooks/publication.yml passes to gse.stateless.publication."""
    jt = [j for j in data["job_templates"] if j["playbook"] == "playbooks/publication.yml"]
    assert len(jt) == 1
    questions = {q["variable"]: q for q in survey_questions(jt[0])}
    with open(os.path.join(ROOT, "playbooks", "publication.yml"), encoding="utf-8") as fh:
        (play,) = yaml.safe_load(fh)
    (task,) = [t for t in play["tasks"] if "gse.stateless.publication" in t]
    args = task["gse.stateless.publication"]
    options = module_options("publication")
    assert set(args) <= set(options)
    # Every question feeds an option of the module, and every gse_publication_* variable is asked.
    fed = {var: [o for o, expr in args.items() if re.search(r"\b%s\b" % var, str(expr))] for var in questions}
    assert all(fed.values()), fed
    asked = {v for expr in args.values() for v in re.findall(r"\bgse_publication_\w+", str(expr))}
    assert asked <= set(questions), asked - set(questions)
    action = questions["gse_publication_action"]
    assert action["choices"] == options["action"]["choices"] and action["default"] == options["action"]["default"]
    assert fed["gse_publish_keep"] == ["keep"] and questions["gse_publish_keep"]["type"] == "integer"
    assert questions["gse_publish_keep"]["min"] == 1  # the module refuses less


def test_nightly_schedule_runs_the_verifying_workflow(data):
    found = list(schedules(data))
    assert [s["name"] for _, s in found] == ["GSE nightly build"]
    wf, s = found[0]
    assert s["unified_job_template"] == wf["natural_key"] and wf["natural_key"]["type"] == "workflow_job_template"
    rule = rrule.rrulestr(s["rrule"].replace(" RRULE:", "\nRRULE:"))
    assert rule._freq == rrule.DAILY and rule._interval == 1
    first = rule[0]
    assert (first.hour, first.minute) == (2, 0)
    nodes = {n["identifier"]: n for _, n in workflow_nodes(data)}
    templates = {jt["name"]: jt for jt in data["job_templates"]}

    def jt(node):
        return templates[node["unified_job_template"]["name"]]

    def reaches(src, dst, edge="success_nodes"):
        return any(c["identifier"] == dst for c in nodes[src]["related"].get(edge, []))

    # Whatever marks default runs only after a successful verify, itself after a successful build;
    # no failure or always edge leads anywhere.
    marking = [i for i, n in nodes.items() if (n.get("extra_data") or {}).get("gse_survey_mark_default") == "yes"]
    assert marking == ["publish"] and "gpartl" in jt(nodes["publish"]).get("job_tags", "")
    assert jt(nodes["verify"])["playbook"] == "playbooks/verify.yml"
    assert reaches("build", "verify") and reaches("verify", "publish")
    assert [i for i in nodes if any(reaches(j, i) for j in nodes)] == ["verify", "publish"]
    for n in nodes.values():
        assert not n["related"].get("failure_nodes") and not n["related"].get("always_nodes"), n["identifier"]
    # The build node publishes nothing itself: part L is left to the publish node.
    assert "gpartl" in nodes["build"]["extra_data"]["gse_survey_lawful_good"]
    # Node answers must be ones the template's survey accepts (or the template takes any variable).
    for n in nodes.values():
        questions = {q["variable"]: q for q in survey_questions(jt(n))}
        for var, value in (n.get("extra_data") or {}).items():
            assert var in questions or jt(n).get("ask_variables_on_launch"), (n["identifier"], var)
            q = questions.get(var)
            if q and q["type"] == "multiplechoice":
                assert value in q["choices"], (var, value)
            if q and q["type"] == "multiselect":
                assert set(value) <= set(q["choices"]), (var, value)


def test_templates_become_root_and_take_launch_variables(data):
    # docs/awx.md tells users to pass variables at launch (gse_emerge_resume ...): every template takes them.
    for jt in data["job_templates"]:
        assert jt.get("become_enabled") is True, jt["name"]
        assert jt.get("ask_variables_on_launch") is True, jt["name"]
        # Lawful-good is asked once, in the survey.
        assert not jt.get("ask_skip_tags_on_launch") and not jt.get("skip_tags"), jt["name"]
    docs = open(os.path.join(ROOT, "docs", "awx.md"), encoding="utf-8").read()
    assert "gse_emerge_resume" in docs


def test_signing_key_credential_type(data):
    ct = [c for c in data["credential_types"] if c["name"] == "GSE signing key"][0]
    assert ct["kind"] in ("cloud", "net")  # the kinds AWX lets a custom type have
    fields = {f["id"]: f for f in ct["inputs"]["fields"]}
    assert fields["secret_key"].get("secret") is True
    assert set(ct["inputs"]["required"]) == {"fingerprint", "secret_key"}
    inj = ct["injectors"]
    # The secret travels as a file only: never in an environment variable or an extra variable.
    assert inj["file"] == {"template.secret_key": "{{ secret_key }}"}
    for value in list(inj.get("env", {}).values()) + list(inj.get("extra_vars", {}).values()):
        assert "secret_key }}" not in value.replace("tower.filename.secret_key", "")
    assert inj["env"]["GSE_SIGNING_KEY_FILE"] == "{{ tower.filename.secret_key }}"
    text = open(os.path.join(ROOT, "playbooks", "awx_build.yml"), encoding="utf-8").read()
    assert "GSE_SIGNING_KEY_FILE" in text


def test_playbooks_never_wait_on_a_terminal():
    for top in ("playbooks", "roles"):
        for root, _, files in os.walk(os.path.join(ROOT, top)):
            for f in files:
                if not f.endswith((".yml", ".yaml")):
                    continue
                docs = yaml.safe_load_all(open(os.path.join(root, f), encoding="utf-8"))
                text = yaml.safe_dump(list(docs))
                for word in ("vars_prompt", "ansible.builtin.pause", "pause:"):
                    assert word not in text, os.path.join(root, f)


def test_publishing_alone_needs_the_build_id(tmp_path):
    # The build host only (--limit): when its check fails, no later play has a host left.
    argv = [os.path.join(BIN, "ansible-playbook"), "-i", os.path.join(ROOT, "inventories/default"),
            os.path.join(ROOT, "playbooks/awx_build.yml"), "--limit", "buildhost", "-t", "gpartl",
            "-e", '{"gse_base": "precomp", "gse_configd_dirs": []}',
            "-e", "gse_cdistdir=%s gse_log_root=%s" % (tmp_path / "cdist", tmp_path / "log")]
    p = subprocess.run(argv, cwd=ROOT, capture_output=True, text=True, env=dict(os.environ, ANSIBLE_NOCOLOR="1"))
    assert p.returncode != 0
    assert "publishing alone (tags gpartl) needs the image: set gse_build_id" in p.stdout
    assert "TASK [gse.stateless." not in p.stdout, "a part ran"
    assert not (tmp_path / "log").exists() and not (tmp_path / "cdist").exists()
