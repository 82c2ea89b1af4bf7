"""The Rich progress display of the whole package: the training loops' bars and the compress run's.

Every display has the same columns: description, bar, done/total, a status text, elapsed and
remaining time. Rich is imported only when a display is made, and nothing here loads torch, so
the pipeline and the training toolkit (:mod:`lossylearn.learn`) both use it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from rich.progress import Progress

__all__ = ["Advance", "BarFactory", "progress_bars", "progress_display"]


class Advance(Protocol):
    """Advance one bar by a step; ``loss``, when given, is shown beside it."""

    def __call__(self, loss: float | None = None) -> None: ...


BarFactory = Callable[[str, int], Advance]
"""``(description, total steps) -> advance``: adds one bar."""


def progress_display(*, transient: bool = False, disable: bool = False) -> Progress:
    """A Rich display whose tasks show their description, bar, done/total, the task's ``status``
    field, elapsed and remaining time (every task must be given ``status``)."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    return Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        transient=transient,
        disable=disable,
    )


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
    with progress_display(transient=transient) as display:

        def factory(description: str, total: int) -> Advance:
            task = display.add_task(description, total=total, status="")

            def advance(loss: float | None = None) -> None:
                if loss is None:
                    display.advance(task)
                else:
                    display.update(task, advance=1, status=f"loss {loss:.3f}")

            return advance

        yield factory
