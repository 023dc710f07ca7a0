"""Everything scripts/gen-hooks makes from the hook table is up to date (no drift)."""
import importlib.machinery
import importlib.util
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCRIPT = os.path.join(ROOT, "scripts", "gen-hooks")


def load_generator():
    loader = importlib.machinery.SourceFileLoader("gen_hooks", SCRIPT)
    mod = importlib.util.module_from_spec(importlib.util.spec_from_loader("gen_hooks", loader))
    loader.exec_module(mod)
    return mod


def test_generated_files_are_up_to_date():
    assert load_generator().stale(ROOT) == [], "run scripts/gen-hooks"


def test_every_part_role_and_the_docs_are_generated():
    rendered = load_generator().render(ROOT)
    from ansible_collections.gse.stateless.plugins.module_utils import hooks
    for part in hooks.PARTS:
        assert os.path.join("roles", part.role, "tasks", "main.yml") in rendered
        for sub in part.subs:
            assert "| `%s` |" % sub.hook in rendered["docs/build.md"]
            assert "- %s\n" % sub.hook in rendered["awx/gse.yml"]


def test_check_finds_a_stale_file(tmp_path):
    # A copy of the tree with one wrapper edited by hand: --check names it.
    gen = load_generator()
    for rel, text in gen.render(ROOT).items():
        path = tmp_path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    assert gen.stale(str(tmp_path)) == []
    edited = tmp_path / "roles" / "kernel" / "tasks" / "main.yml"
    edited.write_text(edited.read_text().replace("tags: [gparth, gker]", "tags: [gker]"))
    assert gen.stale(str(tmp_path)) == [os.path.join("roles", "kernel", "tasks", "main.yml")]
    r = subprocess.run([sys.executable, SCRIPT, "--check"], capture_output=True, text=True, cwd=ROOT)
    assert (r.returncode, r.stdout) == (0, "")
