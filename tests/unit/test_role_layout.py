"""The roles read like the concept document's parts: each role's tasks carry
exactly the hooks of the hook table, in its order, with the scripts of -g run
around every hook and never hidden behind the hook's own tag."""
import os

import pytest
import yaml

from ansible_collections.gse.stateless.plugins.module_utils import hooks

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def load(role, name="main.yml"):
    with open(os.path.join(ROOT, "roles", role, "tasks", name), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


@pytest.mark.parametrize("part", hooks.PARTS, ids=[p[0] for p in hooks.PARTS])
def test_role_follows_the_hook_table(part):
    hook, role, _stage, _chroot, _title, _phase, subs = part
    tasks = load(role)
    script_calls = [(t["gse.stateless.hook_scripts"]["hook"], t["gse.stateless.hook_scripts"]["when"])
                    for t in tasks if "gse.stateless.hook_scripts" in t]
    expected = [(hook, "before")]
    for sub, _title, _line in subs:
        expected += [(sub, "before"), (sub, "after")]
    expected.append((hook, "after"))
    assert script_calls == expected
    for t in tasks:
        if "gse.stateless.hook_scripts" in t:
            assert t["tags"] == ["always"]
    includes = [t for t in tasks if "ansible.builtin.include_tasks" in t]
    assert [i["ansible.builtin.include_tasks"]["apply"]["tags"] for i in includes] == [[hook, s[0]] for s in subs]
    # gse -q knows a sub-part by the name of its include (gse/progress.py).
    assert [i["name"].rsplit(" ", 1)[-1] for i in includes] == ["(%s)" % s[0] for s in subs]
    for i in includes:
        assert os.path.isfile(os.path.join(ROOT, "roles", role, "tasks", i["ansible.builtin.include_tasks"]["file"]))


def test_build_playbook_runs_the_parts_in_order():
    with open(os.path.join(ROOT, "playbooks", "build.yml"), encoding="utf-8") as fh:
        plays = yaml.safe_load(fh)
    roles = [r["role"].split(".")[-1] for play in plays for r in play["roles"]]
    assert roles == [p[1] for p in hooks.PARTS]
    chroot_roles = [r["role"].split(".")[-1] for play in plays if play["hosts"] == "gse_chroot" for r in play["roles"]]
    assert chroot_roles == [p[1] for p in hooks.PARTS if p[3]]


def test_every_role_documents_its_arguments():
    for part in hooks.PARTS:
        spec = os.path.join(ROOT, "roles", part[1], "meta", "argument_specs.yml")
        assert os.path.isfile(spec), spec
        with open(spec, encoding="utf-8") as fh:
            options = yaml.safe_load(fh)["argument_specs"]["main"]["options"]
        with open(os.path.join(ROOT, "roles", part[1], "defaults", "main.yml"), encoding="utf-8") as fh:
            defaults = yaml.safe_load(fh) or {}
        assert set(defaults) <= set(options), (part[1], set(defaults) - set(options))
