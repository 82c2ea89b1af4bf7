"""Figures for the theory command line (matplotlib, Agg backend: files only, no display)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from lossylearn.errors import LossylearnError  # noqa: E402


def _save(fig, path: Path) -> Path:
    path = Path(path)
    if path.suffix.lower() not in {".png", ".pdf", ".svg"}:
        raise LossylearnError(f"plot file must end in .png, .pdf or .svg; got {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)
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
    fig, ax = plt.subplots(figsize=(6.0, 4.2))
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
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9.0, 3.8))
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
