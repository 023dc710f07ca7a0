"""Exit codes of the gse command and the errors that carry them."""

EXIT_OK = 0
EXIT_BUILD_FAILED = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class UsageError(Exception):
    """Bad command line, configuration or environment: nothing was touched (exit 2)."""

    code = EXIT_USAGE


class BuildFailed(Exception):
    """A part of the build failed and the run stops (exit 1)."""

    code = EXIT_BUILD_FAILED


class Interrupted(Exception):
    """SIGINT/SIGTERM, or the user declined to go on (exit 130)."""

    code = EXIT_INTERRUPTED
