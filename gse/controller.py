"""--build-controller=DIR: run the controller role (playbooks/controller.yml) on DIR's modules."""
import os
import tempfile

from . import layout, runner
from .errors import BuildFailed, UsageError


def build(modules_dir, configd_dirs, quiet=False, verbose=False):
    """Build the controller with the modules of ``modules_dir``; 0 or BuildFailed."""
    modules_dir = os.path.abspath(modules_dir)
    if not os.path.isdir(modules_dir):
        raise UsageError("--build-controller: %s is not a directory" % modules_dir)
    if not os.path.isfile(layout.playbook("controller.yml")):
        raise UsageError("this installation has no controller build (playbooks/controller.yml)")
    with tempfile.TemporaryDirectory(prefix="gse-controller-") as private:
        r = runner.run("controller.yml", private,
                       {"gse_controller_modules_dir": modules_dir,
                        "gse_configd_dirs": list(configd_dirs)},
                       quiet=quiet, verbose=verbose)
    if r.status != "successful":
        raise BuildFailed("the controller build failed")
    return 0
