# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Ask Portage for its settings through ``portageq`` rather than parsing make.conf.

The values Portage uses come from make.globals, the profile stack, make.conf
and the environment; only Portage itself can say what they add up to.
"""

from __future__ import annotations

import shlex


def envvars(module, names):
    """{name: value} of Portage settings; unset settings are ''.

    ``portageq envvar`` exits 1 when one of the names is unset but still
    prints every line, so the output is read whatever the exit status.
    """
    values = {n: "" for n in names}
    portageq = module.get_bin_path("portageq")
    if not portageq:
        # Only used to describe a failure: a missing portageq must not hide it.
        return values
    rc, out, err = module.run_command([portageq, "envvar", "-v"] + list(names))
    for line in (out or "").splitlines():
        key, sep, raw = line.partition("=")
        if not sep or key not in values:
            continue
        try:
            parts = shlex.split(raw)
        except ValueError:
            continue
        values[key] = parts[0] if parts else ""
    return values


def repo_path(module, repo, root="/"):
    """The location of the repository named ``repo``; fails the module when unknown."""
    cmd = [module.get_bin_path("portageq", required=True), "get_repo_path", root, repo]
    rc, out, err = module.run_command(cmd)
    path = (out or "").strip()
    if rc != 0 or not path:
        module.fail_json(msg="Portage does not know the repository %r" % repo,
                         cmd=cmd, rc=rc, stdout=out, stderr=err)
    return path
