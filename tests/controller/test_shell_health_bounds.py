"""The state files the health check appends to, healthy and deprived, keep
the newest GSE_HEALTHY_LINES / GSE_DEPRIVED_LINES versions (dash, on this
host, a tmpfs as the state area).

The disk is a double: gse_fallback's label and install-record functions are
stubbed (they need partitions); what is shown is what the state area holds
after the real gse_judge and gse_fallback ran."""
import os

import pytest

from test_shell_lib import LIB
from test_shell_refusals import shs, state  # noqa: F401  (state: the tmpfs fixture)

HEALTH = os.path.join(LIB, "93gse-health", "gse-health.sh")


def fallback():
    """gse_fallback as the hook defines it (the hook runs the check when sourced)."""
    text = open(HEALTH).read()
    start = text.index("gse_fallback() {")
    return text[start:text.index("\n}\n", start) + 3]


def old_versions(path, n):
    path.write_text("".join(f"v{i}\n" for i in range(n)))


@pytest.mark.parametrize("setting, kept", [("GSE_HEALTHY_LINES=3", 3), ("unset GSE_HEALTHY_LINES", 100)])
def test_a_healthy_version_is_remembered_within_the_bound(tmp_path, state, setting, kept):  # noqa: F811
    """150 versions proven before (a client of years); a new one completes a
    healthy cycle: it is remembered last, the oldest go."""
    old_versions(state / "healthy", 150)
    (state / "health").mkdir()
    (state / "health" / "cycle").write_text("version=v-new\n")
    (state / "health" / "startup").write_text("")
    (state / "health" / "shutdown").write_text("")
    r = shs(f". {LIB}/93gse-health/gse-health-lib.sh; {setting}; gse_judge v-new; echo rc=$?;"
            "gse_proven v-new; echo proven=$?", tmp_path, state)
    assert r.stdout.split() == ["rc=0", "proven=0"], r.stdout + r.stderr
    lines = (state / "healthy").read_text().splitlines()
    assert len(lines) == kept
    assert lines[-1] == "v-new" and lines[-2] == "v149" and lines[0] == f"v{150 - kept + 1}"


@pytest.mark.parametrize("setting, kept", [("GSE_DEPRIVED_LINES=3", 3), ("unset GSE_DEPRIVED_LINES", 100)])
def test_a_deprived_version_is_remembered_within_the_bound(tmp_path, state, setting, kept):  # noqa: F811
    """150 versions deprived before; an unhealthy cycle deprives one more."""
    old_versions(state / "deprived", 150)
    stubs = ("gse_find_label() { echo /dev/vdz3; }; gse_installed() { return 0; }; gse_set_label() { return 0; };"
             "gse_bootflag() { :; }; gse_cycle_forget() { :; }; gse_installed_get() { echo v-old; };")
    r = shs(f"{stubs}\n{fallback()}\n{setting}; gse_fallback /dev/vdz2 v-bad; echo rc=$?", tmp_path, state)
    assert r.stdout.strip() == "rc=0", r.stdout + r.stderr
    lines = (state / "deprived").read_text().splitlines()
    assert len(lines) == kept
    assert lines[-1] == "v-bad" and lines[-2] == "v149" and lines[0] == f"v{150 - kept + 1}"

