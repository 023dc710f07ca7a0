"""Hand the checked config.d to the playbook: gse parses config.d once per run.

The merged variables (later directories win, as include_vars would have it)
go to one private file that the playbook's first tasks load instead of
reading config.d again (roles/common: gse_configd_file).  The file may hold
passwords, so it lives in a private temporary directory outside the build's
logs and is removed when gse exits.
"""
import atexit
import os
import shutil
import tempfile

import yaml

_DIRS = []


def write(config):
    """Write config.merged to a new 0600 file in a 0700 directory; return its path."""
    directory = tempfile.mkdtemp(prefix="gse-configd-")
    _DIRS.append(directory)
    path = os.path.join(directory, "configd.yml")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        yaml.safe_dump(config.merged, f, sort_keys=True, default_flow_style=False)
    return path


@atexit.register
def remove():
    """Remove every hand-over file of this process."""
    while _DIRS:
        shutil.rmtree(_DIRS.pop(), ignore_errors=True)
