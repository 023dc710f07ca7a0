"""The committed man pages are the ones the option and hook tables generate, and man reads them."""
import os
import re
import subprocess

import pytest

from gse import layout, manpage
from gse.options import OPTIONS

MAN = os.path.join(os.path.dirname(layout.PACKAGE_DIR), "man")


@pytest.mark.parametrize("name,render", [("gse.1", manpage.page1), ("gse.5", manpage.page5)])
def test_committed_page_is_up_to_date(name, render):
    with open(os.path.join(MAN, name), encoding="utf-8") as f:
        assert f.read() == render(), "regenerate with: python -m gse.manpage man"


def _rendered(name):
    # LC_ALL=C: plain ASCII hyphens; MANPAGER=cat: no overstrike for bold.
    env = dict(os.environ, MANWIDTH="200", LC_ALL="C", MANPAGER="cat", MAN_KEEP_FORMATTING="")
    r = subprocess.run(["man", "--warnings", "-l", os.path.join(MAN, name)], capture_output=True,
                       text=True, env=env, check=True)
    assert r.stderr == ""
    return re.sub(".\b", "", r.stdout)


def test_man_1_lists_every_flag_and_the_exit_codes():
    text = _rendered("gse.1")
    for opt in OPTIONS:
        for name in opt.names + opt.extra_names:
            assert name in text
    for code in ("0", "1", "2", "130"):
        assert re.search(r"^ +%s\s+[A-Z]" % code, text, re.M)
    assert 'gse --base=catalyst --sdir=/root/myscripts --do="script1,script2 script3 script4,script5"' in text


def test_man_5_lists_every_hook_and_the_profile():
    text = _rendered("gse.5")
    for hook in layout.hooks().ALL_HOOKS:
        assert re.search(r"^ +%s\b" % hook, text, re.M)
    assert "THE GSE PROFILE" in text and "users.yml" in text
