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


@pytest.mark.parametrize("part", hooks.PARTS, ids=[p.hook for p in hooks.PARTS])
def test_role_follows_the_hook_table(part):
    hook, role, subs = part.hook, part.role, part.subs
    tasks = load(role)
    script_calls = [(t["gse.stateless.hook_scripts"]["hook"], t["gse.stateless.hook_scripts"]["when"])
                    for t in tasks if "gse.stateless.hook_scripts" in t]
    expected = [(hook, "before")]
    for sub in subs:
        expected += [(sub.hook, "before"), (sub.hook, "after")]
    expected.append((hook, "after"))
    assert script_calls == expected
    for t in tasks:
        if "gse.stateless.hook_scripts" in t:
            assert t["tags"] == ["always"]
    includes = [t for t in tasks if "ansible.builtin.include_tasks" in t]
    assert [i["ansible.builtin.include_tasks"]["apply"]["tags"] for i in includes] == [[hook, s.hook] for s in subs]
    # gse -q knows a sub-part by the task file the table names (gse/progress.py).
    assert [i["ansible.builtin.include_tasks"]["file"] for i in includes] == [s.tasks for s in subs]
    # Lawful-good given as a variable skips the include as --skip-tags would (an AWX survey answer).
    assert [i.get("when") for i in includes] == [[hooks.skip_condition(s.hook)] + ([s.when] if s.when else [])
                                                 for s in subs]
    for i in includes:
        assert os.path.isfile(os.path.join(ROOT, "roles", role, "tasks", i["ansible.builtin.include_tasks"]["file"]))


def test_build_playbook_runs_the_parts_in_order():
    with open(os.path.join(ROOT, "playbooks", "build.yml"), encoding="utf-8") as fh:
        plays = yaml.safe_load(fh)
    roles = [r["role"].split(".")[-1] for play in plays for r in play["roles"]]
    assert roles == [p.role for p in hooks.PARTS]
    chroot_roles = [r["role"].split(".")[-1] for play in plays if play["hosts"] == "gse_chroot" for r in play["roles"]]
    assert chroot_roles == [p.role for p in hooks.PARTS if p.chroot]


def test_every_role_documents_its_arguments():
    for part in hooks.PARTS:
        spec = os.path.join(ROOT, "roles", part.role, "meta", "argument_specs.yml")
        assert os.path.isfile(spec), spec
        with open(spec, encoding="utf-8") as fh:
            options = yaml.safe_load(fh)["argument_specs"]["main"]["options"]
        with open(os.path.join(ROOT, "roles", part.role, "defaults", "main.yml"), encoding="utf-8") as fh:
            defaults = yaml.safe_load(fh) or {}
        assert set(defaults) <= set(options), (part.role, set(defaults) - set(options))
