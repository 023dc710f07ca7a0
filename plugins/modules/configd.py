#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright: GSE contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
# The work is done by the action plugin of the same name; this file carries its documentation.

from __future__ import annotations

DOCUMENTATION = r"""
module: configd
short_description: Check config.d against the schema of the settings
version_added: 0.1.0
description:
  - Reads every C(<category>.yml) and C(<category>.yaml) file of the given config.d directories (missing
    directories are skipped) and checks it against the roles' argument specs, the one schema of every setting
    (C(meta/argument_specs.yml), written by C(scripts/gen-argument-specs) from the documented role defaults).
  - Checks types, choices, ranges, that paths are absolute, the keys of list entries (such as C(gse_users)),
    that each variable is in its category's file, and refuses unknown variables with the closest known name.
  - Refuses non-regular files (a FIFO, a broken link, a device), files larger than 1 MiB, YAML nested deeper than
    32 levels, with more than 100 aliases, with a self-referencing alias or more than 100000 values once its
    aliases are expanded.
  - Failures name the file, line and column. Values of secret settings are never shown.
  - Runs on the controller; it changes nothing.
options:
  dirs:
    description: The config.d directories, in the order they are read.
    type: list
    elements: path
    required: true
author:
  - GSE contributors (!UNKNOWN)
"""

EXAMPLES = r"""
- name: Check config.d
  gse.stateless.configd:
    dirs: "{{ gse_configd_dirs }}"
"""

RETURN = r"""
files:
  description: The files checked, in the order they are read.
  returned: success
  type: list
  elements: str
  sample: [/usr/lib64/gse/config.d/system.yml, /etc/gse/config.d/users.yml]
"""
