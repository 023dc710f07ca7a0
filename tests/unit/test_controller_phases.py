"""controller_dracut/phases.yml is the one table of the controller's boot phases:
every module-setup.sh installs exactly its rows, and docs/controller.md shows it."""
import importlib.machinery
import importlib.util
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MODULES = os.path.join(ROOT, "controller_dracut")
# inst_hook <hook> <priority> "$moddir/<script>"
INST_HOOK = re.compile(r'^\s*inst_hook\s+(\S+)\s+(\d+)\s+"\$moddir/([^"]+)"\s*$')


def generator():
    path = os.path.join(ROOT, "scripts", "gen-controller-phases")
    loader = importlib.machinery.SourceFileLoader("gen_controller_phases", path)
    mod = importlib.util.module_from_spec(importlib.util.spec_from_loader(loader.name, loader))
    loader.exec_module(mod)
    return mod


def installed_hooks(setup_text):
    """[(hook, priority, script)] of a module-setup.sh, in the order it installs them."""
    out = []
    for line in setup_text.splitlines():
        if "inst_hook" in line and not line.lstrip().startswith("#"):
            m = INST_HOOK.match(line)
            assert m, "an inst_hook line the table cannot describe: %r" % line
            out.append(m.groups())
    return out


def modules():
    return sorted(d for d in os.listdir(MODULES) if re.match(r"\d\dgse-", d))


@pytest.mark.parametrize("module", modules())
def test_module_setup_installs_the_rows_of_its_module(module):
    table = generator().load(ROOT)
    with open(os.path.join(MODULES, module, "module-setup.sh"), encoding="utf-8") as fh:
        installed = installed_hooks(fh.read())
    rows = [(r["hook"], r["priority"], r["script"]) for r in table["phases"] if r["module"] == module]
    assert sorted(installed) == sorted(rows)
    for _hook, _priority, script in rows:
        assert os.path.isfile(os.path.join(MODULES, module, script)), script


def test_the_table_is_in_boot_order_and_complete():
    gen = generator()
    table = gen.load(ROOT)
    phases = table["phases"]
    assert phases == sorted(phases, key=gen.boot_key)
    assert len({gen.boot_key(r) for r in phases}) == len(phases), "two phases at one hook and priority"
    assert sorted(table["modules"]) == modules()
    for row in phases:
        assert set(row) == {"phase", "module", "hook", "priority", "script", "decides"}, row
        assert row["module"] in table["modules"] and row["decides"], row
        assert re.fullmatch(r"\d\d", row["priority"]), row


def test_a_hook_missing_from_the_table_is_found():
    setup = 'install() {\n    inst_hook pre-mount 10 "$moddir/a.sh"\n    # inst_hook old\n' \
            '    inst_hook pre-pivot 60 "$moddir/b.sh"\n}\n'
    assert installed_hooks(setup) == [("pre-mount", "10", "a.sh"), ("pre-pivot", "60", "b.sh")]
    with pytest.raises(AssertionError):
        installed_hooks('inst_hook pre-mount "$prio" "$moddir/a.sh"\n')


def test_controller_md_is_generated_from_the_table():
    with open(os.path.join(ROOT, "docs", "controller.md"), encoding="utf-8") as fh:
        text = fh.read()
    assert text == generator().render(ROOT), "docs/controller.md is stale: run scripts/gen-controller-phases"
    # The prose names phases by "(hook NN)": each names a row of the table.
    rows = {(r["hook"], r["priority"]) for r in generator().load(ROOT)["phases"]}
    for hook, priority in re.findall(r"\((cmdline|pre-udev|pre-trigger|initqueue|pre-mount|mount|pre-pivot|cleanup)"
                                     r" (\d\d)\b", text):
        assert (hook, priority) in rows, (hook, priority)
