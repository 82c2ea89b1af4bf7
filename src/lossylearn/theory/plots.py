"""Figures for the theory command line: matplotlib's object API on an Agg canvas (files only, no
display, no pyplot global state and no backend switch)."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lossylearn.errors import LossylearnError


def _figure(ncols: int, figsize: tuple[float, float]) -> tuple[Figure, object]:
    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(1, ncols) if ncols > 1 else fig.subplots()


def _save(fig, path: Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in {".png", ".pdf", ".svg"}:
        raise LossylearnError(f"plot file must end in .png, .pdf or .svg; got {path.name}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fig.tight_layout()
        fig.savefig(path, dpi=130)
    except OSError as exc:
        raise LossylearnError(f"cannot write the figure {path}: {exc.strerror or exc}") from None
    return path


def check_plot_path(path: Path) -> Path:
    """Refuse a figure path that cannot be written, before any work is done: a wrong suffix, an
    existing folder, a parent that is a file, or a place this process cannot write in (probed by
    opening the file, or a temporary file in the nearest existing folder; nothing is left
    behind)."""
    path = Path(path)
    if path.is_dir():
        raise LossylearnError(f"plot path {path} is a folder; give a file name inside it")
    if path.suffix.lower() not in {".png", ".pdf", ".svg"}:
        raise LossylearnError(f"plot file must end in .png, .pdf or .svg; got {path.name}")
    parent = path.parent
    while not parent.exists() and parent != parent.parent:
        parent = parent.parent
    if not parent.is_dir():
        raise LossylearnError(f"cannot write the figure {path}: {parent} is not a folder")
    try:
        if parent == path.parent:
            existed = path.exists()
            with open(path, "ab"):
                pass
            if not existed:
                path.unlink()
        else:
            with tempfile.TemporaryFile(dir=parent):
                pass
    except OSError as exc:
        raise LossylearnError(f"cannot write the figure {path}: {exc.strerror or exc}") from None
    return path


def plot_curves(
    path: Path,
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
    markers: Mapping[str, tuple[Sequence[float], Sequence[float]]] | None = None,
) -> Path:
    """Line plot of named ``(x, y)`` curves, with optional named scatter ``markers``."""
    fig, ax = _figure(1, (6.0, 4.2))
    for label, (xs, ys) in curves.items():
        ax.plot(list(xs), list(ys), label=label, lw=1.6)
    for label, (xs, ys) in (markers or {}).items():
        ax.scatter(list(xs), list(ys), label=label, s=22, zorder=3)
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return _save(fig, path)


def plot_lcon(path: Path, rows: Sequence[Mapping[str, float]], title: str) -> Path:
    """Solver rate against eq. (9) per block length, and the reconstruction-law distance."""
    ks = [int(r["k"]) for r in rows]
    fig, (ax1, ax2) = _figure(2, (9.0, 3.8))
    ax1.plot(ks, [r["rate_formula_bits"] for r in rows], "o-", label="H(Z^k)/k - H(N)")
    ax1.plot(ks, [r["rate_solver_bits"] for r in rows], "x--", ms=9, label="Blahut-Arimoto")
    ax1.set_xlabel("block length k")
    ax1.set_ylabel("bits per symbol")
    ax1.set_xticks(ks)
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    ax2.semilogy(ks, [max(r["recon_tv"], 1e-17) for r in rows], "s-", label="TV(recon law, P_X^k)")
    ax2.semilogy(ks, [max(r["joint_tv"], 1e-17) for r in rows], "d--", label="TV(joint, P_Z^k X^k)")
    ax2.set_xlabel("block length k")
    ax2.set_xticks(ks)
    ax2.legend(fontsize=8)
    ax2.grid(alpha=0.3)
    fig.suptitle(title)
    return _save(fig, path)
