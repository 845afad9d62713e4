"""The exit codes of every `benchwatch` verb, and how an error becomes one of them.

| code | name          | meaning                                                                   |
|------|---------------|---------------------------------------------------------------------------|
| 0    | OK            | the verb ran and found nothing to report (replay: PASS)                   |
| 1    | FINDING       | the verb ran and found something: drift (`drift compare`), a canary FAIL  |
|      |               | (`replay`), generated files that differ (`grafana check`)                 |
| 2    | USAGE         | usage or bad input: an argparse error, a `ConfigError`, an input file     |
|      |               | that is missing or unreadable                                             |
| 3    | COULD_NOT_RUN | the input is fine but the verb could not run: a service unreachable, a    |
|      |               | `MissingExtraError`, any other `BenchwatchError`, an unexpected error     |
| 4    | INCONCLUSIVE  | `replay` only: too little evidence to pass or fail the canary             |
| 130  | INTERRUPTED   | Ctrl-C                                                                    |

INCONCLUSIVE has its own code because argparse exits 2 on a mistyped option before any verb
runs, so 2 can only mean "fix the command"; a release pipeline must tell "not enough evidence:
hold the rollout or replay more queries" apart from a typo (2), a FAIL (1) and a broken setup (3).
An unexpected exception (a bug) exits 3, never 1, so a crash can never read as a finding.

Verbs return `ExitCode.OK`, `FINDING` or `INCONCLUSIVE` and raise for everything else;
`benchwatch.cli.main` turns the exception into one line, `benchwatch VERB: error: MESSAGE`, on
stderr (with the traceback only at `--log-level DEBUG`, or for an unexpected exception).
"""

from __future__ import annotations

import logging
import sys
import traceback
from enum import IntEnum

from probes.errors import BenchwatchError, ConfigError

# an OSError about a path the user gave (as opposed to a connection or a full disk)
_FILE_ERRORS = (FileNotFoundError, FileExistsError, IsADirectoryError, NotADirectoryError,
                PermissionError)


class ExitCode(IntEnum):
    OK = 0
    FINDING = 1
    USAGE = 2
    COULD_NOT_RUN = 3
    INCONCLUSIVE = 4
    INTERRUPTED = 130


# `benchwatch --help` ends with this
EPILOG = ("exit codes: 0 ok, 1 a finding (drift, canary FAIL, files that differ), 2 usage or bad "
          "input, 3 could not run, 4 inconclusive (replay), 130 interrupted")


def exit_code_for(exc: BaseException) -> ExitCode:
    """The exit code for an exception that stopped a verb (see the table above)."""
    if isinstance(exc, (ConfigError, *_FILE_ERRORS)):
        return ExitCode.USAGE
    return ExitCode.COULD_NOT_RUN


def message(exc: BaseException) -> str:
    """What went wrong, as the exception says it (an OSError as `PATH: REASON`)."""
    if isinstance(exc, OSError) and exc.filename is not None and exc.strerror:
        return f"{exc.filename}: {exc.strerror}"
    if not isinstance(exc, BenchwatchError | OSError):
        return (f"unexpected {type(exc).__name__}: {exc} (a bug in benchwatch: please report it "
                "with the traceback above)")
    return str(exc) or type(exc).__name__


def report_error(exc: BaseException, prog: str) -> ExitCode:
    """Print `PROG: error: MESSAGE` on stderr and return the exit code for `exc`."""
    expected = isinstance(exc, BenchwatchError | OSError)
    if not expected or logging.getLogger().isEnabledFor(logging.DEBUG):
        traceback.print_exception(exc, file=sys.stderr)
    print(f"{prog}: error: {message(exc)}", file=sys.stderr, flush=True)
    return exit_code_for(exc)


__all__ = ["EPILOG", "ExitCode", "exit_code_for", "message", "report_error"]
