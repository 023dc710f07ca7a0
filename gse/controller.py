"""--build-controller=DIR: hand the controller build the modules directory."""
import importlib.util
import os
import tempfile

from . import layout, runner
from .errors import BuildFailed, UsageError


def build(modules_dir, configd_dirs, quiet=False, verbose=False):
    modules_dir = os.path.abspath(modules_dir)
    if not os.path.isdir(modules_dir):
        raise UsageError("--build-controller: %s is not a directory" % modules_dir)
    if os.path.isfile(layout.playbook("controller.yml")):
        with tempfile.TemporaryDirectory(prefix="gse-controller-") as private:
            r = runner.run("controller.yml", private,
                           {"gse_controller_modules_dir": modules_dir,
                            "gse_configd_dirs": list(configd_dirs)},
                           quiet=quiet, verbose=verbose)
        if r.status != "successful":
            raise BuildFailed("the controller build failed")
        return 0
    if importlib.util.find_spec("gse.controller_build") is not None:
        from . import controller_build
        controller_build.build(modules_dir=modules_dir)
        return 0
    raise UsageError("this installation has no controller build (playbooks/controller.yml)")
