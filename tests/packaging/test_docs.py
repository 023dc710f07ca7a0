"""The newcomer's documents: every relative link leads to a file (and anchor) that exists."""
import os
import re

import pytest

from tests.packaging.test_version import ROOT

DOCS = os.path.join(ROOT, "docs")
PAGES = ["quickstart.md", "deployment.md", "awx.md", "troubleshooting.md", "packaging.md"]
LINK = re.compile(r"\]\(([^)#\s]+)?(#[^)\s]+)?\)")


def anchors(path):
    """GitHub-style anchors of a Markdown file's headings."""
    out = set()
    for line in open(path, encoding="utf-8"):
        m = re.match(r"#+ (.*)", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-")
            out.add("#" + slug)
    return out


@pytest.mark.parametrize("page", PAGES)
def test_links_resolve(page):
    path = os.path.join(DOCS, page)
    text = open(path, encoding="utf-8").read()
    links = LINK.findall(text)
    assert links, "a page of the set links to the others"
    for target, anchor in links:
        if target.startswith(("http://", "https://")):
            continue
        dest = os.path.normpath(os.path.join(DOCS, target)) if target else path
        assert os.path.exists(dest), (page, target)
        if anchor:
            assert anchor in anchors(dest), (page, target, anchor)


def test_container_images_are_said_to_be_unbuildable_here():
    for page in ("packaging.md", "troubleshooting.md"):
        text = open(os.path.join(DOCS, page), encoding="utf-8").read()
        assert "no container engine" in text, page
