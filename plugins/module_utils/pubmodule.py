# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What the publish and publication modules share: the tree, the keyring, and how they run a command."""

from __future__ import annotations

import os


class TreeModule:
    """A module run on the publication tree ``publish_dir`` that verifies with ``keyring``."""

    def __init__(self, module):
        self.module = module
        self.p = module.params
        self.pub = os.path.abspath(self.p["publish_dir"])
        self.keyring = os.path.abspath(self.p["keyring"])
        self.check = module.check_mode

    def run(self, argv, data=None):
        return self.module.run_command(argv, data=data, binary_data=True)
