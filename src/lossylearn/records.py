"""The JSON form every frozen record of the package shares (rows, summaries, configurations)."""

from __future__ import annotations

from dataclasses import asdict
from typing import Any

__all__ = ["Record"]


class Record:
    """Base of a dataclass whose JSON-ready form is all of its fields (:meth:`to_dict`)."""

    __slots__ = ()

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: every field (nested dataclasses as dicts), tuples as lists."""
        return {
            k: list(v) if isinstance(v, tuple) else v
            for k, v in asdict(self).items()  # type: ignore[call-overload]
        }
