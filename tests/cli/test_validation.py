"""Refused input: exit code 2, a one-line message that says what is wrong, nothing touched."""
import os
import socket

import pytest


def _closed_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


CASES = [
    ([], None, "the main menu needs a terminal"),
    (["--lawful-good=gparta"], None, "--base is required to build"),
    (["--base=gentoo"], None, "--base=gentoo: choose catalyst or precomp"),
    (["--base=precomp", "--lawful-good=gfoo"], None,
     "--lawful-good: unknown hook gfoo; valid hooks are: gparta, gpartb"),
    (["--base=precomp", "--enforce=gparta,gnope"], None, "--enforce: unknown hook gnope"),
    (["--base=precomp", "--enforce=,"], None, "--enforce=',' names no hook"),
    (["--base=precomp", "--lawful-good= "], None, "--lawful-good=' ' names no hook"),
    (["--base=precomp", "--sdir={tmp}/nodir", "--do=s1", "-g=-gparta"], None,
     "--sdir: {tmp}/nodir is not a directory"),
    (["--base=precomp", "--sdir={tmp}/scripts", "--do=s1,s2 s3", "-g=-gparta,+gcat"], None,
     "--do: not found in {tmp}/scripts: s2, s3"),
    (["--base=precomp", "--sdir={tmp}/scripts", "--do=s1 s1", "-g=-gparta"], None,
     "--do has 2 groups (separated by spaces) but -g has 1 hook point"),
    (["--base=precomp", "--kernel={tmp}/vmlinuz"], None, "--kernel: {tmp}/vmlinuz is not a file"),
    (["--base=precomp", "--lawful-good=gparta"], None,
     "gextr is passed (--lawful-good) but {tmp}/cdist/workdir-precomp holds no extracted system"),
    (["--base=precomp", "-v", "-q"], None, "--verbose and --quiet exclude each other"),
    (["--base=precomp", "--distcc=on"], None, "--distcc=on needs the distcc configuration"),
    (["--base=precomp", "--distcc=pump"], {"distcc": {"gse_distcc_hosts": ["127.0.0.1"]}},
     "--distcc=pump is refused: Portage no longer has FEATURES=distcc-pump"),
    (["--base=precomp"], {"system": {"gse_min_free_mb": 1 << 40}}, "not enough free disk space"),
    (["--base=precomp"], {"sources": {"gse_stage3_mirror": "http://127.0.0.1:{port}/gentoo"}},
     "cannot reach http://127.0.0.1:{port}/gentoo"),
    (["--base=precomp"], {"system": {"gse_nice": 40}}, "system.yml:4:11: gse_nice: expected a number from -20 to 19, found 40"),
    (["--base=precomp"], {"system": {"gse_ionice_class": True}}, "gse_ionice_class: expected text, found True"),
    (["--base=precomp"], {"publish": "gse_mark_default: maybe\n"},
     "publish.yml:1:19: gse_mark_default: expected true or false, found 'maybe'"),
    (["--base=precomp"], {"locale": "gse_locales: 42\n"}, "locale.yml:1:14: gse_locales: expected a list, found 42"),
    (["--base=precomp"], {"system": {"gse_min_free_mbs": 1}},
     "unknown setting gse_min_free_mbs; did you mean gse_min_free_mb?"),
    (["--base=precomp"], {"system": {"gse_cdistdir": "relative/cdist"}},
     "gse_cdistdir: expected an absolute path (or empty), found 'relative/cdist'"),
    (["--base=precomp"], {"users": "gse_users:\n  - {name: root, password: 5}\n"},
     "users.yml:2:5: gse_users: item 1: password: expected text"),
    (["--base=precomp"], {"users": "- not a mapping\n"}, "users.yml:1:1: expected a mapping of gse_* variables"),
    (["--base=precomp"], {"portage": "make_conf: {}\n"}, "'make_conf' is not a gse_* variable name"),
    (["--base=precomp"], {"locale": "gse_locales: [unclosed\n"}, "locale.yml:2:1: not valid YAML"),
    (["--base=precomp"], {"locale": "gse_base: catalyst\n"},
     "locale.yml:1:1: gse_base is set by the gse command's flag --base, not by config.d"),
    (["--base=precomp"], {"locale": "gse_users: []\n"}, "locale.yml:1:1: gse_users belongs in users.yml"),
    (["--time-warp=1", "--base=precomp"], None, "--time-warp replays a state exactly: it does not take --base"),
    (["--time-warp=3"], None, "no time state 3"),
    (["--time-warp=x"], None, "--time-warp=x: expected a state number"),
    (["--time-state=-0"], None, "-N deletes state N"),
    (["--time-state=bad/name", "--base=precomp"], None, "is not a state name"),
    (["--time-state?", "--base=precomp"], None, "--time-state? goes alone"),
    (["--build-controller={tmp}/nomods"], None, "--build-controller: {tmp}/nomods is not a directory"),
]


@pytest.mark.parametrize("argv,config,message", CASES, ids=[" ".join(c[0]) or "(none)" for c in CASES])
def test_refused_before_anything_is_touched(gse_env, argv, config, message):
    (gse_env.tmp / "scripts").mkdir()
    (gse_env.tmp / "scripts" / "s1").write_text("true\n")
    port = _closed_port()
    fill = {"tmp": str(gse_env.tmp), "port": port}
    system = {"gse_cdistdir": str(gse_env.cdist), "gse_log_root": str(gse_env.logs),
              "gse_state_dir": str(gse_env.states), "gse_min_free_mb": 1}
    for category, data in (config or {}).items():
        if category == "system":
            data = dict(system, **data)
        elif category == "sources":
            data = {k: v.format(**fill) for k, v in data.items()}
        gse_env.write_config(category, data)
    r = gse_env.gse(*[a.format(**fill) for a in argv])
    assert r.returncode == 2, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gse: "), r.stderr
    assert message.format(**fill) in lines[0]
    assert "Traceback" not in r.stderr and r.stdout == ""
    created = [p for p in gse_env.written() if not p.startswith(str(gse_env.tmp / "scripts"))]
    assert created == [] and gse_env.mounts() == []


def test_network_is_not_checked_when_no_hook_needs_it(gse_env):
    """With gseed and gupdate passed, an unreachable mirror does not stop the run."""
    gse_env.write_config("sources", {"gse_stage3_mirror": "http://127.0.0.1:%d/x" % _closed_port()})
    (gse_env.cdist / "workdir-precomp" / "etc").mkdir(parents=True)
    r = gse_env.gse("--base=precomp", "--lawful-good=gparta,gupdate", "--non-interactive")
    assert "cannot reach" not in r.stderr and gse_env.builds(), r.stderr
    r = gse_env.gse("--base=precomp", "--lawful-good=gparta")
    assert r.returncode == 2 and "cannot reach" in r.stderr and "gupdate" in r.stderr, r.stderr


def test_help_and_version(gse_env):
    r = gse_env.gse("--help")
    assert r.returncode == 0
    for spelled in ("--base=BASE", "--lawful-good=HOOK,...", "-g=", "--time-state=NAME|-N|?",
                    "--time-warp=N", "-mm", "--build-controller=DIR", "--verbose, -v", "--quiet, -q"):
        assert spelled in r.stdout
    assert "130 interrupted" in r.stdout
    r = gse_env.gse("--version")
    assert r.returncode == 0 and r.stdout.startswith("gse ")
    assert gse_env.written() == []
