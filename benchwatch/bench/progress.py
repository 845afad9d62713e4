"""Progress for long runs, as the runner's `progress(task, done, total)` callback: rich bars on
a terminal; otherwise (`--no-progress`, output to a file or a CI log) one status line on stderr
every `every_s` seconds and when a task completes, so a long run is never silent."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TextIO

from benchwatch.bench.runner import Progress

STATUS_EVERY_S = 10.0


def status_lines(prefix: str = "", every_s: float = STATUS_EVERY_S,
                 out: TextIO | None = None) -> Progress:
    """A callback printing `PREFIXtask done/total (pct), elapsed` at most every `every_s`
    seconds, and once when each task completes."""
    start = last = time.monotonic()
    finished: set[str] = set()

    def update(task: str, done: int, total: int) -> None:
        nonlocal last
        now = time.monotonic()
        complete = done >= total
        if (complete and task in finished) or (not complete and now - last < every_s):
            return
        if complete:
            finished.add(task)
        last = now
        pct = f" ({100 * done / total:.0f}%)" if total else ""
        print(f"{prefix}{task} {done}/{total}{pct}, {now - start:.0f} s elapsed",
              file=out or sys.stderr, flush=True)

    return update


@contextmanager
def rich_progress(prefix: str = "", enabled: bool = True) -> Iterator[Progress | None]:
    if not enabled or not sys.stderr.isatty():
        yield status_lines(prefix)
        return
    from rich.progress import BarColumn, MofNCompleteColumn, TextColumn, TimeElapsedColumn
    from rich.progress import Progress as RichProgress

    with RichProgress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                      TimeElapsedColumn(), transient=False) as bar:
        tasks: dict[str, Any] = {}

        def update(task: str, done: int, total: int) -> None:
            key = f"{prefix}{task}"
            if key not in tasks:
                tasks[key] = bar.add_task(key, total=total)
            bar.update(tasks[key], completed=done, total=total)

        yield update
