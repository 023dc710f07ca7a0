"""docs/config/ is what scripts/gen-config-docs makes from config.d/ now."""
import os
import subprocess
import sys

from tests.packaging.test_version import ROOT

SCRIPT = os.path.join(ROOT, "scripts", "gen-config-docs")


def render():
    code = ("import runpy, json, sys; g = runpy.run_path(%r); "
            "json.dump(g['render'](), sys.stdout)" % SCRIPT)
    import json
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out)


def test_config_reference_is_up_to_date():
    pages = render()
    docs = os.path.join(ROOT, "docs", "config")
    assert sorted(os.listdir(docs)) == sorted(pages), "run scripts/gen-config-docs"
    for name, text in pages.items():
        with open(os.path.join(docs, name), encoding="utf-8") as fh:
            assert fh.read() == text, "docs/config/%s is stale: run scripts/gen-config-docs" % name


def test_every_category_and_variable_has_its_page():
    sys.path.insert(0, os.path.join(ROOT, "plugins", "module_utils"))
    import configd
    pages = render()
    for cat, title, names in configd.CATEGORIES:
        text = pages[cat + ".md"]
        assert text.startswith("# config.d: %s\n" % title)
        for name in names:
            assert "## `%s`" % name in text, (cat, name)
        assert "(%s.md)" % cat in pages["README.md"]
