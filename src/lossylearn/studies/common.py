"""What both studies share: lazily loaded package names, atomic result files, and the HTML report.

Each study builds the sections of its page (:mod:`.lcon.report`, :mod:`.urdc.report`);
:func:`write_report` puts them in one self-contained page (figures inlined as data URIs, no
network access). Importing this module loads neither torch nor the store's Parquet stack.
"""

from __future__ import annotations

import base64
import html
import importlib
import json
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

__all__ = [
    "environment_versions",
    "escape",
    "html_table",
    "img_tag",
    "lazy_exports",
    "png_data_uri",
    "write_json",
    "write_report",
]


def environment_versions(threads: int | None) -> dict[str, str]:
    """The versions a study's figures depend on (written into its results.json), and the device."""
    import platform
    import sys

    import matplotlib
    import numpy as np
    import PIL
    import torch

    from lossylearn.learn import resolve_device
    from lossylearn.version import __version__

    dev = resolve_device("auto")
    return {
        "lossylearn": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
        "matplotlib": matplotlib.__version__,
        "platform": platform.platform(),
        "device": torch.cuda.get_device_name(dev)
        if dev.type == "cuda"
        else f"cpu ({threads or torch.get_num_threads()} torch threads)",
    }


def lazy_exports(package: str, home: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package`` that imports each name of ``home`` (name ->
    submodule, relative to ``package``) on first use, so importing the package stays light."""

    def __getattr__(name: str) -> Any:
        if name in home:
            return getattr(importlib.import_module(f"{package}.{home[name]}"), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


def write_json(path: Path, doc: Any, *, indent: int) -> Path:
    """Write ``doc`` as indented JSON, atomically (a reader never sees a half-written file)."""
    from lossylearn.store.layout import atomic_write_bytes

    atomic_write_bytes(path, (json.dumps(doc, indent=indent) + "\n").encode("utf-8"))
    return path


# ---------------------------------------------------------------------------------------------
# The report page.


def escape(x: object) -> str:
    """``x`` as text safe inside HTML."""
    return html.escape(str(x))


def png_data_uri(png: bytes) -> str:
    """A PNG image as a ``data:`` URI, so the page needs no other file."""
    return "data:image/png;base64," + base64.b64encode(png).decode("ascii")


def img_tag(png: bytes, *, alt: str = "", cls: str = "") -> str:
    """An ``<img>`` element holding ``png`` inline."""
    c = f' class="{cls}"' if cls else ""
    return f'<img{c} alt="{escape(alt)}" src="{png_data_uri(png)}">'


def html_table(head: Sequence[str], rows: Iterable[Sequence[str]], *, left: int = 0) -> str:
    """A table of header ``head`` (escaped here) and cells that are already HTML; the first
    ``left`` columns are left-aligned (class ``l``)."""

    def cell(tag: str, i: int, content: str) -> str:
        return f'<{tag} class="l">{content}</{tag}>' if i < left else f"<{tag}>{content}</{tag}>"

    th = "".join(cell("th", i, escape(h)) for i, h in enumerate(head))
    body = "".join(
        "<tr>" + "".join(cell("td", i, c) for i, c in enumerate(r)) + "</tr>" for r in rows
    )
    return f"<table><tr>{th}</tr>{body}</table>"


def write_report(path: Path, *, title: str, style: str, sections: Iterable[str]) -> Path:
    """Write one self-contained page: ``title``, the CSS ``style``, then the HTML ``sections`` in
    order (atomically); returns ``path``."""
    from lossylearn.store.layout import atomic_write_bytes

    parts = [
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'>",
        f"<title>{escape(title)}</title>",
        f"<style>{style}</style></head><body>",
        *sections,
        "</body></html>",
    ]
    atomic_write_bytes(path, "\n".join(parts).encode("utf-8"))
    return path
