"""The gse command (placeholder until the command line lands)."""
import sys


def main(argv=None):
    print("gse: the command line is not implemented yet", file=sys.stderr)
    return 2
