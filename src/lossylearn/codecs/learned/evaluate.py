"""``codec eval``: rate-distortion of the learned codec against JPEG, WebP and AVIF.

Every rate is counted from real bytes: per codec and quality, ``bpp = 8 * (sum of payload bytes +
shared header bytes once) / (images * H * W)``. Learned rows also carry ``bpp_estimated``, the
model's likelihood estimate, so the gap between the two is visible. PSNR is the mean over images
of ``10 log10(255^2 / MSE)`` (per-image MSE floored at 1e-3).

BD-rate (Bjontegaard): log-rate as a function of PSNR, interpolated with monotone piecewise-cubic
(PCHIP) curves through each codec's points, integrated exactly over the PSNR range both curves
cover; ``exp(mean difference) - 1`` in percent, negative when the learned codec needs fewer bits.
This is the ``pchip`` method of the ``bjontegaard`` package (the piecewise-cubic variant of later
VCEG/JVET reporting); ``tests/test_bd_rate.py`` checks the two agree. Bjontegaard's original
VCEG-M33 fits one cubic polynomial per curve (``method="cubic"`` there) and the package's Akima
method interpolates differently: on JPEG/WebP curves of MNIST digits they move BD-rate by 0.1 to
2 percentage points. Before interpolating, dominated points (more bits, no more PSNR) are
dropped; the package refuses a curve that has one (its PSNRs must rise strictly along the points).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from scipy.interpolate import PchipInterpolator

from lossylearn.codecs.base import Codec
from lossylearn.codecs.learned.codec import LearnedCodec
from lossylearn.codecs.metrics import image_distortion
from lossylearn.errors import LossylearnError
from lossylearn.imaging import mean_psnr_db

__all__ = [
    "DEFAULT_BASELINE_QUALITIES",
    "EvalResult",
    "EvalRow",
    "bd_rate",
    "codec_rows",
    "evaluate",
    "learned_rows",
    "write_evaluation",
]

DEFAULT_BASELINE_QUALITIES: tuple[int, ...] = (1, 5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95)
_MIN_OVERLAP_DB = 0.1


@dataclass(frozen=True)
class EvalRow:
    """One codec at one quality on the evaluation images."""

    codec: str
    quality: int
    bpp: float
    psnr: float
    mse: float
    mae: float
    n_images: int
    payload_bytes: int
    shared_header_bytes: int
    lmbda: float | None = None
    bpp_estimated: float | None = None


@dataclass
class EvalResult:
    """Rows for every codec and quality, and the learned codec's BD-rate against each baseline."""

    rows: list[EvalRow]
    bd_rate: dict[str, float | None]
    bd_rate_psnr_range: dict[str, list[float] | None]
    checkpoint: str
    dataset: str
    n_images: int
    image_shape: list[int]
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["rows"] = [asdict(r) for r in self.rows]
        return d


def _pareto(points: Sequence[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """(rates, psnrs) sorted by rate, keeping only points that raise PSNR over all cheaper ones."""
    kept: list[tuple[float, float]] = []
    for r, p in sorted((float(r), float(p)) for r, p in points if r > 0 and math.isfinite(p)):
        if not kept or p > kept[-1][1]:
            if kept and r == kept[-1][0]:
                kept[-1] = (r, p)
            else:
                kept.append((r, p))
    arr = np.asarray(kept, dtype=np.float64).reshape(-1, 2)
    return arr[:, 0], arr[:, 1]


def bd_rate(
    anchor: Sequence[tuple[float, float]], test: Sequence[tuple[float, float]]
) -> tuple[float | None, tuple[float, float] | None]:
    """BD-rate of ``test`` against ``anchor`` in percent, and the PSNR range it averages over.

    Each curve is a list of (bits per pixel, PSNR dB). ``None`` when a curve has fewer than two
    useful points or the curves' PSNR ranges overlap by less than 0.1 dB (the ``bjontegaard``
    package only warns below 75% relative overlap and reports a figure anyway).
    """
    ra, pa = _pareto(anchor)
    rt, pt = _pareto(test)
    if ra.size < 2 or rt.size < 2:
        return None, None
    lo, hi = max(pa[0], pt[0]), min(pa[-1], pt[-1])
    if hi - lo < _MIN_OVERLAP_DB:
        return None, None
    fa = PchipInterpolator(pa, np.log(ra))
    ft = PchipInterpolator(pt, np.log(rt))
    diff = float((ft.integrate(lo, hi) - fa.integrate(lo, hi)) / (hi - lo))  # exact: cubic pieces
    return 100.0 * (math.exp(diff) - 1.0), (float(lo), float(hi))


def _row(
    name: str, quality: int, images: np.ndarray, decoded: np.ndarray, sizes: Sequence[int], header: int,
    **extra: Any,
) -> EvalRow:  # fmt: skip
    n, h, w = images.shape[:3]
    mse = image_distortion(images, decoded, "mse")
    mae = image_distortion(images, decoded, "mae")
    payload = int(sum(sizes))
    return EvalRow(
        codec=name,
        quality=int(quality),
        bpp=8.0 * (payload + header) / (n * h * w),
        psnr=mean_psnr_db(mse),
        mse=float(mse.mean()),
        mae=float(mae.mean()),
        n_images=int(n),
        payload_bytes=payload,
        shared_header_bytes=int(header),
        **extra,
    )


def codec_rows(codec: Codec, images: np.ndarray, qualities: Sequence[int]) -> list[EvalRow]:
    """Rows for a classical codec: every image encoded and decoded at each quality."""
    shape = tuple(int(v) for v in images.shape[1:])
    rows = []
    for q in qualities:
        payloads = [codec.encode(img, q) for img in images]
        decoded = np.stack([codec.decode(p, q, shape) for p in payloads])  # type: ignore[arg-type]
        header = len(codec.shared_header(q, shape))  # type: ignore[arg-type]
        rows.append(_row(codec.name, q, images, decoded, [len(p) for p in payloads], header))
    return rows


def learned_rows(codec: LearnedCodec, images: np.ndarray, *, batch: int = 256) -> list[EvalRow]:
    """Rows for every rung of a learned checkpoint (real bytes, decoded images, estimates)."""
    shape = tuple(int(v) for v in images.shape[1:])
    pixels = images.shape[1] * images.shape[2]
    rows = []
    for q in codec.qualities:
        sizes: list[int] = []
        decoded, est = [], []
        for s in range(0, len(images), batch):
            part = images[s : s + batch]
            payloads = codec.encode_batch(part, q)
            sizes += [len(p) for p in payloads]
            decoded.append(codec.decode_batch(payloads, q, shape))  # type: ignore[arg-type]
            est.append(codec.estimate_bits(part, q))
        rows.append(
            _row(
                codec.name, q, images, np.concatenate(decoded), sizes, 0,
                lmbda=codec.lmbda(q),
                bpp_estimated=float(np.concatenate(est).sum() / (len(images) * pixels)),
            )
        )  # fmt: skip
    return rows


def evaluate(
    codec: LearnedCodec,
    images: np.ndarray,
    *,
    baselines: Sequence[str] = ("jpeg", "webp", "avif"),
    baseline_qualities: Sequence[int] = DEFAULT_BASELINE_QUALITIES,
    dataset: str = "",
) -> EvalResult:
    """Rows for the learned codec and each baseline on the same images, and BD-rates."""
    from lossylearn.codecs import get_codec

    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or len(images) == 0:
        raise LossylearnError(
            f"evaluation needs uint8 images (N, H, W, C), got {images.dtype} {images.shape}"
        )
    rows = learned_rows(codec, images)
    learned_curve = [(r.bpp, r.psnr) for r in rows]
    bd: dict[str, float | None] = {}
    ranges: dict[str, list[float] | None] = {}
    notes: list[str] = []
    for name in baselines:
        base = get_codec(name)
        qs = [q for q in baseline_qualities if q in base.qualities] or list(base.qualities)
        base_rows = codec_rows(base, images, qs)
        rows += base_rows
        value, span = bd_rate([(r.bpp, r.psnr) for r in base_rows], learned_curve)
        bd[name] = value
        ranges[name] = list(span) if span else None
        if value is None:
            notes.append(
                f"no BD-rate against {name}: the PSNR ranges do not overlap (or < 2 points)"
            )
    return EvalResult(
        rows=rows,
        bd_rate=bd,
        bd_rate_psnr_range=ranges,
        checkpoint=str(codec.path),
        dataset=dataset,
        n_images=int(len(images)),
        image_shape=[int(v) for v in images.shape[1:]],
        notes=notes,
    )


def write_evaluation(result: EvalResult, out_dir: str | Path) -> tuple[Path, Path]:
    """Write ``results.json`` and the rate-distortion plot ``rd.png`` into ``out_dir``."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    json_path = out / "results.json"
    json_path.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    fig = Figure(figsize=(6.4, 4.6))  # drawn by Agg: no pyplot, no global backend switch
    FigureCanvasAgg(fig)
    ax = fig.subplots()
    names = list(dict.fromkeys(r.codec for r in result.rows))
    for name in names:
        pts = sorted((r.bpp, r.psnr) for r in result.rows if r.codec == name)
        label = name
        if name != "learned":
            v = result.bd_rate.get(name)
            label += f" (learned BD-rate {v:+.1f}%)" if v is not None else ""
        ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", ms=3, label=label)
    est = sorted((r.bpp_estimated, r.psnr) for r in result.rows if r.bpp_estimated is not None)
    if est:
        ax.plot(
            [p[0] for p in est],
            [p[1] for p in est],
            ls=":",
            color="gray",
            label="learned (estimated bits)",
        )
    ax.set_xlabel("bits per pixel (real bytes)")
    ax.set_ylabel("PSNR (dB)")
    ax.set_title(
        f"{result.dataset or 'images'}: {result.n_images} images {tuple(result.image_shape)}"
    )
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    png_path = out / "rd.png"
    fig.savefig(png_path, dpi=120)
    return json_path, png_path
