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
pytest_plugins = ["tests.fixture.pytest_plugin"]
