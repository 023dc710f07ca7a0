"""Malformed command lines and configuration files: exit 2, one line, no traceback, nothing written.

gse runs in this process; the first thing a valid request would touch (the
process priority, then $CLOCALLG) is replaced by a sentinel so that an input
that happens to be valid is recognised and dropped instead of starting a build.
"""
import os
import string

import pytest
import yaml
from hypothesis import HealthCheck, assume, given, settings, strategies as st

from gse import build, checks, cli, layout
from gse.options import OPTIONS


class WouldRun(Exception):
    pass


def _stop(*args, **kwargs):
    raise WouldRun


NAMES = [n for o in OPTIONS for n in o.names + o.extra_names] + ["-mm", "--", "-", "--time-state?"]
HOOKS = list(layout.hooks().ALL_HOOKS)
word = st.text(alphabet=string.ascii_letters + string.digits + ",+-=?/ ._\"'", max_size=20)
value = st.one_of(word, st.sampled_from(HOOKS + ["catalyst", "precomp", "on", "off", "pump", "?",
                                                 "-1", "0", "1"]),
                  st.lists(st.sampled_from(HOOKS + ["gnope"]), max_size=3).map(",".join),
                  st.lists(st.sampled_from(HOOKS), max_size=3).map(
                      lambda hs: ",".join(("-" if i % 2 else "+") + h for i, h in enumerate(hs))))
token = st.one_of(st.sampled_from(NAMES), st.builds(lambda n, v: "%s=%s" % (n, v), st.sampled_from(NAMES), value),
                  value, st.text(max_size=12))
argv_strategy = st.lists(token, min_size=1, max_size=6)

yaml_value = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=10)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=8), inner, max_size=3)),
    max_leaves=8)
config_text = st.one_of(
    st.text(max_size=80),
    yaml_value.map(lambda v: yaml.safe_dump(v)),
    st.dictionaries(st.text(alphabet=string.ascii_lowercase + "_", max_size=12), yaml_value,
                    max_size=3).map(yaml.safe_dump),
    st.binary(max_size=40).map(lambda b: b.decode("latin-1")),
)


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    configd = tmp_path / "config.d"
    configd.mkdir()
    for k in ("SSH_CONNECTION", "SSH_CLIENT", "SSH_TTY"):
        monkeypatch.delenv(k, raising=False)
    monkeypatch.setenv("GSE_CONFIGD", str(configd))
    monkeypatch.setenv("GSE_STATE_DIR", str(tmp_path / "states"))
    monkeypatch.setattr(checks, "apply_priority", _stop)
    monkeypatch.setattr(build, "prepare", _stop)
    monkeypatch.chdir(tmp_path)
    return tmp_path, configd


def _system(tmp, extra=None):
    data = {"gse_cdistdir": str(tmp / "cdist"), "gse_log_root": str(tmp / "log"), "gse_min_free_mb": 1}
    return yaml.safe_dump(dict(data, **(extra or {})))


def _snapshot(tmp):
    out = set()
    for d, dirs, files in os.walk(tmp):
        for n in dirs + files:
            out.add(os.path.join(d, n))
    return out


def _check(capsys, tmp, argv):
    before = _snapshot(tmp)
    try:
        code = cli.main(argv)
    except WouldRun:
        assume(False)
    out, err = capsys.readouterr()
    assume(code != 0)  # --help, --version, an empty state list: valid requests
    assert code == 2, (argv, out, err)
    assert "Traceback" not in err and err.startswith("gse: ") and err.count("\n") == 1, err
    assert _snapshot(tmp) == before
    # No file outside the sandbox: gse's default system paths stay untouched.
    for path in ("/var/log/gse", "/var/tmp/gse", "/var/lib/gse/states", "/etc/gse"):
        assert not os.path.exists(path) or path in PRESENT
    return code


PRESENT = {p for p in ("/var/log/gse", "/var/tmp/gse", "/var/lib/gse/states", "/etc/gse")
           if os.path.exists(p)}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(argv=argv_strategy)
def test_malformed_command_lines(sandbox, capsys, argv):
    tmp, configd = sandbox
    (configd / "system.yml").write_text(_system(tmp))
    _check(capsys, tmp, argv)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(category=st.sampled_from(["users", "system", "sources", "portage", "bad name", "x"]), text=config_text)
def test_malformed_configuration_files(sandbox, capsys, category, text):
    tmp, configd = sandbox
    if category != "system":
        (configd / "system.yml").write_text(_system(tmp))
    path = configd / ("%s.yml" % category)
    if category == "system":
        text = _system(tmp) + text if not text.startswith("gse_") else text
    path.write_text(text, encoding="utf-8", errors="surrogateescape")
    _check(capsys, tmp, ["--base=precomp", "--lawful-good=gseed,gupdate"])


# Every setting config.d may hold, from the schema (the roles' argument specs).
SETTABLE = layout.settings().config_settings(layout.schema())
CATEGORY_OF = layout.configd().CATEGORY_OF
_scalar = st.one_of(st.integers(-5, 5), st.booleans(), st.text(max_size=8), st.floats(allow_nan=False, width=32))
_relative = st.from_regex(r"[a-z.][a-z0-9_./-]{0,12}", fullmatch=True)


def _wrong(kind, setting, element=False):
    """Values that are not a ``kind`` (or outside its range or choices)."""
    if kind == "bool":
        return st.one_of(st.sampled_from(["maybe", "yes", "no", "true", 0, 1, 2]), st.text(max_size=5))
    if kind == "int":
        low, high = setting.range or (-2 ** 63, 2 ** 63 - 1)
        return st.one_of(st.booleans(), st.text(max_size=5), st.integers(max_value=low - 1),
                         st.integers(min_value=high + 1), st.lists(st.integers(), max_size=2))
    if kind in ("str", "path"):
        bad = [st.integers(), st.booleans(), st.lists(st.text(max_size=3), max_size=2)]
        if kind == "path":
            bad.append(_relative)
        if setting.choices:
            bad.append(st.text(max_size=10).filter(lambda t: t not in setting.choices and "{{" not in t))
        return st.one_of(*bad)
    if kind == "dict":
        return st.one_of(st.lists(_scalar, max_size=2), st.integers(), st.text(max_size=5))
    if kind == "list":
        return st.one_of(st.integers(), st.booleans(), st.dictionaries(st.text(max_size=3), _scalar, max_size=2),
                         st.text(max_size=5).filter(lambda t: "{{" not in t))
    return st.nothing()


def _malformed(name):
    s = SETTABLE[name]
    options = [_wrong(s.type, s)]
    if s.default is not None:
        options.append(st.none())
    if s.type == "list" and s.elements and s.elements != "raw":
        options.append(st.lists(_wrong(s.elements, s), min_size=1, max_size=2))
    if s.options:  # list entries with named keys (gse_users, gse_ssh_keys)
        options.append(st.lists(st.dictionaries(st.sampled_from(["nmae", "pasword", "x"]), _scalar, min_size=1,
                                                max_size=2), min_size=1, max_size=2))
    return st.one_of(*options)


malformed_setting = st.sampled_from(sorted(SETTABLE)).flatmap(
    lambda name: st.tuples(st.just(name), _malformed(name)))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(case=malformed_setting, suffix=st.sampled_from([".yml", ".yaml"]))
def test_every_setting_refuses_malformed_values(sandbox, capsys, case, suffix):
    """A wrong type, range, choice or a relative path of any setting: exit 2, one line naming it."""
    name, value = case
    tmp, configd = sandbox
    for old in configd.iterdir():  # the sandbox lives across examples
        old.unlink()
    category = CATEGORY_OF[name]
    data = {name: value}
    if category == "system":
        data = dict(yaml.safe_load(_system(tmp)), **data)
    else:
        (configd / "system.yml").write_text(_system(tmp))
    (configd / (category + suffix)).write_text(yaml.safe_dump(data))
    os.chmod(configd / (category + suffix), 0o600)
    before = _snapshot(tmp)
    code = cli.main(["--base=precomp", "--lawful-good=gseed,gupdate"])
    out, err = capsys.readouterr()
    assert code == 2, (name, value, err)
    assert err.startswith("gse: ") and err.count("\n") == 1 and "Traceback" not in err, err
    assert name in err and category + suffix in err, err
    assert _snapshot(tmp) == before
