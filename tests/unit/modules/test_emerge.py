# -*- coding: utf-8 -*-
"""The emerge module: the exact commands it runs and what it reports.

emerge itself is replaced by a responder that changes a temporary package
database, mtimedb and log directory the way emerge would.
"""

from __future__ import annotations

import json
import os

import pytest

from ansible_collections.gse.stateless.plugins.modules import emerge as mod
from portage_module_harness import run_module

EMERGE = "/usr/bin/emerge"
PORTAGEQ = "/usr/bin/portageq"
BASE = [EMERGE, "--ask=n", "--nospinner", "--color=n"]

FAILED_OUTPUT = """\
>>> Emerging (1 of 3) dev-util/broken-build-1.0::gse-test
 * ERROR: dev-util/broken-build-1.0::gse-test failed (compile phase):
 *   broken on purpose
>>> Failed to emerge dev-util/broken-build-1.0, Log file:
>>>  '{log}'
"""


@pytest.fixture
def tree(tmp_path, monkeypatch):
    """A package database, world file, mtimedb and log dir in tmp_path."""
    t = {
        "vdb": tmp_path / "var/db/pkg",
        "world": tmp_path / "var/lib/portage/world",
        "world_sets": tmp_path / "var/lib/portage/world_sets",
        "mtimedb": tmp_path / "var/cache/edb/mtimedb",
        "logdir": tmp_path / "var/log/portage",
        "tmpdir": tmp_path / "var/tmp",
    }
    for key in ("vdb", "logdir", "tmpdir"):
        t[key].mkdir(parents=True)
    t["world"].parent.mkdir(parents=True)
    t["mtimedb"].parent.mkdir(parents=True)
    monkeypatch.setattr(mod, "VDB", str(t["vdb"]))
    monkeypatch.setattr(mod, "WORLD", str(t["world"]))
    monkeypatch.setattr(mod, "WORLD_SETS", str(t["world_sets"]))
    monkeypatch.setattr(mod, "MTIMEDB", str(t["mtimedb"]))
    return t


def install(tree, cpv, counter):
    d = tree["vdb"] / cpv
    d.mkdir(parents=True, exist_ok=True)
    (d / "COUNTER").write_text("%d\n" % counter)


def uninstall(tree, cpv):
    d = tree["vdb"] / cpv
    for f in d.iterdir():
        f.unlink()
    d.rmdir()


def write_resume(tree, cpvs, key="resume"):
    entries = [["ebuild", "/", cpv, "merge"] for cpv in cpvs]
    tree["mtimedb"].write_text(json.dumps({key: {"mergelist": entries, "favorites": [], "myopts": {}}}))


def test_merge_runs_the_options_in_order_and_reports_the_new_package(tree):
    def respond(argv):
        install(tree, "app-misc/hello-lab-1.0", 1)
        return 0, ">>> Emerging (1 of 1) app-misc/hello-lab-1.0::gse-test\n", ""

    run = run_module(mod.main, dict(atoms=["app-misc/hello-lab"], noreplace=True, oneshot=True,
                                    update=True, deep=True, newuse=True, changed_use=True, emptytree=True,
                                    nodeps=True, usepkg=True, keep_going=True, verbose=True, quiet_build=True,
                                    jobs=2, load_average=3.5, extra_args=["--with-bdeps=y"]),
                     respond=respond)
    assert not run.failed, run.result
    assert run.argvs == [BASE + ["--update", "--deep", "--newuse", "--changed-use", "--emptytree", "--oneshot",
                                 "--noreplace", "--nodeps", "--usepkg", "--keep-going", "--verbose",
                                 "--quiet-build=y", "--jobs=2", "--load-average=3.5", "--with-bdeps=y",
                                 "app-misc/hello-lab"]]
    env = run.calls[0][1]["environ_update"]
    assert env["NOCOLOR"] == "true" and env["CLEAN_DELAY"] == "0" and env["ACCEPT_PROPERTIES"] == "-interactive"
    assert run.result["changed"] is True
    assert run.result["merged"] == ["app-misc/hello-lab-1.0"]
    assert run.result["unmerged"] == []


def test_merge_that_changes_nothing_is_not_changed(tree):
    install(tree, "app-misc/hello-lab-1.0", 1)
    run = run_module(mod.main, dict(atoms=["app-misc/hello-lab"], noreplace=True))
    assert run.argvs == [BASE + ["--noreplace", "app-misc/hello-lab"]]
    assert run.result["changed"] is False
    assert run.result["merged"] == []


def test_reinstall_of_the_same_version_counts_as_merged(tree):
    install(tree, "app-misc/hello-lab-1.0", 1)

    def respond(argv):
        install(tree, "app-misc/hello-lab-1.0", 2)
        return 0, "", ""

    run = run_module(mod.main, dict(atoms=["app-misc/hello-lab"]), respond=respond)
    assert run.result["changed"] is True
    assert run.result["merged"] == ["app-misc/hello-lab-1.0"]


def test_color_is_passed_when_asked(tree):
    run = run_module(mod.main, dict(atoms=["@world"], color=True))
    assert run.argvs == [[EMERGE, "--ask=n", "--nospinner", "--color=y", "@world"]]
    assert "NOCOLOR" not in run.calls[0][1]["environ_update"]


def test_check_mode_pretends_and_reports_what_would_merge(tree):
    pretend = ("\nThese are the packages that would be merged, in order:\n\n"
               "[ebuild  N     ] app-misc/hello-lab-1.0::gse-test  0 KiB\n"
               "[ebuild   R    ] app-misc/lab-tools-1.0::gse-test  0 KiB\n"
               "[blocks B      ] app-misc/old (\"app-misc/old\" is soft blocking app-misc/lab-tools-1.0)\n"
               "[uninstall     ] app-misc/old-0.9\n")
    run = run_module(mod.main, dict(atoms=["app-misc/hello-lab", "app-misc/lab-tools"]),
                     respond=lambda argv: (0, pretend, ""), check_mode=True)
    assert run.argvs == [BASE + ["--pretend", "app-misc/hello-lab", "app-misc/lab-tools"]]
    assert run.result["changed"] is True
    assert run.result["merged"] == ["app-misc/hello-lab-1.0", "app-misc/lab-tools-1.0"]
    assert run.result["unmerged"] == ["app-misc/old-0.9"]
    assert os.listdir(tree["vdb"]) == []


def test_check_mode_with_nothing_to_merge_is_not_changed(tree):
    run = run_module(mod.main, dict(atoms=["app-misc/hello-lab"], noreplace=True),
                     respond=lambda argv: (0, "\nTotal: 0 packages, Size of downloads: 0 KiB\n", ""),
                     check_mode=True)
    assert run.result["changed"] is False and run.result["merged"] == []


def failing_emerge(tree, cpvs):
    """A responder that merges nothing, fails on cpvs[0] and leaves a resume list and a build log."""
    log = tree["logdir"] / "dev-util:broken-build-1.0:20261125-101010.log"

    def respond(argv):
        if argv[0] == PORTAGEQ:
            return 0, "PORTAGE_LOGDIR='%s'\nPORTAGE_TMPDIR='%s'\n" % (tree["logdir"], tree["tmpdir"]), ""
        write_resume(tree, cpvs)
        log.write_text("".join("line %d\n" % i for i in range(100)) + "make: *** [all] Error 1\n")
        return 1, FAILED_OUTPUT.format(log=log), ""
    return respond, log


def test_failure_reports_failed_package_resume_list_and_log(tree):
    cpvs = ["dev-util/broken-build-1.0", "app-misc/hello-lab-1.0", "app-misc/lab-tools-1.0"]
    respond, log = failing_emerge(tree, cpvs)
    run = run_module(mod.main, dict(atoms=["dev-util/broken-build", "app-misc/hello-lab", "app-misc/lab-tools"],
                                    log_tail_lines=3), respond=respond)
    assert run.failed
    r = run.result
    assert run.argvs == [
        BASE + ["dev-util/broken-build", "app-misc/hello-lab", "app-misc/lab-tools"],
        [PORTAGEQ, "envvar", "-v", "PORTAGE_LOGDIR", "PORTAGE_TMPDIR"],
    ]
    assert r["cmd"] == run.argvs[0] and r["rc"] == 1
    assert r["failed_package"] == "dev-util/broken-build-1.0"
    assert r["resume"] == cpvs
    assert r["log"] == str(log)
    assert r["log_tail"] == ["line 98", "line 99", "make: *** [all] Error 1"]
    assert "dev-util/broken-build-1.0" in r["msg"] and r["changed"] is False


def test_failure_without_a_log_line_finds_the_log_in_portage_logdir(tree):
    write_resume(tree, ["dev-util/broken-build-1.0"])
    log = tree["logdir"] / "dev-util:broken-build-1.0:20261125-111111.log"
    log.write_text("the end\n")

    def respond(argv):
        if argv[0] == PORTAGEQ:
            return 1, "PORTAGE_LOGDIR='%s'\nPORTAGE_TMPDIR=''\n" % tree["logdir"], ""
        return 1, "", "emerge: interrupted\n"

    run = run_module(mod.main, dict(atoms=["dev-util/broken-build"]), respond=respond)
    assert run.failed
    assert run.result["failed_package"] == "dev-util/broken-build-1.0"   # the resume list's head
    assert run.result["log"] == str(log) and run.result["log_tail"] == ["the end"]


def test_failure_falls_back_to_the_build_directory_log(tree):
    build_log = tree["tmpdir"] / "portage/dev-util/broken-build-1.0/temp/build.log"
    build_log.parent.mkdir(parents=True)
    build_log.write_text("compile failed\n")

    def respond(argv):
        if argv[0] == PORTAGEQ:
            return 1, "PORTAGE_LOGDIR=''\nPORTAGE_TMPDIR='%s'\n" % tree["tmpdir"], ""
        return 1, " * ERROR: dev-util/broken-build-1.0::gse-test failed (compile phase):\n", ""

    run = run_module(mod.main, dict(atoms=["dev-util/broken-build"]), respond=respond)
    assert run.result["failed_package"] == "dev-util/broken-build-1.0"
    assert run.result["resume"] == []
    assert run.result["log"] == str(build_log)


def test_skipfirst_continues_the_resume_list_without_its_head(tree):
    write_resume(tree, ["dev-util/broken-build-1.0", "app-misc/lab-tools-1.0"])

    def respond(argv):
        install(tree, "app-misc/lab-tools-1.0", 3)
        tree["mtimedb"].write_text("{}")
        return 0, "", ""

    run = run_module(mod.main, dict(atoms=["app-misc/ignored"], resume="skipfirst", jobs=2, noreplace=True),
                     respond=respond)
    assert not run.failed, run.result
    # The atoms and merge options belong to the stored list; --jobs still applies.
    assert run.argvs == [[EMERGE, "--resume", "--skipfirst", "--ask=n", "--nospinner", "--color=n", "--jobs=2"]]
    assert run.result["resumed"] is True
    assert run.result["skipped_packages"] == ["dev-util/broken-build-1.0"]
    assert run.result["merged"] == ["app-misc/lab-tools-1.0"] and run.result["changed"] is True


def test_resume_uses_the_backup_list_too(tree):
    write_resume(tree, ["app-misc/lab-tools-1.0"], key="resume_backup")
    run = run_module(mod.main, dict(resume="resume"))
    assert run.argvs == [[EMERGE, "--resume", "--ask=n", "--nospinner", "--color=n"]]
    assert run.result["resumed"] is True and run.result["skipped_packages"] == []


def test_resume_without_a_list_runs_the_requested_emerge(tree):
    run = run_module(mod.main, dict(atoms=["app-misc/hello-lab"], resume="skipfirst"))
    assert run.argvs == [BASE + ["app-misc/hello-lab"]]
    assert run.result["resumed"] is False and run.result["skipped_packages"] == []


def test_check_mode_resume_pretends(tree):
    write_resume(tree, ["dev-util/broken-build-1.0", "app-misc/lab-tools-1.0"])
    out = "[ebuild  N     ] app-misc/lab-tools-1.0::gse-test\n"
    run = run_module(mod.main, dict(resume="skipfirst"), respond=lambda argv: (0, out, ""), check_mode=True)
    assert run.argvs == [[EMERGE, "--resume", "--skipfirst", "--ask=n", "--nospinner", "--color=n", "--pretend"]]
    assert run.result["merged"] == ["app-misc/lab-tools-1.0"]


def test_merge_without_atoms_is_refused(tree):
    run = run_module(mod.main, dict())
    assert run.failed and "atoms is required" in run.result["msg"] and run.argvs == []


def test_depclean_reports_what_left(tree):
    install(tree, "app-misc/lab-tools-1.0", 1)

    def respond(argv):
        uninstall(tree, "app-misc/lab-tools-1.0")
        return 0, "", ""

    run = run_module(mod.main, dict(action="depclean"), respond=respond)
    assert run.argvs == [[EMERGE, "--depclean", "--ask=n", "--nospinner", "--color=n"]]
    assert run.result["changed"] is True and run.result["unmerged"] == ["app-misc/lab-tools-1.0"]


def test_depclean_of_atoms_in_check_mode_reads_the_selection(tree):
    out = ">>> These are the packages that would be unmerged:\n"
    err = "\nAll selected packages: =app-misc/lab-tools-1.0 =app-misc/hello-lab-1.0\n"
    run = run_module(mod.main, dict(action="depclean", atoms=["app-misc/lab-tools", "app-misc/hello-lab"]),
                     respond=lambda argv: (0, out, err), check_mode=True)
    assert run.argvs == [[EMERGE, "--depclean", "--ask=n", "--nospinner", "--color=n", "--pretend",
                          "app-misc/lab-tools", "app-misc/hello-lab"]]
    assert run.result["unmerged"] == ["app-misc/lab-tools-1.0", "app-misc/hello-lab-1.0"]


def test_deselect_compares_the_world_file(tree):
    tree["world"].write_text("app-misc/hello-lab\napp-portage/eix\n")

    def respond(argv):
        tree["world"].write_text("app-misc/hello-lab\n")
        return 0, '>>> Removing app-portage/eix from "world" favorites file...\n', ""

    run = run_module(mod.main, dict(action="deselect", atoms=["app-portage/eix"]), respond=respond)
    assert run.argvs == [[EMERGE, "--deselect", "--ask=n", "--nospinner", "--color=n", "app-portage/eix"]]
    assert run.result["changed"] is True and run.result["deselected"] == ["app-portage/eix"]

    again = run_module(mod.main, dict(action="deselect", atoms=["app-portage/eix"]))
    assert again.result["changed"] is False and again.result["deselected"] == []


def test_deselect_in_check_mode_reads_would_remove(tree):
    tree["world"].write_text("app-portage/eix\n")
    out = '>>> Would remove app-portage/eix from "world" favorites file...\n'
    run = run_module(mod.main, dict(action="deselect", atoms=["eix"]), respond=lambda argv: (0, out, ""),
                     check_mode=True)
    assert run.argvs == [[EMERGE, "--deselect", "--ask=n", "--nospinner", "--color=n", "--pretend", "eix"]]
    assert run.result["deselected"] == ["app-portage/eix"] and tree["world"].read_text() == "app-portage/eix\n"


def sync_responder(tree, repo_dir, new_stamp):
    def respond(argv):
        if argv[:2] == [PORTAGEQ, "get_repos"]:
            return 0, "gentoo gse-test\n", ""
        if argv[:2] == [PORTAGEQ, "get_repo_path"]:
            return 0, "%s\n%s\n" % (repo_dir, tree["vdb"]), ""
        if new_stamp:
            (repo_dir / "metadata/timestamp.chk").write_text(new_stamp)
        return 0, "", ""
    return respond


def test_sync_of_one_repo(tree, tmp_path):
    repo = tmp_path / "gentoo"
    (repo / "metadata").mkdir(parents=True)
    (repo / "metadata/timestamp.chk").write_text("Mon, 23 Nov 2026 00:45:00 +0000\n")
    run = run_module(mod.main, dict(action="sync", repo="gentoo"),
                     respond=sync_responder(tree, repo, "Wed, 25 Nov 2026 00:45:00 +0000\n"))
    assert run.argvs == [
        [PORTAGEQ, "get_repos", "/"],
        [PORTAGEQ, "get_repo_path", "/", "gentoo", "gse-test"],
        [EMERGE, "--sync", "--ask=n", "--nospinner", "--color=n", "gentoo"],
    ]
    assert run.result["changed"] is True and run.result["synced"] == ["gentoo"]

    again = run_module(mod.main, dict(action="sync", repo="gentoo"), respond=sync_responder(tree, repo, None))
    assert again.result["changed"] is False


def test_webrsync(tree, tmp_path):
    repo = tmp_path / "gentoo"
    (repo / "metadata").mkdir(parents=True)
    run = run_module(mod.main, dict(action="webrsync", verbose=True),
                     respond=sync_responder(tree, repo, "Wed, 25 Nov 2026 00:45:00 +0000\n"))
    assert run.argvs[-1] == ["/usr/bin/emerge-webrsync", "--verbose"]
    assert run.result["changed"] is True


def test_sync_in_check_mode_runs_nothing(tree):
    run = run_module(mod.main, dict(action="sync"), check_mode=True)
    assert run.argvs == [] and run.result["changed"] is True
    assert run.result["cmd"] == [EMERGE, "--sync", "--ask=n", "--nospinner", "--color=n"]


def test_failed_sync_fails_with_the_command(tree, tmp_path):
    def respond(argv):
        if argv[0] == PORTAGEQ:
            return 0, "", ""
        return 1, "", "!!! rsync error\n"

    run = run_module(mod.main, dict(action="sync"), respond=respond)
    assert run.failed and run.result["rc"] == 1 and run.result["stderr"] == "!!! rsync error\n"
    assert run.result["cmd"] == [EMERGE, "--sync", "--ask=n", "--nospinner", "--color=n"]


def test_failure_is_still_reported_without_portageq(tree):
    write_resume(tree, ["dev-util/broken-build-1.0"])
    run = run_module(mod.main, dict(atoms=["dev-util/broken-build"]), respond=lambda argv: (1, "", ""),
                     missing=("portageq",))
    assert run.failed and run.argvs == [BASE + ["dev-util/broken-build"]]
    assert run.result["failed_package"] == "dev-util/broken-build-1.0" and run.result["log"] is None


def test_live_log_runs_the_same_command_with_its_output_copied(tree):
    def respond(argv):
        install(tree, "app-misc/hello-lab-1.0", 1)
        return 0, ">>> Emerging (1 of 1) app-misc/hello-lab-1.0::gse-test\n", ""

    plain = run_module(mod.main, dict(atoms=["app-misc/hello-lab"], noreplace=True))
    live = run_module(mod.main, dict(atoms=["app-misc/hello-lab"], noreplace=True,
                                     live_log="/var/log/gse-live.log"), respond=respond)
    assert live.argvs == plain.argvs == [BASE + ["--noreplace", "app-misc/hello-lab"]]
    assert live.calls[0][1] == {"environ_update": plain.calls[0][1]["environ_update"],
                                "live_log": "/var/log/gse-live.log"}
    assert "live_log" not in plain.calls[0][1]
    assert live.result["merged"] == ["app-misc/hello-lab-1.0"]
    assert live.result["stdout"] == ">>> Emerging (1 of 1) app-misc/hello-lab-1.0::gse-test\n"


def test_a_failed_build_with_a_live_log_is_still_described(tree):
    cpvs = ["dev-util/broken-build-1.0"]
    respond, log = failing_emerge(tree, cpvs)
    run = run_module(mod.main, dict(atoms=["dev-util/broken-build"], live_log="/var/log/gse-live.log"),
                     respond=respond)
    assert run.failed and run.result["failed_package"] == "dev-util/broken-build-1.0"
    # Only emerge goes through the live log; portageq's answer is not progress.
    assert [kw.get("live_log") for _argv, kw in run.calls] == ["/var/log/gse-live.log", None]


def test_resume_is_bound_to_the_emerge_that_failed(tree):
    """gpkg fails and records its list; gess, run again first, does not consume it (a normal
    emerge that replaces mtimedb's list); gpkg then continues its own list, restored."""
    cpvs = ["dev-util/broken-build-1.0", "app-misc/hello-lab-1.0"]
    respond, _log = failing_emerge(tree, cpvs)
    run = run_module(mod.main, dict(atoms=["dev-util/broken-build", "app-misc/hello-lab"], resume_id="gpkg"),
                     respond=respond)
    assert run.failed
    record = json.loads((tree["mtimedb"].parent / "gse-resume.json").read_text())
    assert record["task"] == "gpkg" and [e[2] for e in record["resume"]["mergelist"]] == cpvs

    def other(argv):
        # A successful emerge of another list: emerge keeps no resume list afterwards.
        install(tree, "app-portage/eix-0.36", 5)
        tree["mtimedb"].write_text("{}")
        return 0, "", ""

    run = run_module(mod.main, dict(atoms=["app-portage/eix"], resume="skipfirst", resume_id="gess",
                                    noreplace=True), respond=other)
    assert not run.failed and run.result["resumed"] is False
    assert run.argvs == [BASE + ["--noreplace", "app-portage/eix"]]

    seen = {}

    def own(argv):
        seen["mtimedb"] = json.loads(tree["mtimedb"].read_text())
        install(tree, "app-misc/hello-lab-1.0", 6)
        tree["mtimedb"].write_text("{}")
        return 0, "", ""

    run = run_module(mod.main, dict(atoms=["app-misc/ignored"], resume="skipfirst", resume_id="gpkg"), respond=own)
    assert not run.failed, run.result
    assert run.argvs == [[EMERGE, "--resume", "--skipfirst", "--ask=n", "--nospinner", "--color=n"]]
    assert [e[2] for e in seen["mtimedb"]["resume"]["mergelist"]] == cpvs  # put back before --resume
    assert run.result["skipped_packages"] == ["dev-util/broken-build-1.0"]
    assert run.result["merged"] == ["app-misc/hello-lab-1.0"]
    assert not (tree["mtimedb"].parent / "gse-resume.json").exists()


def test_bound_emerge_without_its_record_runs_the_request(tree):
    write_resume(tree, ["dev-util/broken-build-1.0", "app-misc/lab-tools-1.0"])
    run = run_module(mod.main, dict(atoms=["app-misc/hello-lab"], resume="resume", resume_id="gess"))
    assert run.argvs == [BASE + ["app-misc/hello-lab"]]
    assert run.result["resumed"] is False
