# -*- coding: utf-8 -*-
"""Parsing of what Portage leaves behind: mtimedb resume lists and emerge's output."""

from __future__ import annotations

import json

from ansible_collections.gse.stateless.plugins.module_utils import emerge_output
from ansible_collections.gse.stateless.plugins.module_utils import portage_mtimedb

# The shape emerge 3.0.83 writes after `emerge A B C` fails on A.
MTIMEDB = {
    "info": {},
    "ldpath": {},
    "resume": {
        "favorites": ["dev-util/broken-build", "app-misc/hello-lab", "app-misc/lab-tools"],
        "mergelist": [
            ["ebuild", "/", "dev-util/broken-build-1.0", "merge"],
            ["ebuild", "/", "app-misc/hello-lab-1.0", "merge"],
            ["ebuild", "/", "app-misc/lab-tools-1.0", "merge"],
        ],
        "myopts": {"--keep-going": False},
    },
    "starttime": 0,
    "updates": {},
    "version": "3.0.83",
}


def test_resume_list_in_order(tmp_path):
    path = tmp_path / "mtimedb"
    path.write_text(json.dumps(MTIMEDB))
    assert portage_mtimedb.read_resume(str(path)) == (
        "resume", ["dev-util/broken-build-1.0", "app-misc/hello-lab-1.0", "app-misc/lab-tools-1.0"])


def test_resume_backup_is_used_when_resume_is_gone():
    db = {"resume_backup": MTIMEDB["resume"]}
    key, entries = portage_mtimedb.resume_entries(db)
    assert key == "resume_backup" and entries[0] == ["ebuild", "/", "dev-util/broken-build-1.0", "merge"]


def test_nomerge_and_malformed_entries_are_left_out():
    db = {"resume": {"mergelist": [["ebuild", "/", "a/b-1", "nomerge"], ["bad"], ["binary", "/", "c/d-2", "merge"]]}}
    assert portage_mtimedb.resume_cpvs(db) == ["c/d-2"]


def test_missing_empty_or_broken_mtimedb_has_no_resume_list(tmp_path):
    assert portage_mtimedb.read_resume(str(tmp_path / "absent")) == (None, [])
    (tmp_path / "broken").write_text("{not json")
    assert portage_mtimedb.read_resume(str(tmp_path / "broken")) == (None, [])
    assert portage_mtimedb.resume_entries({"resume": {"mergelist": []}}) == (None, [])
    assert portage_mtimedb.resume_entries({"resume": ["not", "a", "dict"]}) == (None, [])


PRETEND = """\

These are the packages that would be merged, in order:

Calculating dependencies  ... done!
Dependency resolution took 0.31 s (backtrack: 0/20).

[ebuild  N     ] app-misc/hello-lab-1.0::gse-test  0 KiB
[binary   R    ] app-misc/lab-tools-1.0-1::gse-test  12 KiB
[ebuild     U  ] sys-apps/foo-2.0:2::gentoo [1.0:2::gentoo] USE="-bar" 0 KiB
[nomerge       ] sys-apps/bar-1::gentoo
[blocks B      ] app-misc/old ("app-misc/old" is soft blocking app-misc/lab-tools-1.0)
[uninstall     ] app-misc/old-0.9

Total: 3 packages (1 upgrade, 1 new, 1 reinstall, 1 uninstall), Size of downloads: 12 KiB
"""


def test_pretend_list():
    assert emerge_output.would_merge(PRETEND) == [
        "app-misc/hello-lab-1.0", "app-misc/lab-tools-1.0-1", "sys-apps/foo-2.0:2"]
    assert emerge_output.would_unmerge(PRETEND) == ["app-misc/old-0.9"]
    assert emerge_output.pretend_list(PRETEND)[0] == {"type": "ebuild", "flags": "N", "cpv": "app-misc/hello-lab-1.0"}


def test_colour_codes_are_ignored():
    coloured = "[\x1b[32;01mebuild\x1b[0m  \x1b[32;01mN\x1b[0m     ] \x1b[32mapp-misc/hello-lab-1.0\x1b[0m::gse-test\n"
    assert emerge_output.would_merge(coloured) == ["app-misc/hello-lab-1.0"]


FAILED_KEEP_GOING = """\
>>> Emerging (1 of 3) dev-util/broken-build-1.0::gse-test
 * ERROR: dev-util/broken-build-1.0::gse-test failed (compile phase):
 *   broken on purpose
>>> Failed to emerge dev-util/broken-build-1.0, Log file:
>>>  '/var/log/portage/dev-util:broken-build-1.0:20261125-101010.log'
>>> Emerging (2 of 3) app-misc/hello-lab-1.0::gse-test
>>> Installing (2 of 3) app-misc/hello-lab-1.0::gse-test
 * ERROR: app-misc/other-2::gse-test failed (install phase):

 * The following 2 packages have failed to build, install, or execute
 * postinst:
 *
 *  dev-util/broken-build-1.0, Log file:
 *   '/var/log/portage/dev-util:broken-build-1.0:20261125-101010.log'
 *  app-misc/other-2 (postinst failed), Log file:
 *   '/var/log/portage/app-misc:other-2:20261125-101011.log'
"""


def test_failed_packages_and_their_logs():
    assert emerge_output.failed_packages(FAILED_KEEP_GOING) == ["dev-util/broken-build-1.0", "app-misc/other-2"]
    assert emerge_output.failure_logs(FAILED_KEEP_GOING) == [
        "/var/log/portage/dev-util:broken-build-1.0:20261125-101010.log",
        "/var/log/portage/app-misc:other-2:20261125-101011.log",
    ]


def test_resolution_failure_names_no_package():
    text = "\nemerge: there are no ebuilds to satisfy \"app-misc/nosuch\".\n"
    assert emerge_output.failed_packages(text) == [] and emerge_output.failure_logs(text) == []


def test_depclean_and_deselect_pretend():
    assert emerge_output.would_unmerge("\nAll selected packages: =a/b-1 =c/d-2.0-r1\n") == ["a/b-1", "c/d-2.0-r1"]
    text = ('>>> Would remove app-portage/eix from "world" favorites file...\n'
            '>>> Would remove @lab from "world_sets" favorites file...\n')
    assert emerge_output.would_deselect(text) == ["app-portage/eix", "@lab"]
