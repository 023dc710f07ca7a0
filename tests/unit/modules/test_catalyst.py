"""gse.stateless.catalyst: the exact catalyst commands, and the files it writes."""
import os
import tomllib

import pytest
from ansible.module_utils import basic
from ansible.module_utils.testing import patch_module_args

from ansible_collections.gse.stateless.plugins.module_utils import catalyst_spec as cs
from ansible_collections.gse.stateless.plugins.module_utils import toml_emit
from ansible_collections.gse.stateless.plugins.modules import catalyst


class Exit(Exception):
    def __init__(self, result):
        super().__init__(result)
        self.result = result


@pytest.fixture
def harness(monkeypatch, tmp_path):
    """Run the module with run_command replaced by a fake catalyst that writes products."""
    calls = []
    fail = {}

    def run_command(self, argv, **kwargs):
        calls.append(list(argv))
        conf = tomllib.loads(open(argv[argv.index("-c") + 1]).read())
        if "-s" in argv:
            path = cs.snapshot_path(conf["storedir"], argv[argv.index("-s") + 1])
        else:
            spec = dict(line.split(": ", 1) for line in open(argv[-1]).read().splitlines()
                        if ": " in line)
            if spec["target"] in fail:
                return fail[spec["target"]], "", "boom"
            path = cs.product_path(conf["storedir"], spec["rel_type"], spec["target"], spec["subarch"],
                                   spec["version_stamp"], spec["compression_mode"])
        os.makedirs(os.path.dirname(path), exist_ok=True)
        open(path, "w").write("product of %s\n" % argv[-1])
        return 0, "", ""

    def exit_json(self, **result):
        raise Exit(result)

    def fail_json(self, **result):
        result["failed"] = True
        raise Exit(result)

    monkeypatch.setattr(basic.AnsibleModule, "run_command", run_command)
    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)

    store = tmp_path / "store"
    (store / "builds" / "seeds").mkdir(parents=True)
    (store / "builds" / "seeds" / "seed.tar.xz").write_text("seed")
    base = dict(catalyst="/usr/bin/catalyst", config_dir=str(tmp_path / "conf"), storedir=str(store),
                distdir=str(tmp_path / "distfiles"), subarch="amd64", version_stamp="v1",
                profile="default/linux/amd64/23.0", snapshot_treeish="abc123", seed="seeds/seed")

    def run(check=False, **args):
        calls.clear()
        params = dict(base, **args)
        if check:
            params["_ansible_check_mode"] = True
        with patch_module_args(params):
            with pytest.raises(Exit) as exc:
                catalyst.main()
        return exc.value.result, list(calls)

    run.fail = fail
    run.conf = str(tmp_path / "conf" / "catalyst.conf")
    run.spec = lambda t: str(tmp_path / "conf" / ("%s.spec" % t))
    run.log = lambda t: str(tmp_path / "conf" / "log" / ("%s.log" % t))
    return run


def test_first_run_commands(harness):
    result, calls = harness()
    c, log, spec = harness.conf, harness.log, harness.spec
    assert calls == [
        ["/usr/bin/catalyst", "-c", c, "--log-file", log("snapshot"), "-s", "abc123"],
        ["/usr/bin/catalyst", "-c", c, "--log-file", log("stage1"), "-f", spec("stage1")],
        ["/usr/bin/catalyst", "-c", c, "--log-file", log("stage2"), "-f", spec("stage2")],
        ["/usr/bin/catalyst", "-c", c, "--log-file", log("stage3"), "-f", spec("stage3")],
    ]
    assert result["changed"] is True
    assert result["stage3"].endswith("/builds/gse/stage3-amd64-v1.tar.xz")


def test_second_run_runs_nothing(harness):
    harness()
    result, calls = harness()
    assert calls == []
    assert result["changed"] is False
    assert result["files_changed"] == []


def test_force_purges_every_stage_but_keeps_the_snapshot(harness):
    harness()
    result, calls = harness(force=True)
    c, log, spec = harness.conf, harness.log, harness.spec
    assert calls == [
        ["/usr/bin/catalyst", "-c", c, "--log-file", log(t), "-p", "-f", spec(t)]
        for t in ("stage1", "stage2", "stage3")]
    result, calls = harness(force=True, force_purge=False)
    assert [call[5] for call in calls] == ["-a", "-a", "-a"]


def test_missing_middle_product_rebuilds_from_there(harness):
    first, _ = harness()
    os.unlink(first["products"][1]["path"])
    result, calls = harness()
    c, log, spec = harness.conf, harness.log, harness.spec
    assert calls == [
        ["/usr/bin/catalyst", "-c", c, "--log-file", log("stage2"), "-f", spec("stage2")],
        ["/usr/bin/catalyst", "-c", c, "--log-file", log("stage3"), "-a", "-f", spec("stage3")],
    ]
    assert [s["reason"] for s in result["stages"]] == [None, "missing", "seed rebuilt"]


def test_check_mode_runs_nothing(harness):
    result, calls = harness(check=True)
    assert calls == []
    assert result["changed"] is True
    assert [s["built"] for s in result["stages"]] == [True, True, True]
    assert not os.path.exists(harness.conf)


def test_failure_returns_log_and_tail(harness):
    harness.fail["stage2"] = 2
    result, calls = harness()
    assert result["failed"] is True
    assert result["failed_target"] == "stage2"
    assert result["rc"] == 2 and result["stderr"] == "boom"
    assert result["cmd"] == calls[-1]
    assert result["log"] == harness.log("stage2")
    assert result["log_tail"] == []


def test_written_files(harness):
    harness(jobs=4, load_average=3.0, options=["autoresume", "pkgcache"], update_seed=True,
            update_seed_command="--update --deep @world", portage_confdir="/etc/gse/portage",
            stage_extra={"stage3": {"cflags": "-O2 -pipe"}})
    conf = tomllib.loads(open(harness.conf).read())
    assert conf["options"] == ["autoresume", "pkgcache"]
    assert conf["jobs"] == 4 and conf["load-average"] == 3.0
    assert conf["compression_mode"] == "xz"
    assert set(conf) <= cs.CONF_KEYS
    assert open(harness.spec("stage1")).read() == (
        "subarch: amd64\n"
        "target: stage1\n"
        "version_stamp: v1\n"
        "rel_type: gse\n"
        "profile: default/linux/amd64/23.0\n"
        "snapshot_treeish: abc123\n"
        "source_subpath: seeds/seed\n"
        "compression_mode: xz\n"
        "portage_confdir: /etc/gse/portage\n"
        "update_seed: yes\n"
        "update_seed_command: --update --deep @world\n")
    stage3 = open(harness.spec("stage3")).read()
    assert "source_subpath: gse/stage2-amd64-v1\n" in stage3
    assert "cflags: -O2 -pipe\n" in stage3
    assert "update_seed" not in stage3


def test_unknown_config_key_is_refused(harness):
    result, calls = harness(extra_config={"storedirr": "/x"})
    assert result["failed"] is True and "storedirr" in result["msg"]
    assert calls == []


def test_toml_round_trip():
    table = {"storedir": "/var/tmp/catalyst", "options": ["autoresume", "bindist"], "jobs": 4,
             "load-average": 2.5, "envscript": None, "odd": 'quote " back\\slash\ttab', "flag": True}
    assert tomllib.loads(toml_emit.dumps(table, header=["a comment"])) == {
        k: v for k, v in table.items() if v is not None}
    with pytest.raises(ValueError):
        toml_emit.dumps({"nested": {"a": 1}})


def test_spec_lists_continue_with_tabs():
    assert cs.render_spec({"target": "stage3", "repos": ["/a", "/b"]}) == "target: stage3\nrepos:\n\t/a\n\t/b\n"


def test_compression_extensions():
    assert cs.product_path("/s", "r", "stage1", "amd64", "1", "pixz") == "/s/builds/r/stage1-amd64-1.tar.xz"
    assert cs.product_path("/s", "r", "stage1", "amd64", "1", "lbzip2") == "/s/builds/r/stage1-amd64-1.tar.bz2"
    assert cs.product_path("/s", "r", "stage1", "amd64", "1", "tar") == "/s/builds/r/stage1-amd64-1.tar"
    with pytest.raises(ValueError):
        cs.extensions("squashfs_xz")
