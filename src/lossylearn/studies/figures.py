"""Figures of the LCoN study in the paper's style: Fig. 2 (a)-(d), a PGD panel, Fig. 3, sample grids."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .results import SummaryRow

__all__ = ["SCHEME_STYLE", "write_figures", "plot_fig2", "plot_fig3", "plot_samples"]

#: Colours and names of the paper's Fig. 2 (blue baseline 1, red baseline 2, orange LCoN).
SCHEME_STYLE: dict[str, tuple[str, str, str]] = {
    "clean": ("tab:blue", "Baseline-1 (clean-train)", "s"),
    "noisy": ("tab:red", "Baseline-2 (noisy-train)", "^"),
    "lcon": ("tab:orange", "LCoN-train", "o"),
}
_PANELS = (("clean", "a", "Tested on noise-free examples"), ("noisy", "b", "Tested on noisy examples"),
           ("lcon", "c", "Tested on LCoN examples"))  # fmt: skip


def _plt() -> Any:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series(summary: Sequence[SummaryRow], **match: Any) -> list[SummaryRow]:
    return [s for s in summary if all(getattr(s, k) == v for k, v in match.items())]


def _save(fig: Any, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    _plt().close(fig)
    return path


def plot_fig2(summary: Sequence[SummaryRow], out_dir: Path, *, adv_psnr: float | None) -> dict[str, Path]:
    """Fig. 2 (a)-(c): accuracy vs PSNR per training scheme; (d): accuracy vs FGSM epsilon at
    ``adv_psnr`` (filled markers FGSM, empty markers LCoN-processed FGSM); plus the same for PGD."""
    plt = _plt()
    paths: dict[str, Path] = {}
    for test, letter, title in _PANELS:
        fig, ax = plt.subplots(figsize=(4.6, 3.4))
        for scheme, (colour, name, marker) in SCHEME_STYLE.items():
            pts = sorted(_series(summary, sweep="noise", train=scheme, test=test), key=lambda s: s.psnr)
            if not pts:
                continue
            ax.errorbar([s.psnr for s in pts], [100 * s.mean for s in pts], yerr=[100 * s.std for s in pts],
                        color=colour, marker=marker, label=name, capsize=3)  # fmt: skip
        ax.set_xlabel("PSNR of noisy images (dB)")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"({letter}) {title}", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        paths[f"fig2{letter}_{test}"] = _save(fig, out_dir / f"fig2{letter}_{test}.png")
    for attack, letter in (("fgsm", "d"), ("pgd", "e")):
        fig, ax = plt.subplots(figsize=(4.6, 3.4))
        drawn = False
        for scheme, (colour, name, marker) in SCHEME_STYLE.items():
            for test, filled in ((attack, True), (f"lcon-{attack}", False)):
                pts = sorted(_series(summary, sweep="noise", train=scheme, test=test, psnr=adv_psnr), key=lambda s: s.epsilon)
                if not pts:
                    continue
                drawn = True
                label = name + ("" if filled else " on LCoN-adv")
                ax.errorbar([s.epsilon for s in pts], [100 * s.mean for s in pts], yerr=[100 * s.std for s in pts],
                            color=colour, marker=marker, mfc=colour if filled else "white",
                            linestyle="-" if filled else "--", label=label, capsize=3)  # fmt: skip
        if not drawn:
            plt.close(fig)
            continue
        ax.set_xlabel(f"{attack.upper()} epsilon (pixels in [0, 1])")
        ax.set_ylabel("test accuracy (%)")
        ax.set_title(f"({letter}) Tested on {attack.upper()} examples, PSNR {adv_psnr:g} dB", fontsize=10)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7)
        paths[f"fig2{letter}_{attack}"] = _save(fig, out_dir / f"fig2{letter}_{attack}.png")
    return paths


def plot_fig3(summary: Sequence[SummaryRow], out_dir: Path, *, matched: float, metric: str = "mse") -> Path | None:
    """Fig. 3: LCoN-train accuracy vs the codec distortion reached, one line per test set, with a
    vertical line at the matched distortion."""
    plt = _plt()
    rows = _series(summary, sweep="distortion", train="lcon")
    if not rows:
        return None
    fig, ax = plt.subplots(figsize=(5.2, 3.6))
    tests = [("clean", "noise-free", "tab:blue"), ("noisy", "noisy", "tab:red"), ("lcon", "LCoN", "tab:orange")]
    eps = sorted({s.epsilon for s in rows if s.test == "fgsm"})
    if eps:
        mid = eps[len(eps) // 2]
        tests.append(("fgsm", f"FGSM eps {mid:g}", "tab:purple"))
    for test, name, colour in tests:
        pts = [s for s in rows if s.test == test and (test != "fgsm" or s.epsilon == mid)]
        pts.sort(key=lambda s: s.target_distortion)
        ax.errorbar([s.achieved_distortion for s in pts], [100 * s.mean for s in pts], yerr=[100 * s.std for s in pts],
                    marker="o", color=colour, label=f"tested on {name}", capsize=3)  # fmt: skip
    ax.axvline(matched, color="black", linewidth=1.2, label=f"matched ({metric} = {matched:g})")
    ax.set_xscale("log")
    ax.set_xlabel(f"codec distortion to the noisy images ({metric}, reached)")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title("LCoN-train, fixed noise, varying distortion", fontsize=10)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=7)
    return _save(fig, out_dir / "fig3_distortion.png")


def plot_samples(rows: list[tuple[str, np.ndarray]], path: Path) -> Path:
    """A grid of sample images: one labelled row per (label, uint8 (n, H, W, C) images)."""
    plt = _plt()
    n_cols = max(len(imgs) for _, imgs in rows)
    fig, axes = plt.subplots(len(rows), n_cols, figsize=(0.9 * n_cols + 1.4, 0.95 * len(rows)), squeeze=False)
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
    """Write every figure of the study into ``out_dir``; returns name -> path."""
    psnrs = sorted({s.psnr for s in summary if s.sweep == "noise"})
    adv_psnr = config.adv_psnr
    if adv_psnr is None or adv_psnr not in psnrs:
        ref = 10 * np.log10(255.0**2 / config.sweep_variance)
        adv_psnr = min(psnrs, key=lambda p: abs(p - ref)) if psnrs else None
    paths = plot_fig2(summary, out_dir, adv_psnr=adv_psnr)
    if matched is not None:
        metric = "mse" if config.noise == "gaussian" else "mae"
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
