"""gse -q announces the sub-parts that run, read from the real roles' events.

The parts whose question is answered no by default (rebuild, kernel,
initramfs) and --build-minimal's sub-part when it is off include no task, so
no line; the same roles with the answer yes do print it.  The roles run on
this machine against an empty work directory: with the questions answered no
nothing in them touches the system, and of the sub-parts answered yes only
gminimal runs (a set_fact), so the run is harmless; the kernel and initramfs
sub-parts are asked through --kernel/--initrd paths that do not exist, and
their first task's failure ends the run after their line was printed.
"""
import io
import os
import re
import sys

import ansible_runner
import yaml

from gse import layout, runner
from gse.progress import Watcher

# essentials holds the defaults of the kernel and initramfs questions (its
# own sub-parts are left out by the tags).
PLAYBOOK = [{"name": "The parts with a question", "hosts": "gse_build_host", "gather_facts": False,
             "roles": [{"role": "gse.stateless.%s" % r} for r in ("rebuild", "essentials", "kernel", "initramfs", "archive")]}]
TAGS = "gpartd,gparth,gparti,gminimal"


def quiet_lines(tmp_path, **extravars):
    project = tmp_path / "project"
    project.mkdir(exist_ok=True)
    (project / "parts.yml").write_text(yaml.safe_dump(PLAYBOOK))
    inventory = {"gse_build_host": {"hosts": {"localhost": {
        "ansible_connection": "local", "ansible_python_interpreter": sys.executable}}}}
    (tmp_path / "private").mkdir(exist_ok=True)
    configd = tmp_path / "config.d"
    configd.mkdir(exist_ok=True)
    variables = dict({"gse_base": "precomp", "gse_cdistdir": str(tmp_path / "cdist"),
                      "gse_log_root": str(tmp_path / "log"), "gse_configd_dirs": [str(configd)]}, **extravars)
    out = io.StringIO()
    watcher = Watcher(layout.hooks().PARTS, True, out=out)
    result = ansible_runner.run(private_data_dir=str(tmp_path / "private"), project_dir=str(project),
                                playbook="parts.yml", inventory=inventory, extravars=variables,
                                envvars=runner.environment(), tags=TAGS, quiet=True,
                                event_handler=watcher)
    lines = [re.sub(r" \(\d+:\d\d:\d\d\)$", "", line) for line in out.getvalue().splitlines()]
    return result.rc, lines, watcher.failure


def test_questions_answered_no_print_no_line(tmp_path):
    rc, lines, failure = quiet_lines(tmp_path)
    assert (rc, failure) == (0, None), (failure.task, failure.result)
    assert lines == []


def test_build_minimal_prints_its_line(tmp_path):
    rc, lines, failure = quiet_lines(tmp_path, gse_build_minimal=True)
    assert (rc, failure) == (0, None)
    assert lines == ["[11/12] Removing --build-minimal entries"]


def test_a_question_answered_yes_prints_its_line(tmp_path):
    missing = str(tmp_path / "no-such-kernel")
    rc, lines, failure = quiet_lines(tmp_path, gse_kernel_path=missing)
    assert rc != 0 and failure is not None and failure.part.hook == "gparth"
    assert lines == ["[ 8/12] Building the kernel"]
    assert not os.path.exists(missing)
