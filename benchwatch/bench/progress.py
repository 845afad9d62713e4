"""Progress bars (rich) for long runs, as the runner's `progress(task, done, total)` callback."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from benchwatch.bench.runner import Progress


@contextmanager
def rich_progress(prefix: str = "", enabled: bool = True) -> Iterator[Progress | None]:
    if not enabled:
        yield None
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
