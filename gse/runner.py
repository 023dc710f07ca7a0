"""Run the collection's playbooks through ansible-runner."""
import os
import sys

import ansible_runner

from . import layout


def environment():
    """What every playbook run needs: the collection, its ansible.cfg, the mount owner."""
    bindir = os.path.dirname(sys.executable)
    return {
        "ANSIBLE_COLLECTIONS_PATH": layout.collections_path(),
        "ANSIBLE_CONFIG": os.path.join(layout.find_collection(), "ansible.cfg"),
        "ANSIBLE_ROLES_PATH": os.path.join(layout.find_collection(), "roles"),
        # Mounts of part B stay while gse lives, so that a failed part can be
        # resumed or inspected in a shell; gse releases them on exit.
        "GSE_MOUNT_OWNER_PID": str(os.getpid()),
        "PATH": bindir + os.pathsep + os.environ.get("PATH", "/usr/bin:/bin"),
    }


def run(name, private_dir, extravars, tags=None, skip_tags=None, verbose=False, quiet=False,
        event_handler=None, cancel=None, ident=None, cmdline=None):
    """Run playbook ``name``; return the ansible_runner.Runner."""
    os.makedirs(private_dir, mode=0o700, exist_ok=True)
    inventory = os.path.join(layout.find_collection(), "inventories", "default", "hosts.yml")
    kwargs = dict(
        private_data_dir=private_dir,
        playbook=layout.playbook(name),
        inventory=inventory,
        extravars=extravars,
        envvars=environment(),
        quiet=quiet,
        verbosity=3 if verbose else None,
        event_handler=event_handler,
        cancel_callback=cancel,
        ident=ident,
        cmdline=cmdline,
    )
    if tags:
        kwargs["tags"] = ",".join(tags)
    if skip_tags:
        kwargs["skip_tags"] = ",".join(sorted(skip_tags))
    return ansible_runner.run(**{k: v for k, v in kwargs.items() if v is not None})
