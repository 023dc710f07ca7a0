"""The digest of a build's inputs: every kind of input changes it, every setting is covered or excused.

The settings come from the real schema (the roles' argument specs).  The
action plugin is driven with an identity templar and plain task variables:
what it cannot show is Ansible's own templating of the values, which the
integration test (tests/integration/test_rebuild_skip.py) covers with a real
build.
"""
import json
import os

import pytest
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gse.stateless.plugins.action import build_record as action
from ansible_collections.gse.stateless.plugins.module_utils import build_inputs
from ansible_collections.gse.stateless.plugins.module_utils import hooks
from ansible_collections.gse.stateless.plugins.module_utils import settings
from ansible_collections.gse.stateless.plugins.modules import build_record

SCHEMA = settings.load_schema()
COVERED = build_inputs.covered_settings(SCHEMA, settings.ROLES_DIR)


class _Templar:
    def template(self, value):
        return value


def _plugin():
    plugin = object.__new__(action.ActionModule)
    plugin._templar = _Templar()
    return plugin


def _changed(value):
    """A value different from ``value`` of the same kind."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, list):
        return value + ["x"]
    if isinstance(value, dict):
        return dict(value, x="y")
    return "%s-changed" % (value,)


@pytest.fixture
def inputs(tmp_path, monkeypatch):
    """Task variables naming real files of every kind, and the collection's sources copied to tmp_path."""
    collection = tmp_path / "collection"
    for rel in ("plugins/modules/x.py", "playbooks/build.yml", "roles/configure/tasks/etc.yml"):
        (collection / rel).parent.mkdir(parents=True, exist_ok=True)
        (collection / rel).write_text("# %s\n" % rel)
    monkeypatch.setattr(action, "COLLECTION_DIR", str(collection))
    (tmp_path / "configd").mkdir()
    (tmp_path / "configd/etc.yml").write_text("gse_hostname: lab\n")
    (tmp_path / "sdir").mkdir()
    (tmp_path / "sdir/script1").write_text("echo one\n")
    (tmp_path / "inject").write_text("nameserver 10.0.0.1\n")
    (tmp_path / "vmlinuz").write_bytes(b"kernel")
    task_vars = {name: SCHEMA[name].default for name in COVERED if SCHEMA[name].default is not None}
    task_vars.update(gse_configd_dirs=[str(tmp_path / "configd")], gse_sdir=str(tmp_path / "sdir"),
                     gse_inject_custom=[{"src": str(tmp_path / "inject"), "dest": "/etc/x"}],
                     gse_kernel_path=str(tmp_path / "vmlinuz"), ansible_run_tags=["all"], ansible_skip_tags=[])
    return tmp_path, task_vars


def test_every_setting_of_the_parts_is_covered_or_excused():
    """A setting the roles of parts A-J (or common, client_health) own is hashed or has a written reason."""
    roles = build_inputs.input_roles()
    for name, setting in SCHEMA.items():
        if setting.role in roles:
            assert name in COVERED or name in build_inputs.EXCLUDED, name
    assert set(build_inputs.EXCLUDED) <= set(SCHEMA), set(build_inputs.EXCLUDED) - set(SCHEMA)
    assert not set(build_inputs.EXCLUDED) & set(COVERED)


def test_settings_named_by_the_parts_files_are_covered():
    """A setting of another role that a part's task names (essentials reads gse_kernel_build) is covered."""
    for role in build_inputs.input_roles():
        named = build_inputs._named_in(os.path.join(settings.ROLES_DIR, role)) & set(SCHEMA)
        assert named - set(build_inputs.EXCLUDED) <= set(COVERED), (role, named - set(COVERED))


@pytest.mark.parametrize("name", COVERED)
def test_each_covered_setting_changes_the_digest(inputs, name):
    _, task_vars = inputs
    before = _plugin()._controller_inputs(task_vars)
    value = task_vars.get(name, SCHEMA[name].default)
    changed = dict(task_vars, **{name: _changed(value)})
    if SCHEMA[name].type == "path":
        changed[name] = "/nonexistent/%s" % name
    assert _plugin()._controller_inputs(changed) != before


def test_excluded_settings_leave_the_digest(inputs):
    _, task_vars = inputs
    before = _plugin()._controller_inputs(task_vars)
    after = dict(task_vars, gse_build_id="20990101T000000Z", gse_verbose=True, gse_nice=5)
    assert _plugin()._controller_inputs(after) == before


@pytest.mark.parametrize("kind", ["collection", "configd", "sdir", "inject", "kernel", "run_tags"])
def test_each_kind_of_file_input_changes_the_digest(inputs, kind):
    tmp_path, task_vars = inputs
    before = _plugin()._controller_inputs(task_vars)
    assert _plugin()._controller_inputs(task_vars) == before  # stable while nothing changes
    if kind == "collection":
        (tmp_path / "collection/roles/configure/tasks/etc.yml").write_text("# changed\n")
    elif kind == "configd":
        (tmp_path / "configd/etc.yml").write_text("gse_hostname: lab2\n")
    elif kind == "sdir":
        (tmp_path / "sdir/script1").write_text("echo two\n")
    elif kind == "inject":
        (tmp_path / "inject").write_text("nameserver 10.0.0.2\n")
    elif kind == "kernel":
        (tmp_path / "vmlinuz").write_bytes(b"kernel2")
    else:
        task_vars = dict(task_vars, ansible_run_tags=["gpartc"])
    assert _plugin()._controller_inputs(task_vars) != before


def test_scripts_are_hashed_by_content_not_by_place(inputs):
    """A time-warp replay lays the same scripts out elsewhere: the digest stays."""
    tmp_path, task_vars = inputs
    before = _plugin()._controller_inputs(task_vars)
    (tmp_path / "sdir").rename(tmp_path / "replayed")
    assert _plugin()._controller_inputs(dict(task_vars, gse_sdir=str(tmp_path / "replayed"))) == before


def test_injected_files_count_by_content_not_by_place(inputs):
    """A replay lays the inject-custom files out elsewhere: the same bytes hash the same, other bytes do not."""
    tmp_path, task_vars = inputs
    before = _plugin()._controller_inputs(task_vars)
    (tmp_path / "inject").rename(tmp_path / "inject-replayed")
    moved = dict(task_vars, gse_inject_custom=[{"src": str(tmp_path / "inject-replayed"), "dest": "/etc/x"}])
    assert _plugin()._controller_inputs(moved) == before
    (tmp_path / "inject-replayed").write_text("other\n")
    assert _plugin()._controller_inputs(moved) != before


def test_an_enforced_hook_of_the_parts_runs_them(inputs):
    _, task_vars = inputs
    plugin = _plugin()
    base = dict(task_vars, gse_sync_method="none")
    assert plugin._run_all(base) == ""
    assert plugin._run_all(dict(base, gse_enforce=["gparte"])).startswith("enforced: gparte")
    assert plugin._run_all(dict(base, gse_enforce=["gextr"])) == "enforced: gextr"
    # lawful-good wins over enforce, as everywhere
    assert plugin._run_all(dict(base, gse_enforce=["gparte"], gse_lawful_good=["gparte"])) == ""
    # part K or L enforced: the root's parts need not run
    assert plugin._run_all(dict(base, gse_enforce=["gpartl"])) == ""
    # a sync no longer runs them whatever: its trees are decided after it (the two-step tests below)
    assert plugin._run_all(dict(base, gse_sync_method="emerge")) == ""


def test_skipped_parts_follow_the_hook_table():
    assert build_inputs.SKIPPED_PARTS[0] == "gpartb" and build_inputs.SKIPPED_PARTS[-1] == "gpartj"
    assert set(build_inputs.SKIPPED_PARTS) < set(hooks.PART_HOOKS)
    assert "gpartk" not in build_inputs.SKIPPED_PARTS


# The module: the build host's part of the digest and the record.

def run_module(capsys, args, check=False):
    if check:
        args = dict(args, _ansible_check_mode=True)
    with patch_module_args(args), pytest.raises(SystemExit):
        build_record.main()
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def build(tmp_path):
    root = tmp_path / "workdir"
    (root / "etc").mkdir(parents=True)
    (root / "etc/hostname").write_text("lab\n")
    (tmp_path / "workdir.extracted.json").write_text('{"src": "stage3-1.tar.xz"}\n')
    repos = tmp_path / "repos/gentoo/app-misc/hello"
    repos.mkdir(parents=True)
    (repos / "hello-1.ebuild").write_text("EAPI=8\n")
    return tmp_path, dict(root=str(root), components={"setting:gse_hostname": "c" * 64},
                          trees=[str(tmp_path / "repos")])


def _complete(capsys, args):
    first = run_module(capsys, args)
    assert first["unchanged"] is False and first["reason"] == "no record of a completed build"
    run_module(capsys, dict(root=args["root"], state="present", components=first["components"], build="B1"))
    return first


def test_unchanged_after_a_completed_build(capsys, build):
    tmp_path, args = build
    _complete(capsys, args)
    record = tmp_path / "workdir.built.json"
    assert oct(record.stat().st_mode & 0o777) == "0o600"
    again = run_module(capsys, args)
    assert again["unchanged"] is True and again["built"] == "B1" and again["changed"] is False
    assert record.exists()


@pytest.mark.parametrize("change", ["ebuild_bump", "stage3", "root", "controller", "enforced"])
def test_a_change_runs_the_parts_and_removes_the_record(capsys, build, change):
    tmp_path, args = build
    _complete(capsys, args)
    if change == "ebuild_bump":
        os.rename(tmp_path / "repos/gentoo/app-misc/hello/hello-1.ebuild",
                  tmp_path / "repos/gentoo/app-misc/hello/hello-2.ebuild")
    elif change == "stage3":
        (tmp_path / "workdir.extracted.json").write_text('{"src": "stage3-2.tar.xz"}\n')
    elif change == "root":
        (tmp_path / "workdir/etc/hostname").write_text("lab2\n")
    elif change == "controller":
        args = dict(args, components={"setting:gse_hostname": "d" * 64})
    else:
        args = dict(args, run_all="enforced: gparte")
    # check mode says so and leaves the record
    assert run_module(capsys, args, check=True)["unchanged"] is False
    assert (tmp_path / "workdir.built.json").exists()
    result = run_module(capsys, args)
    assert result["unchanged"] is False and result["changed"] is True
    assert result["reason"] == {"root": "root changed", "enforced": "enforced: gparte",
                                "ebuild_bump": "inputs changed: tree:" + args["trees"][0],
                                "stage3": "inputs changed: stage3",
                                "controller": "inputs changed: setting:gse_hostname"}[change]
    # no record says "built" while the parts run
    assert not (tmp_path / "workdir.built.json").exists()


def test_present_is_idempotent(capsys, build):
    tmp_path, args = build
    first = _complete(capsys, args)
    again = run_module(capsys, dict(root=args["root"], state="present", components=first["components"], build="B1"))
    assert again["changed"] is False
    checked = run_module(capsys, dict(root=args["root"], state="present", components={"x": "e" * 64}, build="B2"),
                         check=True)
    assert checked["changed"] is True
    assert json.loads((tmp_path / "workdir.built.json").read_text())["build"] == "B1"


# The two-step decision with a sync configured: part A leaves the synced repositories' listing undecided, the
# listing after the sync decides.

def _synced(args):
    return dict(args, synced=args["trees"][:1])


def _sync(capsys, args, checked):
    """The decision right after the sync, from what the check returned."""
    return run_module(capsys, dict(root=args["root"], state="synced", synced=args["trees"][:1],
                                   components=checked["components"], recorded=checked["recorded"]))


def test_a_sync_leaves_only_the_repositories_undecided(capsys, build):
    tmp_path, args = build
    _complete(capsys, args)
    # Without a sync the same inputs are unchanged at once; with one, part A cannot tell.
    checked = run_module(capsys, _synced(args))
    assert checked["unchanged"] is False and checked["after_sync"] is True, checked
    assert checked["recorded"]["build"] == "B1"
    assert list(checked["recorded"]["listings"]) == ["tree:" + args["trees"][0]]
    assert not (tmp_path / "workdir.built.json").exists()  # removed as for any run; part K writes it again
    # The sync brought nothing: the rest is skipped, as the build that made the root.
    after = _sync(capsys, args, checked)
    assert after["unchanged"] is True and after["built"] == "B1" and after["reason"] == "", after
    assert after["components"] == checked["components"]


@pytest.mark.parametrize("brought", ["new_ebuild", "changed_file"])
def test_what_the_sync_brings_runs_the_parts_after_it(capsys, build, brought):
    tmp_path, args = build
    _complete(capsys, args)
    checked = run_module(capsys, _synced(args))
    assert checked["after_sync"] is True
    # What the sync writes into the repositories, after part A took their listing.
    if brought == "new_ebuild":
        (tmp_path / "repos/gentoo/app-misc/hello/hello-2.ebuild").write_text("EAPI=8\n")
    else:
        with open(tmp_path / "repos/gentoo/app-misc/hello/hello-1.ebuild", "a", encoding="utf-8") as fh:
            fh.write("KEYWORDS=amd64\n")
    after = _sync(capsys, args, checked)
    assert after["unchanged"] is False and after["built"] == "", after
    assert after["reason"] == "the sync changed: tree:" + args["trees"][0]
    # The record of this build holds the listing after the sync: the next rebuild compares with that.
    name = "tree:" + args["trees"][0]
    assert after["components"][name] != checked["components"][name]
    assert after["components"][name] == build_inputs.tree_digest(args["trees"][0])


@pytest.mark.parametrize("change", ["controller", "stage3", "root", "enforced", "extra_tree"])
def test_a_change_besides_the_repositories_runs_everything_at_part_a(capsys, build, change):
    tmp_path, args = build
    extra = tmp_path / "overlay"
    extra.mkdir()
    args = dict(args, trees=args["trees"] + [str(extra)])
    _complete(capsys, args)
    if change == "controller":
        args = dict(args, components={"setting:gse_hostname": "d" * 64})
    elif change == "stage3":
        (tmp_path / "workdir.extracted.json").write_text('{"src": "stage3-2.tar.xz"}\n')
    elif change == "root":
        (tmp_path / "workdir/etc/hostname").write_text("lab2\n")
    elif change == "enforced":
        args = dict(args, run_all="enforced: gparte")
    else:  # a mounted tree the sync does not touch is decided at part A
        (extra / "new").write_text("x\n")
    checked = run_module(capsys, _synced(args))
    assert checked["unchanged"] is False and checked["after_sync"] is False and checked["recorded"] == {}
    assert checked["reason"] == {"controller": "inputs changed: setting:gse_hostname",
                                 "stage3": "inputs changed: stage3", "root": "root changed",
                                 "enforced": "enforced: gparte",
                                 "extra_tree": "inputs changed: tree:%s" % extra}[change], checked


def test_decide_is_two_steps():
    components = {"setting:a": "1", "tree:/r": "t1", "tree:/o": "o1"}
    record = {"inputs": build_inputs.combine(components), "components": components, "root": "R"}
    assert build_inputs.decide(record, components, "R") == (build_inputs.UNCHANGED, "")
    # the synced tree differs at part A (the previous sync left it so): still for the sync to decide
    moved = dict(components, **{"tree:/r": "t0"})
    verdict, _ = build_inputs.decide(record, moved, "R", synced=["/r"])
    assert verdict == build_inputs.AFTER_SYNC
    assert build_inputs.decide(record, moved, "R")[0] == build_inputs.RUN
    assert build_inputs.decide(None, components, "R", synced=["/r"]) == (
        build_inputs.RUN, "no record of a completed build")
    # a record without the synced tree's listing cannot decide after the sync either
    old = {n: v for n, v in components.items() if n != "tree:/r"}
    assert build_inputs.decide(dict(record, components=old), components, "R", synced=["/r"]) == (
        build_inputs.RUN, "no recorded listing of tree:/r")
    listings = build_inputs.recorded_listings(record, ["/r"])
    assert listings == {"tree:/r": "t1"}
    assert build_inputs.decide_synced(listings, components) == (build_inputs.UNCHANGED, "")
    assert build_inputs.decide_synced(listings, moved) == (build_inputs.RUN, "the sync changed: tree:/r")
    assert build_inputs.decide_synced({}, components)[0] == build_inputs.RUN


def test_the_action_passes_the_synced_trees_only_with_a_sync(inputs, monkeypatch):
    _, task_vars = inputs
    sent = []
    plugin = _plugin()
    plugin._task = type("Task", (), {"args": {"root": "/w", "trees": ["/r", "/o"], "sync_trees": ["/r"]},
                                     "async_val": 0})()
    monkeypatch.setattr(action.ActionBase, "run", lambda self, tmp=None, task_vars=None: {})
    monkeypatch.setattr(plugin, "_execute_module", lambda module_name, module_args, task_vars: sent.append(
        module_args) or {})
    plugin.run(task_vars=dict(task_vars, gse_sync_method="emerge"))
    plugin.run(task_vars=dict(task_vars, gse_sync_method="none"))
    assert sent[0]["synced"] == ["/r"] and "synced" not in sent[1]
    # The record takes the synced trees' listing again only with a sync.
    plugin._task.args = {"root": "/w", "state": "present", "components": {"x": "1"}, "sync_trees": ["/r"]}
    plugin.run(task_vars=dict(task_vars, gse_sync_method="webrsync"))
    plugin.run(task_vars=dict(task_vars, gse_sync_method="none"))
    assert sent[2]["synced"] == ["/r"] and "synced" not in sent[3]


def test_the_record_takes_the_synced_listing_as_the_build_leaves_it(capsys, build):
    tmp_path, args = build
    first = run_module(capsys, args)
    # What the sync and the parts after it wrote into the repositories after part A's listing.
    (tmp_path / "repos/gentoo/app-misc/hello/hello-2.ebuild").write_text("EAPI=8\n")
    name = "tree:" + args["trees"][0]
    written = run_module(capsys, dict(root=args["root"], state="present", components=first["components"],
                                      build="B1", synced=args["trees"][:1]))
    assert written["components"][name] == build_inputs.tree_digest(args["trees"][0]) != first["components"][name]
    recorded = json.loads((tmp_path / "workdir.built.json").read_text())
    assert recorded["components"][name] == written["components"][name]
    # The next build's sync brings nothing: decided unchanged after it.
    checked = run_module(capsys, _synced(args))
    assert checked["after_sync"] is True
    assert _sync(capsys, args, checked)["unchanged"] is True
