"""The ``sanity`` mark: the slow static checks of the collection.

They run by default; ``-m "not sanity"`` leaves them out of a quick run.
"""


def pytest_configure(config):
    config.addinivalue_line("markers", "sanity: ansible-test sanity and ansible-lint on the collection (slow)")
