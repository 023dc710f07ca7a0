# -*- coding: utf-8 -*-
"""The make_conf module: set, append, remove; comments and other lines stay."""

from __future__ import annotations

import pytest

from ansible_collections.gse.stateless.plugins.modules import make_conf as mod
from portage_module_harness import run_module

STAGE3_MAKE_CONF = """\
# These settings were set by the catalyst build script that automatically
# built this stage.
COMMON_FLAGS="-O2 -pipe"
CFLAGS="${COMMON_FLAGS}"
FEATURES="sandbox \\
    parallel-fetch"
USE='X alsa'   # desktop

LC_MESSAGES=C.utf8
"""


@pytest.fixture
def conf(tmp_path):
    path = tmp_path / "make.conf"
    path.write_text(STAGE3_MAKE_CONF)
    return path


def test_set_append_remove_keep_the_rest(conf):
    args = dict(path=str(conf),
                variables={"MAKEOPTS": "-j4", "USE": ["X", "alsa", "-systemd"], "COMMON_FLAGS": "-O2 -pipe"},
                append={"FEATURES": ["ccache", "parallel-fetch"]},
                remove=["LC_MESSAGES"])
    run = run_module(mod.main, args, diff=True)
    assert not run.failed, run.result
    assert run.argvs == []
    assert conf.read_text() == """\
# These settings were set by the catalyst build script that automatically
# built this stage.
COMMON_FLAGS="-O2 -pipe"
CFLAGS="${COMMON_FLAGS}"
FEATURES="sandbox parallel-fetch ccache"
USE="X alsa -systemd"   # desktop

MAKEOPTS="-j4"
"""
    assert run.result["changed"] is True
    assert run.result["changed_variables"] == ["FEATURES", "LC_MESSAGES", "MAKEOPTS", "USE"]
    assert run.result["variables"]["CFLAGS"] == "${COMMON_FLAGS}"
    assert run.result["diff"]["before"] == STAGE3_MAKE_CONF

    again = run_module(mod.main, args)
    assert again.result["changed"] is False and again.result["changed_variables"] == []


def test_quoting_round_trips(conf):
    value = 'say "hi" \\ `now` ${HOME}'
    run = run_module(mod.main, dict(path=str(conf), variables={"ODD": value}))
    assert 'ODD="say \\"hi\\" \\\\ \\`now\\` ${HOME}"\n' in conf.read_text()
    assert run.result["variables"]["ODD"] == value
    assert run_module(mod.main, dict(path=str(conf), variables={"ODD": value})).result["changed"] is False


def test_null_value_removes_and_missing_file_is_created(tmp_path):
    path = tmp_path / "make.conf"
    run = run_module(mod.main, dict(path=str(path), variables={"ACCEPT_LICENSE": "*", "GONE": None}))
    assert run.result["changed"] is True and path.read_text() == 'ACCEPT_LICENSE="*"\n'
    run = run_module(mod.main, dict(path=str(path), variables={"ACCEPT_LICENSE": None}))
    assert run.result["changed"] is True and path.read_text() == ""


def test_check_mode_reports_without_writing(conf):
    run = run_module(mod.main, dict(path=str(conf), append={"FEATURES": "ccache"}), check_mode=True)
    assert run.result["changed"] is True and conf.read_text() == STAGE3_MAKE_CONF


def test_directory_and_bad_names_are_refused(tmp_path, conf):
    assert run_module(mod.main, dict(path=str(tmp_path), variables={"A": "1"})).failed
    assert run_module(mod.main, dict(path=str(conf), variables={"BAD-NAME": "1"})).failed


def test_unterminated_quote_fails_instead_of_rewriting(conf):
    conf.write_text('USE="X\n')
    run = run_module(mod.main, dict(path=str(conf), variables={"MAKEOPTS": "-j2"}))
    assert run.failed and "unterminated" in run.result["msg"]
    assert conf.read_text() == 'USE="X\n'


def test_discard_takes_words_out_of_a_value(tmp_path):
    conf = tmp_path / "make.conf"
    conf.write_text('FEATURES="-news distcc ccache"\nUSE="X"\n')
    run = run_module(mod.main, {"path": str(conf), "discard": {"FEATURES": ["distcc", "ccache"]}})
    assert run.result["changed"] is True
    assert conf.read_text() == 'FEATURES="-news"\nUSE="X"\n'
    again = run_module(mod.main, {"path": str(conf), "discard": {"FEATURES": ["distcc", "ccache"]}})
    assert again.result["changed"] is False
