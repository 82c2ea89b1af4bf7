"""The Rich progress bars of the training loops (one setup for the classifier loop and the studies)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Protocol

__all__ = ["Advance", "BarFactory", "progress_bars"]


class Advance(Protocol):
    """Advance one bar by a step; ``loss``, when given, is shown beside it."""

    def __call__(self, loss: float | None = None) -> None: ...


BarFactory = Callable[[str, int], Advance]
"""``(description, total steps) -> advance``: adds one bar."""


def _ignore(loss: float | None = None) -> None:
    return None


@contextmanager
def progress_bars(enabled: bool, *, transient: bool = False) -> Iterator[BarFactory]:
    """Yield a factory of progress bars, all shown in one Rich display (nothing when disabled).

    ``transient`` removes the bars from the terminal when the block ends. Rich is imported only
    when the bars are shown.
    """
    if not enabled:
        yield lambda description, total: _ignore
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=transient,
    ) as display:

        def factory(description: str, total: int) -> Advance:
            task = display.add_task(description, total=total, status="")

            def advance(loss: float | None = None) -> None:
                if loss is None:
                    display.advance(task)
                else:
                    display.update(task, advance=1, status=f"loss {loss:.3f}")

            return advance

        yield factory
