"""Errors a user can act on, and how a command reports them.

Each message names the file and line, or the config key, and the valid choices. Every command
(``rag-retrieval ...`` and ``python -m rag_retrieval....``) runs through :func:`run_command`, which
prints such a mistake as one ``error:`` line instead of a traceback; ``--debug`` or
``RAG_RETRIEVAL_DEBUG=1`` shows the traceback. Ground floor: imports nothing of the package.
"""

import os
import sys


class ConfigError(ValueError):
    """A config file or override is wrong; the message names the key and the valid values."""


class DataError(ValueError):
    """Malformed input; the message lists each bad record as ``file:line: key: problem``."""


# what a user's mistake raises: bad config, data, paths and options (the commands' own checks
# raise ValueError for options), files (missing, existing output, unreadable, a hub id that cannot
# be fetched: OSError), a run stopped on a non-finite loss
USER_ERRORS = (ConfigError, DataError, ValueError, OSError, FloatingPointError)


def debugging(argv=None) -> bool:
    """Whether tracebacks are wanted: ``--debug`` among the words, or ``RAG_RETRIEVAL_DEBUG`` set."""
    return "--debug" in (argv or []) or os.environ.get("RAG_RETRIEVAL_DEBUG", "").lower() not in ("", "0", "false")


def run_command(main, argv=None) -> None:
    """Run ``main(argv)`` as a command and exit: 0, or the int it returns; a user's mistake
    (:data:`USER_ERRORS`) prints ``error: ...`` on stderr and exits 1; Ctrl-C exits 130."""
    argv = list(sys.argv[1:] if argv is None else argv)
    debug = debugging(argv)
    argv = [word for word in argv if word != "--debug"]
    try:
        result = main(argv)
    except USER_ERRORS as err:
        if debug:
            raise
        print(f"error: {err}", file=sys.stderr, flush=True)
        sys.exit(1)
    except KeyboardInterrupt:
        if debug:
            raise
        print("interrupted", file=sys.stderr)
        sys.exit(130)
    sys.exit(result if isinstance(result, int) else 0)
