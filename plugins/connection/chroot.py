# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Run tasks inside the build's chroot.

Unlike a plain ``chroot`` wrapper this connection starts every command with a
clean, documented environment: nothing from the build host's environment
(``LD_PRELOAD``, ``PYTHONPATH``, a virtualenv's ``PATH``, locale settings that
the stage3 cannot satisfy) leaks into Portage.  Files are copied with ``dd``
run *inside* the chroot, so a path is always resolved as the chroot sees it:
a symlink in the new system that points to ``/etc`` lands in the chroot's
``/etc``, never in the build host's.
"""

from __future__ import annotations

DOCUMENTATION = r"""
name: chroot
short_description: Run tasks inside a chroot with a clean environment
version_added: 0.1.0
description:
  - Runs commands and copies files inside a local chroot directory, as GSE's build parts C to J do.
  - Every command starts from a clean environment made of C(PATH), C(HOME), C(TERM), C(LANG) and the
    entries of O(chroot_env); nothing else from the build host's environment is passed on.
  - Files are copied by C(dd) running inside the chroot, so paths are resolved as the new system sees them.
  - Needs root on the build host. Run by another user (an AWX execution environment runs as uid 1000), it
    takes the task's become (C(become_method=sudo), C(become_user=root)) for the C(chroot) program itself,
    as C(sudo -n -- env -i ... chroot DIR sh -c CMD). The command inside the chroot is not wrapped again,
    as the new system has no sudo. Without become, or with another method or user, it refuses to connect.
  - Refuses a directory that is not a usable root (no shell inside it).
  - Supports pipelining.
author:
  - GSE contributors (!UNKNOWN)
options:
  remote_addr:
    description:
      - The path of the chroot directory.
    type: str
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
      - name: ansible_chroot_path
  executable:
    description:
      - The shell that runs each command inside the chroot.
    type: str
    default: /bin/sh
    vars:
      - name: ansible_executable
    ini:
      - section: defaults
        key: executable
    env:
      - name: ANSIBLE_EXECUTABLE
  chroot_exe:
    description:
      - The C(chroot) program on the build host.
    type: str
    default: chroot
    ini:
      - section: gse_chroot_connection
        key: exe
    env:
      - name: GSE_CHROOT_EXE
    vars:
      - name: ansible_chroot_exe
  chroot_path_env:
    description:
      - The C(PATH) commands see inside the chroot.
    type: str
    default: /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
    ini:
      - section: gse_chroot_connection
        key: path
    env:
      - name: GSE_CHROOT_PATH
    vars:
      - name: gse_chroot_path_env
  chroot_env:
    description:
      - Extra environment variables for every command inside the chroot (for example C(FEATURES) or
        C(CCACHE_DIR)). These are the only host-side additions to the clean environment.
    type: dict
    default: {}
    vars:
      - name: gse_chroot_env
  chroot_lang:
    description:
      - The C(LANG) commands see inside the chroot. C(C.UTF-8) is built into glibc 2.35 and newer.
    type: str
    default: C.UTF-8
    ini:
      - section: gse_chroot_connection
        key: lang
    env:
      - name: GSE_CHROOT_LANG
    vars:
      - name: gse_chroot_lang
"""

EXAMPLES = r"""
# inventory
all:
  hosts:
    chroot:
      ansible_connection: gse.stateless.chroot
      ansible_host: /var/tmp/gse/workdir-precomp
      ansible_python_interpreter: /usr/bin/python3
      gse_chroot_env:
        FEATURES: ccache
"""

import os
import shlex
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError, AnsibleFileNotFound
from ansible.module_utils.common.text.converters import to_bytes, to_native
from ansible.plugins.connection import BUFSIZE, ConnectionBase
from ansible.utils.display import Display

display = Display()


class Connection(ConnectionBase):
    """Local chroot connection with a clean environment."""

    transport = "gse.stateless.chroot"
    has_pipelining = True
    # Commands are run as root in the chroot; become applies to the chroot
    # program on the build host (set_become_plugin), never inside.
    has_tty = False
    default_user = "root"

    def __init__(self, play_context, new_stdin, *args, **kwargs):
        super().__init__(play_context, new_stdin, *args, **kwargs)
        self.chroot = None
        self._chroot_cmd = None
        self._host_become = None

    def set_become_plugin(self, plugin):
        # Kept for the chroot program (_prefix); self.become stays None so
        # that Ansible does not wrap the command run inside the chroot.
        self._host_become = plugin
        self.become = None

    def _prefix(self):
        """argv before ``chroot``: nothing as root, ``sudo -n -- env -i VAR=...`` through become."""
        if os.geteuid() == 0:
            return []
        plugin = self._host_become
        name = getattr(plugin, "name", "") if plugin else ""
        try:
            user = (plugin.get_option("become_user") if plugin else None) or "root"
        except KeyError:
            user = "root"
        if name.rsplit(".", 1)[-1] != "sudo" or user != "root":
            raise AnsibleError(
                "the gse.stateless.chroot connection needs root on the build host: run as root, or become root "
                "with sudo (become: true, become_method: sudo, become_user: root; docs/awx.md)"
            )
        # sudo resets the environment: env -i hands the clean one on.
        return ["sudo", "-n", "--", "env", "-i"] + ["%s=%s" % kv for kv in sorted(self._environment().items())]

    # -- connection ---------------------------------------------------------

    def _connect(self):
        if self._connected:
            return self
        self._prefix()  # refuses early when neither root nor sudo become
        root = self.get_option("remote_addr")
        if not root or not os.path.isabs(root):
            raise AnsibleError("chroot path %r must be an absolute path" % (root,))
        if not os.path.isdir(root):
            raise AnsibleError("chroot directory %s does not exist" % root)
        if os.path.realpath(root) == "/":
            raise AnsibleError("refusing to use / as a chroot")
        shell = self.get_option("executable") or "/bin/sh"
        # lexists: /bin/sh is often an absolute symlink that only resolves inside the chroot.
        if not os.path.lexists(os.path.join(root, shell.lstrip("/"))):
            raise AnsibleError(
                "%s is not a usable root: %s is missing inside it (was the stage3 extracted?)" % (root, shell)
            )
        exe = self.get_option("chroot_exe")
        for d in os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin").split(os.pathsep) + ["/usr/sbin", "/sbin"]:
            cand = os.path.join(d, exe) if not os.path.isabs(exe) else exe
            if os.path.isfile(cand) and os.access(cand, os.X_OK):
                self._chroot_cmd = cand
                break
        if not self._chroot_cmd:
            raise AnsibleError("chroot command %r not found on the build host" % exe)
        self.chroot = root
        display.vvv("ESTABLISH GSE CHROOT CONNECTION %s" % root, host=root)
        super()._connect()
        self._connected = True
        return self

    def _environment(self):
        """The clean environment every command in the chroot starts from."""
        env = {
            "PATH": self.get_option("chroot_path_env"),
            "HOME": "/root",
            "TERM": "dumb",
            "LANG": self.get_option("chroot_lang"),
            "SHELL": "/bin/bash",
        }
        for key, value in (self.get_option("chroot_env") or {}).items():
            env[str(key)] = str(value)
        return env

    def _popen(self, cmd, stdin=subprocess.PIPE):
        shell = self.get_option("executable") or "/bin/sh"
        argv = self._prefix() + [self._chroot_cmd, self.chroot, shell, "-c", cmd]
        display.vvv("EXEC %s" % shlex.join(argv), host=self.chroot)
        return subprocess.Popen(
            [to_bytes(a, errors="surrogate_or_strict") for a in argv],
            stdin=stdin,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=self._environment(),
            cwd="/",
        )

    def exec_command(self, cmd, in_data=None, sudoable=False):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        p = self._popen(cmd)
        stdout, stderr = p.communicate(in_data)
        return p.returncode, stdout, stderr

    # -- files --------------------------------------------------------------

    @staticmethod
    def _inside_path(path):
        # Ansible hands us paths as the target sees them; keep them absolute.
        return path if path.startswith("/") else "/" + path

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        display.vvv("PUT %s TO %s" % (in_path, out_path), host=self.chroot)
        out_path = shlex.quote(self._inside_path(out_path))
        try:
            with open(to_bytes(in_path, errors="surrogate_or_strict"), "rb") as src:
                if not os.fstat(src.fileno()).st_size:
                    cmd = "cat /dev/null > %s" % out_path
                else:
                    cmd = "dd of=%s bs=%d status=none" % (out_path, BUFSIZE)
                p = self._popen(cmd, stdin=src)
                stdout, stderr = p.communicate()
        except OSError as exc:
            raise AnsibleFileNotFound("file or module does not exist at: %s (%s)" % (in_path, exc))
        if p.returncode != 0:
            raise AnsibleConnectionFailure(
                "failed to transfer file to %s in chroot %s:\n%s\n%s"
                % (out_path, self.chroot, to_native(stdout), to_native(stderr))
            )

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        display.vvv("FETCH %s TO %s" % (in_path, out_path), host=self.chroot)
        in_path = shlex.quote(self._inside_path(in_path))
        p = self._popen("dd if=%s bs=%d status=none" % (in_path, BUFSIZE), stdin=subprocess.DEVNULL)
        with open(to_bytes(out_path, errors="surrogate_or_strict"), "wb+") as dst:
            while True:
                chunk = p.stdout.read(BUFSIZE)
                if not chunk:
                    break
                dst.write(chunk)
        stderr = p.stderr.read()
        p.wait()
        if p.returncode != 0:
            raise AnsibleConnectionFailure(
                "failed to fetch %s from chroot %s: %s" % (in_path, self.chroot, to_native(stderr))
            )

    def close(self):
        self._connected = False
