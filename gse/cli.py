"""The gse command: parse, then build, manage time states (gse/dispatch.py) or open the menu."""
import sys

from . import __version__, cmdline, layout
from .dispatch import check_values, dispatch
from .errors import BuildFailed, Interrupted, UsageError


def _one_line(exc):
    text = layout.settings().plain(" ".join(str(exc).split()), 1000)
    return text or exc.__class__.__name__


def main(argv=None):
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["serve"]:
        from . import serve
        return serve.main(argv[1:])
    if argv[:1] == ["fleet"]:
        from . import fleet
        return fleet.main(argv[1:])
    if argv[:1] == ["publish"]:
        from . import publication
        return publication.main(argv[1:])
    if argv[:1] == ["wake"]:
        from . import wake
        return wake.main(argv[1:])
    try:
        return run(argv)
    except UsageError as exc:
        print("gse: %s" % _one_line(exc), file=sys.stderr)
        return exc.code
    except BuildFailed as exc:
        print("gse: %s" % _one_line(exc), file=sys.stderr)
        return exc.code
    except (Interrupted, KeyboardInterrupt) as exc:
        print("gse: %s" % (_one_line(exc) if str(exc) else "interrupted"), file=sys.stderr)
        return Interrupted.code


def run(argv):
    values = cmdline.parse(argv)
    check_values(values)
    if values.get("help"):
        from . import helptext
        sys.stdout.write(helptext.render())
        return 0
    if values.get("version"):
        print("gse %s" % __version__)
        return 0
    if values.get("verbose") and values.get("quiet"):
        raise UsageError("--verbose and --quiet exclude each other")
    if not argv or values.get("main_menu"):
        if values.get("verbose"):
            raise UsageError("--verbose cannot run with the interactive main menu: the menu's "
                             "text would be lost in the verbose output")
        from . import menu
        return menu.main({k: v for k, v in values.items() if k != "main_menu"})
    return dispatch(values)


if __name__ == "__main__":
    sys.exit(main())
