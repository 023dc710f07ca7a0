"""Inputs that once crashed or got through: each is refused with one line and exit 2, nothing touched."""
import os
import stat

import pytest
import yaml

from gse import serve, states
from gse.errors import UsageError


def _refused(gse_env, *argv, env=None):
    r = gse_env.gse(*argv, env=env)
    assert r.returncode == 2, r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("gse"), r.stderr
    assert "Traceback" not in r.stderr
    return lines[0]


@pytest.mark.parametrize("argv,message", [
    (["--time-warp=" + "9" * 5000], "expected a state number"),
    (["--time-state=-" + "9" * 5000], "-N deletes state N"),
    (["--time-state=name\n"], "is not a state name"),
    (["--base=\x1b[31mred"], "--base=\\x1b[31mred: choose catalyst or precomp"),
    (["--time-state=" + "x" * 5000, "--base=precomp"], "..."),
])
def test_command_line(gse_env, argv, message):
    line = _refused(gse_env, *argv)
    assert message in line and len(line) < 400 and "\x1b" not in line


@pytest.mark.parametrize("name,text,message", [
    ("system.yml", "gse_nice: !!int 'abc'\n", "system.yml:1:11: not a valid value"),
    ("system.yml", "gse_nice: " + "9" * 5000 + "\n", "system.yml:1:11: not a valid value"),
    ("locale.yml", "gse_locales: &a [*a]\n", "locale.yml:1:18: refused: the alias *a refers to the node"),
    ("locale.yml", "gse_locales: " + "[" * 200 + "]" * 200 + "\n", "nested deeper than 32 levels"),
    ("locale.yml", "a: &a [x,x,x,x,x,x,x,x,x]\n" + "".join(
        "%s: &%s [%s]\n" % (c, c, ",".join(["*" + p] * 9)) for p, c in zip("abcdefgh", "bcdefghi")),
     "once its aliases are expanded"),
    ("locale.yaml", "gse_locales: 42\n", "locale.yaml:1:14: gse_locales: expected a list"),
    ("system.yml", "gse_min_free_mbs: 1\n", "did you mean gse_min_free_mb?"),
    ("x.yml", "{}\n", "no such category"),
    # A control character is refused by YAML's reader as the parser is made.
    ("locale.yml", "gse_locales: [a\x1a]\n", "locale.yml: not valid YAML: unacceptable character"),
])
def test_configuration_file(gse_env, name, text, message):
    (gse_env.configd / name).write_text(text)
    if name == "system.yml":
        (gse_env.configd / "system.yml").write_text(yaml.safe_dump({
            "gse_cdistdir": str(gse_env.cdist), "gse_log_root": str(gse_env.logs)}) + text)
        message = message.replace("system.yml:1:", "system.yml:3:")
    assert message in _refused(gse_env, "--base=precomp")
    assert gse_env.written() == [] and gse_env.mounts() == []


@pytest.mark.parametrize("kind", ["fifo", "broken link", "/dev/zero", "large"])
def test_configuration_file_that_is_not_a_regular_file(gse_env, kind):
    path = gse_env.configd / "locale.yml"
    if kind == "fifo":
        os.mkfifo(path)
    elif kind == "broken link":
        path.symlink_to(gse_env.tmp / "nowhere")
    elif kind == "/dev/zero":
        path.symlink_to("/dev/zero")
    else:
        path.write_text("# x\n" * 300000)
    line = _refused(gse_env, "--base=precomp")
    assert "locale.yml" in line
    assert ("larger than" if kind == "large" else "not a regular file" if kind != "broken link"
            else "cannot read") in line


@pytest.mark.parametrize("value,message", [
    ("relative/config.d", "GSE_CONFIGD: 'relative/config.d' is not an absolute path"),
    ("/etc/hostname", "/etc/hostname: not a directory"),
])
def test_configd_variable(gse_env, value, message):
    env = dict(gse_env.env, GSE_CONFIGD=value)
    assert message in _refused(gse_env, "--base=precomp", env=env)


def test_state_dir_that_is_a_file(gse_env):
    (gse_env.tmp / "afile").write_text("")
    env = dict(gse_env.env, GSE_STATE_DIR=str(gse_env.tmp / "afile"))
    assert "is not a directory" in _refused(gse_env, "--time-state?", env=env)


def _state(directory, options, files=None):
    os.makedirs(directory, exist_ok=True)
    doc = {"name": "s", "options": options, "config": [{"dir": "/x", "files": files or {}}]}
    with open(os.path.join(directory, "0001-s.yml"), "w", encoding="utf-8") as f:
        yaml.safe_dump(doc, f)


@pytest.mark.parametrize("options,files,message", [
    ({"base": "precomp", "frobnicate": "yes"}, None, "unknown option 'frobnicate'"),
    ({"base": ["precomp"]}, None, "its option --base holds"),
    ({"base": "precomp"}, {"../../escape.yml": {}}, "names the configuration file '../../escape.yml'"),
    ({"base": "precomp"}, {"system.yml": {"gse_nice": "x"}}, "gse_nice: expected a whole number"),
])
def test_damaged_state(gse_env, options, files, message):
    _state(str(gse_env.states), options, files)
    line = _refused(gse_env, "--time-warp=1")
    assert "is damaged" in line and message in line


def test_saving_keeps_the_mode_of_an_existing_directory(tmp_path):
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o1777)
    states.save(str(shared), {"name": "one", "options": {}, "config": []})
    assert stat.S_IMODE(os.stat(shared).st_mode) == 0o1777
    fresh = tmp_path / "fresh" / "states"
    states.save(str(fresh), {"name": "one", "options": {}, "config": []})
    assert stat.S_IMODE(os.stat(fresh).st_mode) == 0o700


@pytest.mark.parametrize("argv,message", [
    (["--limit-rate", "1m; autoindex on"], "--limit-rate='1m; autoindex on': expected bytes per second"),
    (["--listen", "127.0.0.1:99999"], "the port must be a number from 1 to 65535"),
    (["--listen", "127.0.0.1:80; include /etc/passwd"], "the port must be"),
    (["--listen", "bad host:80"], "expected HOST:PORT"),
    (["--listen", "[zz::1]:80"], "is not an IPv6 address"),
    (["--listen", "127.0.0.1:" + "9" * 5000], "the port must be"),
    (["--dir", "/nonexistent/x"], "no such directory"),
    (["--dir", "/tmp/a;b"], "cannot be served"),
    (["--frob"], "unrecognized arguments: --frob"),
    (["--listen"], "expected one argument"),
])
def test_serve_arguments(capsys, tmp_path, argv, message):
    if "--dir" not in argv:
        argv = ["--dir", str(tmp_path)] + argv
    assert serve.main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("gse serve: ") and message in err, err


def test_serve_configuration_takes_only_checked_values(tmp_path):
    args = serve.parse_args(["--dir", str(tmp_path), "--listen", "[::1]:8081", "--limit-rate", "10m"])
    site = serve.render_site(args.dir, "[%s]:%d" % (args.host, args.port), limit_rate=args.limit_rate)
    assert "listen [::1]:8081;" in site and "limit_rate 10m;" in site


def test_state_number_is_bounded():
    assert states.is_number("123456789") and not states.is_number("1234567890")
    assert not states.is_number("٣") and not states.is_number("0")
    with pytest.raises(UsageError):
        states.check_name("name\n")


def test_file_holding_secrets_must_be_private(gse_env):
    path = gse_env.write_config("users", {"gse_users": [{"name": "root", "password": "pw-not-shown"}]})
    os.chmod(path, 0o644)
    line = _refused(gse_env, "--base=precomp")
    assert "users.yml: holds secrets (gse_users) but its mode is 0644" in line and "pw-not-shown" not in line
    os.chmod(path, 0o600)
    gse_env.write_config("users", {"gse_users": []})
    os.chmod(path, 0o644)  # no secret value in it: any mode
    r = gse_env.gse("--base=precomp", "--lawful-good=gparta")
    assert "holds secrets" not in r.stderr
