"""Mounts the sub-applications (theory, learned codec, studies) on the main command line."""

from __future__ import annotations

import typer


def mount(app: typer.Typer) -> None:
    """Attach ``theory``, ``codec`` and ``study`` command groups to ``app``."""
