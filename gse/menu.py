"""The main menu (curses): configuration by category, System menu, time states, controller.

Keys: arrows or j/k move, Enter or the item's number chooses, q or Esc goes back.
"""
import curses
import os
import shlex
import shutil
import subprocess
import sys

from . import cmdline, config, dispatch, layout, states
from .build import Session
from .errors import BuildFailed, Interrupted, UsageError

TITLE = "GSE - Gentoo Stateless Environment"


class Menu:
    def __init__(self, screen, values):
        self.screen = screen
        self.values = dict(values)  # the flags of gse -mm, used by the System menu
        curses.curs_set(0)

    # -- drawing -----------------------------------------------------------
    def frame(self, title, lines=(), footer="Enter: choose   q: back"):
        s = self.screen
        s.erase()
        h, w = s.getmaxyx()
        s.addnstr(0, 0, TITLE, w - 1, curses.A_BOLD)
        s.addnstr(1, 0, title, w - 1, curses.A_UNDERLINE)
        for i, line in enumerate(lines[: h - 5]):
            s.addnstr(3 + i, 0, line, w - 1)
        s.addnstr(h - 1, 0, footer, w - 1, curses.A_DIM)

    def choose(self, title, items, header=()):
        """Return the chosen index, or None for back."""
        pos = 0
        while True:
            lines = list(header) + ([""] if header else [])
            top = 3 + len(lines)
            self.frame(title, lines)
            h, w = self.screen.getmaxyx()
            for i, item in enumerate(items[: h - top - 2]):
                attr = curses.A_REVERSE if i == pos else curses.A_NORMAL
                self.screen.addnstr(top + i, 0, " %d) %s " % (i + 1, item) if i < 9 else
                                    "    %s " % item, w - 1, attr)
            self.screen.refresh()
            key = self.screen.getch()
            if key in (curses.KEY_UP, ord("k")):
                pos = (pos - 1) % len(items)
            elif key in (curses.KEY_DOWN, ord("j")):
                pos = (pos + 1) % len(items)
            elif key in (curses.KEY_ENTER, 10, 13):
                return pos
            elif ord("1") <= key <= ord("9") and key - ord("1") < len(items):
                return key - ord("1")
            elif key in (ord("q"), 27, curses.KEY_LEFT):
                return None

    def message(self, title, text):
        lines = []
        for line in text.splitlines() or [""]:
            lines.append(line)
        top = 0
        while True:
            h, _ = self.screen.getmaxyx()
            self.frame(title, lines[top:], footer="Up/Down: scroll   q or Enter: back")
            self.screen.refresh()
            key = self.screen.getch()
            if key in (curses.KEY_DOWN, ord("j")) and top < max(0, len(lines) - (h - 5)):
                top += 1
            elif key in (curses.KEY_UP, ord("k")) and top > 0:
                top -= 1
            elif key in (ord("q"), 27, 10, 13, curses.KEY_ENTER):
                return

    def ask(self, prompt, initial=""):
        self.frame(prompt, ["(Enter accepts, an empty answer goes back)"], footer="")
        h, w = self.screen.getmaxyx()
        self.screen.addnstr(5, 0, "> ", w - 1)
        curses.echo()
        curses.curs_set(1)
        try:
            if initial:
                for ch in reversed(initial):
                    curses.ungetch(ord(ch) if ord(ch) < 256 else ord("?"))
            answer = self.screen.getstr(5, 2, w - 4).decode("utf-8", "replace")
        finally:
            curses.noecho()
            curses.curs_set(0)
        return answer.strip()

    def outside(self, func):
        """Leave curses, run ``func`` on the plain terminal, come back."""
        curses.def_prog_mode()
        curses.endwin()
        try:
            return func()
        finally:
            curses.reset_prog_mode()
            self.screen.clear()
            self.screen.refresh()

    # -- the menus ---------------------------------------------------------
    def main(self):
        items = ["Configuration files", "System menu", "Time states", "Build the controller", "Quit"]
        while True:
            i = self.choose("Main menu", items)
            if i is None or i == 4:
                return 0
            [self.configuration, self.system, self.time_states, self.controller][i]()

    def configuration(self):
        cats = config.categories()
        while True:
            i = self.choose("Configuration files", ["%-14s %s" % c for c in cats])
            if i is None:
                return
            self.category(cats[i][0], cats[i][1])

    def _files(self, category):
        return [os.path.join(d, category + ".yml") for d in layout.configd_dirs()
                if os.path.isfile(os.path.join(d, category + ".yml"))]

    def category(self, name, label):
        while True:
            files = self._files(name)
            header = ["%s.yml: %s" % (name, label)] + ["  " + f for f in files or ["(no file yet)"]]
            i = self.choose("Configuration: %s" % name, ["View", "Edit with $EDITOR", "Validate"],
                            header=header)
            if i is None:
                return
            if i == 0:
                text = ""
                for f in files:
                    with open(f, encoding="utf-8", errors="replace") as fh:
                        text += "# %s\n%s\n" % (f, fh.read())
                self.message("View: %s.yml" % name, text or "(no file yet)")
            elif i == 1:
                self.edit(name, files)
            else:
                self.message("Validate: %s.yml" % name, self.validate(files))

    def validate(self, files):
        out = []
        for f in files:
            try:
                config.read_file(f)
                out.append("OK     %s" % f)
            except UsageError as exc:
                out.append("ERROR  %s" % exc)
        return "\n".join(out) or "(no file yet)"

    def edit(self, name, files):
        target = os.path.join(layout.admin_configd(), name + ".yml")
        if not os.path.exists(target):
            os.makedirs(os.path.dirname(target), exist_ok=True)
            if files:
                shutil.copyfile(files[-1], target)
            else:
                with open(target, "w", encoding="utf-8") as f:
                    f.write("# %s: gse_* variables (see man 5 gse)\n" % name)
            os.chmod(target, 0o600)  # users.yml holds passwords; every file starts private
        editor = shlex.split(os.environ.get("EDITOR") or "vi")
        self.outside(lambda: subprocess.call(editor + [target]))
        self.message("Validate: %s.yml" % name, self.validate([target]))

    def system(self):
        while True:
            i = self.choose("System menu", ["Build a system"])
            if i is None:
                return
            while True:
                j = self.choose("Build a system", ["Catalyst", "Precomp"])
                if j is None:
                    break
                self.build_screen(["catalyst", "precomp"][j])

    def build_screen(self, base):
        while True:
            values = dict(self.values, base=base)
            line = "gse " + " ".join(shlex.quote(a) for a in cmdline.unparse(values))
            i = self.choose("Build a system: %s" % base.capitalize(),
                            ["Initiate Build", "Set flags"], header=["Command:", "  " + line])
            if i is None:
                return
            if i == 1:
                self.set_flags()
                continue
            code = self.run_outside(values)
            if code == 0:
                return

    def set_flags(self):
        current = " ".join(shlex.quote(a) for a in cmdline.unparse(
            {k: v for k, v in self.values.items() if k != "base"}))
        answer = self.ask("Flags (as on the command line)", current)
        try:
            values = cmdline.parse(shlex.split(answer))
            dispatch.check_values(values)
        except (UsageError, ValueError) as exc:
            self.message("Flags", "Not changed: %s" % exc)
            return
        values.pop("main_menu", None)
        self.values = values

    def run_outside(self, values):
        def go():
            try:
                code = dispatch.dispatch(values, Session(True, quiet=bool(values.get("quiet"))))
            except (UsageError, BuildFailed, Interrupted) as exc:
                print("gse: %s" % exc, file=sys.stderr)
                code = exc.code
            except KeyboardInterrupt:
                code = Interrupted.code
            try:
                input("\n[exit code %d] Press Enter to return to the menu " % code)
            except EOFError:
                pass
            return code
        return self.outside(go)

    def time_states(self):
        while True:
            try:
                directory = states.state_dir(config.load(layout.configd_dirs()))
                found = states.entries(directory)
            except UsageError as exc:
                self.message("Time states", str(exc))
                return
            if not found:
                self.message("Time states", "No saved state. Save one with "
                                            "gse --base=... --time-state=NAME")
                return
            i = self.choose("Time states", ["%d:%s" % (n, name) for n, name, _ in found])
            if i is None:
                return
            n = found[i][0]
            j = self.choose("Time state %d:%s" % (n, found[i][1]), ["Warp (run it again)", "Delete"])
            if j == 0:
                self.run_outside({"time_warp": str(n)})
            elif j == 1:
                self.run_outside({"time_state": "-%d" % n})

    def controller(self):
        d = self.ask("Controller modules directory", self.values.get("build_controller", ""))
        if d:
            self.run_outside({"build_controller": d})


def main(values):
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise UsageError("the main menu needs a terminal (use --base=... to build without it)")
    dispatch.check_values(values)
    return curses.wrapper(lambda screen: Menu(screen, values).main())
