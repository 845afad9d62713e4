"""Secret options (tokens, HMAC secrets): from the environment, from a file, or (discouraged)
from the command line.

`add_secret(parser, "--token", env="BENCHWATCH_TOKEN")` adds `--token VALUE` and
`--token-file PATH`; `secret(args, "--token")` returns the secret from, in order, the option,
the file, the environment. A value given on the command line still works but logs a warning:
any user of the host can read a process's arguments (`ps`, /proc/PID/cmdline).
"""

from __future__ import annotations

import argparse
import logging
import os
from pathlib import Path

from benchwatch.errors import UsageError

log = logging.getLogger(__name__)

MAX_SECRET_FILE = 64 * 1024  # a token file is a line, not a log


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def add_secret(parser: argparse.ArgumentParser | argparse._ArgumentGroup, flag: str,
               env: str, what: str) -> None:
    parser.add_argument(flag, default=None, metavar="VALUE",
                        help=f"{what}; prefer ${env} or {flag}-file: a value here is visible "
                             "in `ps`")
    parser.add_argument(f"{flag}-file", type=Path, default=None, metavar="PATH",
                        help=f"read the {what} from this file (one line)")


def secret(args: argparse.Namespace, flag: str, env: str) -> str | None:
    """The secret from `flag`, `flag-file` or `$env` (None when none is set or it is empty)."""
    value: str | None = getattr(args, _dest(flag))
    path: Path | None = getattr(args, _dest(flag) + "_file")
    if value is not None and path is not None:
        raise UsageError(f"give {flag} or {flag}-file, not both")
    if value is not None:
        log.warning("%s was given on the command line, where any user of this host can read it "
                    "(ps); pass it in $%s or %s-file instead", flag, env, flag)
    elif path is not None:
        value = _read(path, flag)
    else:
        value = os.environ.get(env)
    if value is None:
        return None
    return value.strip() or None


def _read(path: Path, flag: str) -> str:
    try:
        if not path.is_file():
            raise UsageError(f"{flag}-file {path}: not a regular file; give the file that "
                             "holds the secret")
        with path.open("rb") as f:
            data = f.read(MAX_SECRET_FILE + 1)
    except OSError as exc:
        raise UsageError(f"{flag}-file {path}: cannot read it ({exc.strerror or exc})") from exc
    if len(data) > MAX_SECRET_FILE:
        raise UsageError(f"{flag}-file {path}: over {MAX_SECRET_FILE} bytes; a secret file "
                         "holds one line")
    try:
        text = data.decode().strip()
    except UnicodeDecodeError:
        raise UsageError(f"{flag}-file {path}: not UTF-8 text") from None
    if not text:
        raise UsageError(f"{flag}-file {path} is empty: write the secret into it")
    return text


__all__ = ["add_secret", "secret"]
