#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Generate locales and select the system locale the way Gentoo does."""

from __future__ import annotations

DOCUMENTATION = r"""
---
module: locale
short_description: Write locale.gen, run locale-gen and select the system locale
description:
  - Writes C(/etc/locale.gen) with one line per entry of O(locales); comment lines already in the file are
    kept, other entries are replaced.
  - Runs C(locale-gen) when the file changed and C(locale-gen) is installed.
  - Selects the system locale as C(eselect locale set) does, by setting C(LANG) (and C(LC_COLLATE) when
    O(lc_collate) is given) in C(/etc/env.d/02locale); other assignments in that file are kept.
  - Runs C(env-update) when C(02locale) changed and C(env-update) is installed.
options:
  locales:
    description:
      - Lines of C(/etc/locale.gen), C(<locale> <charset>), for example C(en_US.UTF-8 UTF-8).
      - When omitted, C(/etc/locale.gen) is not touched.
    type: list
    elements: str
  lang:
    description:
      - The system locale (C(LANG)), for example C(en_US.utf8). When omitted, C(02locale) is not touched.
      - When C(locale -a) is available it must list this locale (C(UTF-8) and C(utf8) spellings are the same).
    type: str
  lc_collate:
    description: C(LC_COLLATE) in C(02locale), for example C(C.UTF-8).
    type: str
  root:
    description:
      - The root of the system to configure; inside the build chroot it is C(/).
      - C(locale-gen), C(env-update) and C(locale -a) run only when it is C(/), as they act on the running system.
    type: path
    default: /
attributes:
  check_mode:
    support: full
    description: Reports the files that would change without writing them or running C(locale-gen).
  diff_mode:
    support: full
    description: Shows the old and new C(locale.gen) and C(/etc/env.d/02locale).
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- gse.stateless.locale:
    locales:
      - en_US.UTF-8 UTF-8
      - de_DE.UTF-8 UTF-8
    lang: en_US.utf8
    lc_collate: C.UTF-8
"""

RETURN = r"""
locale_gen:
  description: The C(locale-gen) run, when one ran.
  returned: when locale-gen ran
  type: dict
  contains:
    cmd:
      description: The command.
      type: list
      elements: str
    rc:
      description: Its exit status.
      type: int
    stdout:
      description: Its output.
      type: str
env_update:
  description: The C(env-update) run, when one ran.
  returned: when env-update ran
  type: dict
changed_files:
  description: The files that changed (would change, in check mode).
  returned: always
  type: list
  elements: str
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.gse.stateless.plugins.module_utils import managed_file
from ansible_collections.gse.stateless.plugins.module_utils import shellvars

LOCALE_GEN = "etc/locale.gen"
ENV_FILE = "etc/env.d/02locale"


def render_locale_gen(current, locales):
    """The new locale.gen: the comments of ``current``, then the requested entries."""
    kept = [l for l in (current or "").splitlines() if not l.strip() or l.lstrip().startswith("#")]
    while kept and not kept[-1].strip():
        kept.pop()
    body = [" ".join(l.split()) for l in locales]
    return "\n".join(kept + ([""] if kept else []) + body) + "\n"


def normalize(name):
    """Compare locale names as glibc does: the codeset without case or dashes."""
    base, dot, codeset = name.partition(".")
    modifier = ""
    if "@" in codeset:
        codeset, _at, modifier = codeset.partition("@")
    return base + dot + codeset.lower().replace("-", "") + ("@" + modifier if modifier else "")


def run_tool(module, name, results, key, failures):
    tool = module.get_bin_path(name)
    if not tool:
        module.warn("%s is not installed: not run" % name)
        return
    rc, out, err = module.run_command([tool])
    results[key] = dict(cmd=[tool], rc=rc, stdout=out, stderr=err)
    if rc != 0:
        failures.append((name, [tool], rc, out, err))


def main():
    module = AnsibleModule(
        argument_spec=dict(
            locales=dict(type="list", elements="str"),
            lang=dict(type="str"),
            lc_collate=dict(type="str"),
            root=dict(type="path", default="/"),
        ),
        supports_check_mode=True,
    )
    p = module.params
    root = p["root"]
    result = dict(changed=False, changed_files=[])
    diffs = []
    failures = []

    if p["locales"] is not None:
        for line in p["locales"]:
            if len(line.split()) != 2:
                module.fail_json(msg="locale.gen entries are '<locale> <charset>', not %r" % line)
        path = os.path.join(root, LOCALE_GEN)
        before = managed_file.read(path)
        after = render_locale_gen(before, p["locales"])
        if managed_file.write(module, path, after):
            result["changed_files"].append(path)
            diffs.append(dict(before_header=path, after_header=path, before=before or "", after=after))
            if not module.check_mode and root == "/":
                run_tool(module, "locale-gen", result, "locale_gen", failures)

    if p["lang"] is not None or p["lc_collate"] is not None:
        if p["lang"] is not None and not (module.check_mode and result["changed_files"]):
            check_available(module, p["lang"], root)
        path = os.path.join(root, ENV_FILE)
        before = managed_file.read(path)
        after = before or ""
        if p["lang"] is not None:
            after = shellvars.set_value(after, "LANG", p["lang"])
        if p["lc_collate"] is not None:
            after = shellvars.set_value(after, "LC_COLLATE", p["lc_collate"])
        if not os.path.isdir(os.path.dirname(path)) and not module.check_mode:
            os.makedirs(os.path.dirname(path), 0o755)
        if managed_file.write(module, path, after):
            result["changed_files"].append(path)
            diffs.append(dict(before_header=path, after_header=path, before=before or "", after=after))
            if not module.check_mode and root == "/":
                run_tool(module, "env-update", result, "env_update", failures)

    result["changed"] = bool(result["changed_files"])
    if module._diff:
        result["diff"] = diffs
    if failures:
        name, cmd, rc, out, err = failures[0]
        module.fail_json(msg="%s failed (rc=%d)" % (name, rc), cmd=cmd, rc=rc, stdout=out, stderr=err, **result)
    module.exit_json(**result)


def check_available(module, lang, root):
    """Refuse a LANG that ``locale -a`` does not list (eselect locale does the same)."""
    tool = module.get_bin_path("locale")
    if not tool or root != "/" or lang in ("C", "POSIX"):
        return
    rc, out, err = module.run_command([tool, "-a"])
    if rc != 0:
        return
    available = {normalize(l.strip()) for l in out.splitlines() if l.strip()}
    if normalize(lang) not in available:
        module.fail_json(msg="locale %s is not available (locale -a does not list it; add it to locales)" % lang,
                         cmd=[tool, "-a"], rc=rc, stdout=out, stderr=err)


if __name__ == "__main__":
    main()
