"""gse.livelog.LiveTail follows a file like tail -F: late, truncated, replaced, partial lines."""
import io
import os

from gse.livelog import LiveTail, host_path


def test_the_host_path_is_inside_the_workdir():
    assert host_path("/var/tmp/gse/workdir-precomp") == "/var/tmp/gse/workdir-precomp/var/log/gse-live.log"


def test_follows_a_file_that_appears_is_truncated_and_replaced(tmp_path):
    path = tmp_path / "gse-live.log"
    out = io.StringIO()
    tail = LiveTail(str(path), out=out)
    tail.poll()
    assert out.getvalue() == ""                      # not there yet

    path.write_text("a\n")
    tail.poll()
    assert out.getvalue() == "a\n"                   # appeared late: read from its start

    with open(path, "a") as f:
        f.write("b\npart")
    tail.poll()
    assert out.getvalue() == "a\nb\n"                # only complete lines

    with open(path, "a") as f:
        f.write("ial\n")
    tail.poll()
    assert out.getvalue() == "a\nb\npartial\n"

    path.write_text("c\n")                           # truncated (shorter than what was read)
    tail.poll()
    assert out.getvalue() == "a\nb\npartial\nc\n"

    replacement = tmp_path / "new"
    replacement.write_text("d\nlast words")
    os.replace(replacement, path)                    # a new file under the same name
    tail.poll()
    assert out.getvalue() == "a\nb\npartial\nc\nd\n"

    tail.start()
    tail.stop()                                      # what is left is printed at the end
    assert out.getvalue() == "a\nb\npartial\nc\nd\nlast words\n"


def test_lines_present_at_start_are_not_printed(tmp_path):
    path = tmp_path / "gse-live.log"
    path.write_text("from an earlier build\n")
    out = io.StringIO()
    with LiveTail(str(path), out=out):
        pass
    assert out.getvalue() == ""
    with open(path, "a") as f:
        f.write("new\n")
    tail = LiveTail(str(path), out=out)
    with open(path, "a") as f:
        f.write("newer\n")
    tail.poll()
    assert out.getvalue() == "newer\n"
