# -*- coding: utf-8 -*-
"""The locale module: locale.gen, locale-gen, 02locale and env-update."""

from __future__ import annotations

import pytest

from ansible_collections.gse.stateless.plugins.modules import locale as mod
from portage_module_harness import run_module

GENTOO_LOCALE_GEN = """\
# /etc/locale.gen: list all of the locales you want to have on your system.
#
# The format of each line:
# <locale name> <charset>
#en_US ISO-8859-1
#en_US.UTF-8 UTF-8
"""


@pytest.fixture
def root(tmp_path):
    (tmp_path / "etc/env.d").mkdir(parents=True)
    (tmp_path / "etc/locale.gen").write_text(GENTOO_LOCALE_GEN + "fr_FR.UTF-8 UTF-8\n")
    return tmp_path


def locale_a(argv):
    if argv == ["/usr/bin/locale", "-a"]:
        return 0, "C\nC.utf8\nPOSIX\nen_US.utf8\nde_DE.utf8\n", ""
    return 0, "", ""


def test_writes_locale_gen_keeping_comments_and_sets_lang(root):
    args = dict(locales=["en_US.UTF-8  UTF-8", "de_DE.UTF-8 UTF-8"], lang="en_US.UTF-8",
                lc_collate="C.UTF-8", root=str(root))
    run = run_module(mod.main, args, diff=True)
    assert not run.failed, run.result
    # Commands act on the running system: with another root none run.
    assert run.argvs == []
    assert (root / "etc/locale.gen").read_text() == GENTOO_LOCALE_GEN + "\nen_US.UTF-8 UTF-8\nde_DE.UTF-8 UTF-8\n"
    assert (root / "etc/env.d/02locale").read_text() == 'LANG="en_US.UTF-8"\nLC_COLLATE="C.UTF-8"\n'
    assert run.result["changed"] is True and len(run.result["diff"]) == 2

    again = run_module(mod.main, args)
    assert again.result["changed"] is False and again.result["changed_files"] == []


def test_runs_locale_gen_and_env_update_on_the_running_system(root, monkeypatch):
    monkeypatch.setattr(mod, "LOCALE_GEN", str(root / "etc/locale.gen").lstrip("/"))
    monkeypatch.setattr(mod, "ENV_FILE", str(root / "etc/env.d/02locale").lstrip("/"))
    run = run_module(mod.main, dict(locales=["en_US.UTF-8 UTF-8"], lang="en_US.utf8"), respond=locale_a)
    assert not run.failed, run.result
    assert run.argvs == [["/usr/bin/locale-gen"], ["/usr/bin/locale", "-a"], ["/usr/bin/env-update"]]
    assert run.result["locale_gen"]["rc"] == 0

    again = run_module(mod.main, dict(locales=["en_US.UTF-8 UTF-8"], lang="en_US.utf8"), respond=locale_a)
    assert again.argvs == [["/usr/bin/locale", "-a"]]
    assert again.result["changed"] is False


def test_unavailable_lang_is_refused(root, monkeypatch):
    monkeypatch.setattr(mod, "ENV_FILE", str(root / "etc/env.d/02locale").lstrip("/"))
    run = run_module(mod.main, dict(lang="ja_JP.UTF-8"), respond=locale_a)
    assert run.failed and "ja_JP.UTF-8" in run.result["msg"]
    assert not (root / "etc/env.d/02locale").exists()


def test_missing_locale_gen_is_a_warning_not_a_failure(root, monkeypatch):
    monkeypatch.setattr(mod, "LOCALE_GEN", str(root / "etc/locale.gen").lstrip("/"))
    run = run_module(mod.main, dict(locales=["en_US.UTF-8 UTF-8"]), missing=("locale-gen",))
    assert not run.failed and run.argvs == [] and run.result["changed"] is True


def test_failed_locale_gen_fails_with_its_output(root, monkeypatch):
    monkeypatch.setattr(mod, "LOCALE_GEN", str(root / "etc/locale.gen").lstrip("/"))
    run = run_module(mod.main, dict(locales=["en_US.UTF-8 UTF-8"]), respond=lambda argv: (1, "", "bad charset\n"))
    assert run.failed and run.result["cmd"] == ["/usr/bin/locale-gen"] and run.result["stderr"] == "bad charset\n"


def test_other_02locale_variables_are_kept(root):
    (root / "etc/env.d/02locale").write_text('LANG="C"\nLC_MESSAGES="C"\n')
    run = run_module(mod.main, dict(lang="de_DE.utf8", root=str(root)))
    assert (root / "etc/env.d/02locale").read_text() == 'LANG="de_DE.utf8"\nLC_MESSAGES="C"\n'
    assert run.result["changed"] is True


def test_check_mode_writes_nothing(root):
    run = run_module(mod.main, dict(locales=["en_US.UTF-8 UTF-8"], lang="en_US.utf8", root=str(root)),
                     check_mode=True)
    assert run.result["changed"] is True and run.argvs == []
    assert not (root / "etc/env.d/02locale").exists()
    assert (root / "etc/locale.gen").read_text() == GENTOO_LOCALE_GEN + "fr_FR.UTF-8 UTF-8\n"


def test_malformed_entry_is_refused(root):
    run = run_module(mod.main, dict(locales=["en_US.UTF-8"], root=str(root)))
    assert run.failed and "<locale> <charset>" in run.result["msg"]


def test_normalize_compares_codesets_like_glibc():
    assert mod.normalize("en_US.UTF-8") == mod.normalize("en_US.utf8")
    assert mod.normalize("sr_RS.UTF-8@latin") == "sr_RS.utf8@latin"
