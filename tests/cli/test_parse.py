"""Every command-line form of the concept document parses as written."""
import shlex

import pytest

from gse import cmdline, doscripts, layout
from gse.errors import UsageError
from gse.options import EXAMPLES

# The commands of the concept document, as a shell hands them to gse.
DOCUMENT = [
    ("gse -mm", {"main_menu": True}),
    ("gse --base=catalyst", {"base": "catalyst"}),
    ('gse --base="catalyst" --time-state="state-name"', {"base": "catalyst", "time_state": "state-name"}),
    ("gse --base=catalyst --lawful-good=gparta --enforce=gparta",
     {"base": "catalyst", "lawful_good": ["gparta"], "enforce": ["gparta"]}),
    ("gse --base=catalyst --distcc=on --ccache=on", {"base": "catalyst", "distcc": "on", "ccache": "on"}),
    ("gse --base=catalyst --distcc=pump --ccache=on", {"base": "catalyst", "distcc": "pump", "ccache": "on"}),
    ('gse --base=catalyst --sdir=/root/myscripts --do="script1,script2 script3 script4,script5" '
     '-g="-gparta,-gseed,+gcat"',
     {"base": "catalyst", "sdir": "/root/myscripts", "do": "script1,script2 script3 script4,script5",
      "g": "-gparta,-gseed,+gcat"}),
    ('gse --base=catalyst --sdir=/root/myscripts --do="script1,script2 script3 script4,script5" '
     '-g="-gcat,-gextr,+gupdate" --lawful-good="gcat,gextr,gupdate"',
     {"base": "catalyst", "sdir": "/root/myscripts", "do": "script1,script2 script3 script4,script5",
      "g": "-gcat,-gextr,+gupdate", "lawful_good": ["gcat,gextr,gupdate"]}),
    ("gse --time-state?", {"time_state": "?"}),
    ("gse --time-state=-3", {"time_state": "-3"}),
    ("gse --time-warp=2", {"time_warp": "2"}),
    ("gse --base=catalyst --kernel=/boot/vmlinuz", {"base": "catalyst", "kernel": "/boot/vmlinuz"}),
    ("gse --base=catalyst --initrd=/boot/initrd", {"base": "catalyst", "initrd": "/boot/initrd"}),
    ('gse --build-controller="path to modir"', {"build_controller": "path to modir"}),
    ("gse --base=precomp --verbose --non-interactive", {"base": "precomp", "verbose": True,
                                                        "non_interactive": True}),
    ("gse --base=precomp -v", {"base": "precomp", "verbose": True}),
    ("gse --base=precomp --quiet", {"base": "precomp", "quiet": True}),
    ("gse --base=precomp -q --build-minimal", {"base": "precomp", "quiet": True, "build_minimal": True}),
    # Other spellings a shell user types.
    ("gse --base precomp -g -gparta --do s1 --sdir /x",
     {"base": "precomp", "g": "-gparta", "do": "s1", "sdir": "/x"}),
    ("gse --time-state=?", {"time_state": "?"}),
    ("gse --lawful-good=gcat --lawful-good=gextr", {"lawful_good": ["gcat", "gextr"]}),
]


@pytest.mark.parametrize("line,expected", DOCUMENT, ids=[d[0] for d in DOCUMENT])
def test_document_forms_parse(line, expected):
    argv = shlex.split(line)[1:]
    assert cmdline.parse(argv) == expected
    # And the menu/time states can write them back.
    assert cmdline.parse(cmdline.unparse(expected)) == expected


def test_document_example_pairs_scripts_and_hooks():
    values = cmdline.parse(shlex.split(DOCUMENT[6][0])[1:])
    pairs = doscripts.pair(values["sdir"], values["do"], values["g"], layout.hooks().ALL_HOOKS)
    assert pairs == [("-", "gparta", "script1"), ("-", "gparta", "script2"), ("-", "gseed", "script3"),
                     ("+", "gcat", "script4"), ("+", "gcat", "script5")]


def test_doscripts_variables_follow_execution_order():
    parts = layout.hooks().PARTS
    pairs = [("+", "gcat", "a"), ("-", "gpartc", "b"), ("+", "gparta", "c"), ("-", "gseed", "d"),
             ("-", "gseed", "e"), ("-", "gparta", "f")]
    order = [(d["when"], d["hook"], d["script"]) for d in doscripts.variables(pairs, parts)]
    assert order == [("before", "gparta", "f"), ("before", "gseed", "d"), ("before", "gseed", "e"),
                     ("after", "gcat", "a"), ("after", "gparta", "c"), ("before", "gpartc", "b")]


@pytest.mark.parametrize("line", [example for example, _ in EXAMPLES])
def test_manual_examples_parse(line):
    cmdline.parse(shlex.split(line)[1:])


@pytest.mark.parametrize("argv,message", [
    (["--bse=catalyst"], "unknown option --bse"),
    (["catalyst"], "unexpected argument"),
    (["--base"], "--base needs a value"),
    (["--build-minimal=yes"], "takes no value"),
    (["--base=catalyst", "--base=precomp"], "given more than once"),
    (["--base="], "non-empty"),
    (["-x"], "unknown option -x"),
])
def test_malformed_command_lines(argv, message):
    with pytest.raises(UsageError, match=message):
        cmdline.parse(argv)


@pytest.mark.parametrize("do,g,message", [
    ("s1,s2 s3", "-gparta", "2 groups .* 1 hook point"),
    ("s1", "-gparta,+gcat", "1 group .* 2 hook points"),
    ("s1", "gparta", "must start with - .before. or \\+ .after."),
    ("s1", "-gnothere", "unknown hook gnothere; valid hooks are: gparta"),
    ("s1,,s2", "-gparta", "is not a script name"),
    ("../s1", "-gparta", "is not a script name"),
    ("s1", "-gparta,", "empty hook point"),
])
def test_do_and_g_must_pair(do, g, message):
    with pytest.raises(UsageError, match=message):
        doscripts.pair("/x", do, g, layout.hooks().ALL_HOOKS)


def test_sdir_do_g_go_together():
    with pytest.raises(UsageError, match="--sdir needs --do and -g as well"):
        doscripts.pair("/x", None, None, layout.hooks().ALL_HOOKS)
    with pytest.raises(UsageError, match="--do and -g needs --sdir"):
        doscripts.pair(None, "s1", "-gparta", layout.hooks().ALL_HOOKS)
