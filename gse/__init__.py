"""GSE, the Gentoo Stateless Environment: the ``gse`` command.

The version is the collection's (galaxy.yml), the one place it is written:
``__version__`` reads it from whichever collection ``layout.find_collection``
finds (the checkout, or the copy shipped inside the installed package).
"""


def __getattr__(name):
    # Lazy: importing gse must not fail where the collection cannot be found.
    if name == "__version__":
        from .layout import collection_version
        return collection_version()
    raise AttributeError("module %r has no attribute %r" % (__name__, name))
