"""GSE, the Gentoo Stateless Environment: the ``gse`` command."""
__version__ = "0.1.0"
