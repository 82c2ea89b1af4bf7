"""Figures of the LCoN study in the paper's style: Fig. 2 (a)-(e), Fig. 3, and sample grids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from lossylearn.imaging import psnr_db
from lossylearn.privacy.mechanisms import matched_metric
from lossylearn.studies.lcon.results import SummaryRow

__all__ = ["SCHEME_STYLE", "write_figures", "plot_fig2", "plot_fig3", "plot_samples"]

#: Colours and names of the paper's Fig. 2 (blue baseline 1, red baseline 2, orange LCoN).
SCHEME_STYLE: dict[str, tuple[str, str, str]] = {
    "clean": ("tab:blue", "Baseline-1 (clean-train)", "s"),
    "noisy": ("tab:red", "Baseline-2 (noisy-train)", "^"),
    "lcon": ("tab:orange", "LCoN-train", "o"),
}
_PANELS = (("clean", "a", "Tested on noise-free examples"), ("noisy", "b", "Tested on noisy examples"),
           ("lcon", "c", "Tested on LCoN examples"))  # fmt: skip


def _subplots(*grid: int, figsize: tuple[float, float], **kwargs: Any) -> tuple[Any, Any]:
    """``plt.subplots`` drawn by the Agg canvas: no pyplot, no global backend switch."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=figsize)
    FigureCanvasAgg(fig)
    return fig, fig.subplots(*grid, **kwargs)


def _series(summary: Sequence[SummaryRow], **match: Any) -> list[SummaryRow]:
    return [s for s in summary if all(getattr(s, k) == v for k, v in match.items())]


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    return path


def _errorbar(ax: Any, pts: Sequence[SummaryRow], x: str, **style: Any) -> None:
    ax.errorbar([getattr(s, x) for s in pts], [100 * s.mean for s in pts], yerr=[100 * s.std for s in pts],
                capsize=3, **style)  # fmt: skip


def _finish(ax: Any, xlabel: str, title: str) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title, fontsize=10)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)


def plot_fig2(
    summary: Sequence[SummaryRow], out_dir: Path, *, adv_psnr: float | None
) -> dict[str, Path]:
    """Fig. 2 (a)-(c): accuracy vs PSNR per training scheme; (d): accuracy vs FGSM epsilon at
    ``adv_psnr`` (filled markers FGSM, empty markers LCoN-processed FGSM); (e): PGD vs PSNR."""
    paths: dict[str, Path] = {}
    for test, letter, title in _PANELS:
        fig, ax = _subplots(figsize=(4.6, 3.4))
        for scheme, (colour, name, marker) in SCHEME_STYLE.items():
            pts = sorted(
                _series(summary, sweep="noise", train=scheme, test=test), key=lambda s: s.psnr
            )
            if pts:
                _errorbar(ax, pts, "psnr", color=colour, marker=marker, label=name)
        _finish(ax, "PSNR of noisy images (dB)", f"({letter}) {title}")
        paths[f"fig2{letter}_{test}"] = _save(fig, out_dir / f"fig2{letter}_{test}.png")

    fig, ax = _subplots(figsize=(4.6, 3.4))
    drawn = False
    for scheme, (colour, name, marker) in SCHEME_STYLE.items():
        for test, filled in (("fgsm", True), ("lcon-fgsm", False)):
            pts = sorted(
                _series(summary, sweep="noise", train=scheme, test=test, psnr=adv_psnr),
                key=lambda s: s.epsilon,
            )
            if not pts:
                continue
            drawn = True
            _errorbar(ax, pts, "epsilon", color=colour, marker=marker, mfc=colour if filled else "white",
                      linestyle="-" if filled else "--", label=name + ("" if filled else " on LCoN-adv"))  # fmt: skip
    if drawn:
        _finish(
            ax,
            "FGSM epsilon (pixels in [0, 1])",
            f"(d) Tested on adversarial (FGSM) examples, PSNR {adv_psnr:g} dB",
        )
        paths["fig2d_fgsm"] = _save(fig, out_dir / "fig2d_fgsm.png")

    # PGD, the stronger extra attack: accuracy vs PSNR, one line per scheme and epsilon.
    pgd_eps = sorted({s.epsilon for s in summary if s.sweep == "noise" and s.test == "pgd"})
    if pgd_eps:
        fig, ax = _subplots(figsize=(4.6, 3.4))
        styles = ["-", "--", ":", "-."]
        for scheme, (colour, name, marker) in SCHEME_STYLE.items():
            for k, eps in enumerate(pgd_eps):
                pts = sorted(
                    _series(summary, sweep="noise", train=scheme, test="pgd", epsilon=eps),
                    key=lambda s: s.psnr,
                )
                _errorbar(ax, pts, "psnr", color=colour, marker=marker, linestyle=styles[k % 4],
                          label=f"{name}, eps {eps:.3g}")  # fmt: skip
        _finish(
            ax, "PSNR of noisy images (dB)", "(e) Tested on PGD examples (extra, stronger attack)"
        )
        paths["fig2e_pgd"] = _save(fig, out_dir / "fig2e_pgd.png")
    return paths


def plot_fig3(
    summary: Sequence[SummaryRow], out_dir: Path, *, matched: float, metric: str = "mse"
) -> Path | None:
    """Fig. 3: LCoN-train accuracy vs the codec distortion reached, with a vertical line at the
    matched distortion; left: clean, noisy and LCoN test sets, right: FGSM (middle epsilon), each
    on its own scale. Points are labelled with their target distortion."""
    rows = _series(summary, sweep="distortion", train="lcon")
    if not rows:
        return None
    eps = sorted({s.epsilon for s in rows if s.test == "fgsm"})
    mid = eps[len(eps) // 2] if eps else None
    fig, axes = _subplots(
        1,
        2 if mid is not None else 1,
        figsize=(9.6 if mid is not None else 5.2, 3.6),
        squeeze=False,
    )
    panels = [
        (
            axes[0][0],
            [
                ("clean", "noise-free", "tab:blue"),
                ("noisy", "noisy", "tab:red"),
                ("lcon", "LCoN", "tab:orange"),
            ],
        )
    ]
    if mid is not None:
        panels.append((axes[0][1], [("fgsm", f"FGSM eps {mid:g}", "tab:purple")]))
    for ax, tests in panels:
        for test, name, colour in tests:
            pts = [s for s in rows if s.test == test and (test != "fgsm" or s.epsilon == mid)]
            pts.sort(key=lambda s: s.target_distortion)
            _errorbar(
                ax, pts, "achieved_distortion", marker="o", color=colour, label=f"tested on {name}"
            )
        labels: dict[tuple[float, float], list[str]] = {}
        for s in rows:
            if s.test == tests[0][0] and (s.test != "fgsm" or s.epsilon == mid):
                labels.setdefault((s.achieved_distortion, 100 * s.mean), []).append(
                    f"{s.target_distortion:g}"
                )
        for (x, y), names in labels.items():
            ax.annotate(
                ", ".join(names), (x, y), fontsize=6, textcoords="offset points", xytext=(2, 4)
            )
        ax.axvline(matched, color="black", linewidth=1.2, label=f"matched ({metric} = {matched:g})")
        _finish(ax, f"codec distortion to the noisy images ({metric}, reached)", "")
    axes[0][0].set_title(
        "LCoN-train, fixed noise, varying distortion (labels: target)", fontsize=10
    )
    return _save(fig, out_dir / "fig3_distortion.png")


def plot_samples(rows: list[tuple[str, np.ndarray]], path: Path) -> Path:
    """A grid of sample images: one labelled row per (label, uint8 (n, H, W, C) images)."""
    n_cols = max(len(imgs) for _, imgs in rows)
    fig, axes = _subplots(
        len(rows), n_cols, figsize=(0.9 * n_cols + 1.4, 0.95 * len(rows)), squeeze=False
    )
    for r, (label, imgs) in enumerate(rows):
        for c in range(n_cols):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(imgs):
                img = imgs[c]
                if img.shape[2] == 1:
                    ax.imshow(img[:, :, 0], cmap="gray", vmin=0, vmax=255, interpolation="nearest")
                else:
                    ax.imshow(img, interpolation="nearest")
        axes[r][0].set_ylabel(label, rotation=0, ha="right", va="center", fontsize=8)
    return _save(fig, path)


def write_figures(
    out_dir: Path,
    summary: Sequence[SummaryRow],
    samples: dict[str, Any],
    *,
    config: Any,
    matched: float | None,
) -> dict[str, Path]:
    """Write every figure of the study into ``out_dir``; returns name -> path.

    Panel (d) uses ``config.adv_psnr`` when it is on the grid, else the grid PSNR nearest to the
    Fig. 3 noise level.
    """
    psnrs = sorted({s.psnr for s in summary if s.sweep == "noise"})
    adv_psnr = config.adv_psnr
    if adv_psnr is None or adv_psnr not in psnrs:
        ref = psnr_db(config.sweep_variance)
        adv_psnr = min(psnrs, key=lambda p: abs(p - ref)) if psnrs else None
    paths = plot_fig2(summary, out_dir, adv_psnr=adv_psnr)
    if matched is not None:
        metric = matched_metric(config.noise)
        p3 = plot_fig3(summary, out_dir, matched=matched, metric=metric)
        if p3 is not None:
            paths["fig3_distortion"] = p3
    rows: list[tuple[str, np.ndarray]] = [("clean", samples["clean"])]
    for p, (noisy, lcon) in sorted(samples.get("noise", {}).items()):
        rows += [(f"noisy {p:g} dB", noisy), (f"LCoN {p:g} dB", lcon)]
    paths["samples_noise"] = plot_samples(rows, out_dir / "samples_noise.png")
    if samples.get("distortion"):
        rows = [("clean", samples["clean"]), ("noisy", samples["distortion_noisy"])]
        rows += [(f"LCoN D={t:g}", imgs) for t, imgs in sorted(samples["distortion"].items())]
        paths["samples_distortion"] = plot_samples(rows, out_dir / "samples_distortion.png")
    return paths
