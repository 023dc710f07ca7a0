"""What the subcommands (gse wake, gse publish, gse fleet) share: an argparse parser
whose errors are UsageError (one line, exit 2, nothing done) instead of a printed usage."""
import argparse

from .errors import UsageError


class Parser(argparse.ArgumentParser):
    """argparse that raises UsageError instead of printing its usage and exiting."""

    def error(self, message):
        raise UsageError(message)
