# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one family of errors that carry a failed command: signing and verifying.

A module turns any of them into its failure with ``module.fail_json(**e.fail_args())``,
so that the failure carries the command, its exit code and its output.
"""

from __future__ import annotations


class CommandError(Exception):
    """A step failed; ``cmd``, ``rc``, ``stdout`` and ``stderr`` say how, when a command did."""

    def __init__(self, msg, cmd=None, rc=None, stdout="", stderr=""):
        super().__init__(msg)
        self.msg = msg
        self.cmd = cmd
        self.rc = rc
        self.stdout = stdout
        self.stderr = stderr

    def fail_args(self):
        """The keyword arguments of ``module.fail_json``."""
        return dict(msg=self.msg, cmd=self.cmd, rc=self.rc, stdout=self.stdout, stderr=self.stderr)


class VerifyError(CommandError):
    """A signature, a digest or a pointer did not verify."""


class SignError(CommandError):
    """gpg could not sign, or the signing key is missing or ambiguous."""
