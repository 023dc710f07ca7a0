"""Shared pytest configuration.

The checkout is the gse.stateless collection.  Tests import its plugins as
``ansible_collections.gse.stateless.plugins...`` through the committed
``.collections`` link, and playbook runs find it through ``ansible.cfg``.
"""
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, ".collections")
if COLLECTIONS not in sys.path:
    sys.path.insert(0, COLLECTIONS)
os.environ.setdefault("ANSIBLE_COLLECTIONS_PATH", COLLECTIONS)
os.environ.setdefault("ANSIBLE_CONFIG", os.path.join(ROOT, "ansible.cfg"))

# Install Ansible's collection finder once, knowing this checkout, before any
# test imports collection code: every later import then resolves the same way.
from ansible.plugins.loader import init_plugin_loader  # noqa: E402

init_plugin_loader([COLLECTIONS])

pytest_plugins = ["tests.fixture.pytest_plugin"]
