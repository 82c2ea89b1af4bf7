"""Re-identification: for each stored image, rank the clean pool and see where its source lands.

Every attack is a *score* between a (decoded) stored image and each clean pool image, higher
meaning "more likely the source". :func:`rank_sources` streams the queries in batches and scores
them against the whole pool in one matrix product per batch, so memory holds the pool's feature
matrix and one ``batch x pool`` block of scores, never a ``queries x pool`` matrix. Ties count as
a random draw among the tied candidates (the expected top-k hit, never a lucky tie-break).

The attacks (:func:`pixel_features` and friends turn images into the two sides of the product):

* ``pixel-nn``: nearest neighbour in pixel space (L2), the stored image as it is;
* ``denoised-nn``: the stored image blurred by a Gaussian whose width the attacker tunes on
  simulated noise of the strength the manifest states (its best linear denoiser of that family),
  then nearest neighbour;
* ``likelihood`` (Gaussian noise, clipping, lossless codec only): the exact log-likelihood of the
  stored noisy image given each candidate under the stated channel (Gaussian noise, rounding,
  clipping at 0 and 255 as censoring): the Bayes-optimal linkage under a uniform prior on the pool;
* ``feature-nn``: cosine similarity of a classifier's penultimate layer (:mod:`.features`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F

from lossylearn.records import Record

__all__ = [
    "AttackResult",
    "Ranking",
    "TOPK",
    "blur",
    "likelihood_sides",
    "pixel_sides",
    "rank_sources",
    "tune_blur",
]

TOPK: tuple[int, ...] = (1, 2, 5, 10, 20, 50, 100, 200, 500, 1000)
"""The k of the top-k curve kept in audit.json (and drawn in the rank figure)."""

QueryBatches = Iterator[tuple[np.ndarray, np.ndarray]]
"""Batches of (stored images uint8 (b, H, W, C), pool row of each image's true source)."""


@dataclass
class Ranking:
    """Where each query's true source ranked: ``better`` candidates scored strictly higher,
    ``tied`` ones the same; ``best`` is the attacker's first choice (pool row) per query."""

    better: np.ndarray
    tied: np.ndarray
    best: np.ndarray

    def topk(self, k: int) -> float:
        """Expected fraction of queries whose source is among the attacker's first ``k`` (ties
        broken uniformly at random)."""
        hit = np.clip((k - self.better) / (self.tied + 1.0), 0.0, 1.0)
        return float(hit.mean()) if hit.size else 0.0


@dataclass(frozen=True)
class AttackResult(Record):
    """One attack's figures (``audit.json``'s ``reidentification.attacks`` entries)."""

    name: str
    attack: str
    n_queries: int
    pool_size: int
    top1: float
    top5: float
    chance_top1: float
    median_rank: float
    topk: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0


def rank_sources(
    queries: QueryBatches,
    pool_side: torch.Tensor,
    query_side: Callable[[np.ndarray], torch.Tensor],
    *,
    pool_bias: torch.Tensor | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> Ranking:
    """Score every query batch against the pool: ``score = query_side(q) @ pool_side.T + bias``.

    ``pool_side`` is (P, D) float32, ``pool_bias`` (P,) or None; ``query_side`` maps a uint8 batch
    to (b, D). Returns the :class:`Ranking` of the true sources."""
    better, tied, best = [], [], []
    for images, truth in queries:
        q = query_side(images)
        s = q @ pool_side.T
        if pool_bias is not None:
            s += pool_bias
        t = torch.from_numpy(np.asarray(truth, dtype=np.int64))
        true = s.gather(1, t[:, None])
        better.append((s > true).sum(1).numpy())
        tied.append(((s == true).sum(1) - 1).numpy())
        best.append(s.argmax(1).numpy())
        if on_batch is not None:
            on_batch(len(images))
    cat = lambda xs: np.concatenate(xs) if xs else np.zeros(0, np.int64)  # noqa: E731
    return Ranking(cat(better), cat(tied), cat(best))


def _flat(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float32 (N, H*W*C) on the 0..1 scale."""
    return torch.from_numpy(np.ascontiguousarray(images)).reshape(len(images), -1).float() / 255.0


def pixel_sides(
    pool: np.ndarray,
) -> tuple[torch.Tensor, torch.Tensor, Callable[[np.ndarray], torch.Tensor]]:
    """L2 nearest neighbour as a product: -|q - x|^2 = 2 q.x - |x|^2 - |q|^2 (the last term is the
    same for every candidate, so it is dropped). Returns (pool side, pool bias, query side)."""
    x = _flat(pool)
    return x, -(x * x).sum(1), lambda q: 2.0 * _flat(q)


def blur(images: np.ndarray, width: float) -> np.ndarray:
    """Gaussian blur of standard deviation ``width`` pixels (edges replicated); float32 0..255
    (N, H, W, C). Width 0 returns the images as floats."""
    x = torch.from_numpy(np.ascontiguousarray(images)).float().permute(0, 3, 1, 2)
    if width > 0:
        r = max(1, int(np.ceil(3 * width)))
        t = torch.arange(-r, r + 1, dtype=torch.float32)
        k = torch.exp(-0.5 * (t / width) ** 2)
        k = k / k.sum()
        c = x.shape[1]
        x = F.pad(x, (r, r, r, r), mode="replicate")
        x = F.conv2d(x, k.view(1, 1, 1, -1).repeat(c, 1, 1, 1), groups=c)
        x = F.conv2d(x, k.view(1, 1, -1, 1).repeat(c, 1, 1, 1), groups=c)
    return x.permute(0, 2, 3, 1).contiguous().numpy()


BLUR_WIDTHS: tuple[float, ...] = (0.0, 0.35, 0.5, 0.7, 1.0, 1.4, 2.0, 2.8, 4.0)


def tune_blur(clean: np.ndarray, noisy: np.ndarray) -> tuple[float, dict[str, float]]:
    """The blur width (of :data:`BLUR_WIDTHS`) whose output is closest (MSE) to ``clean`` given
    ``noisy``: the attacker's own simulation of the stated noise on pool images it holds."""
    ref = clean.astype(np.float32)
    mse = {f"{w:g}": float(np.mean((blur(noisy, w) - ref) ** 2)) for w in BLUR_WIDTHS}
    best = min(BLUR_WIDTHS, key=lambda w: mse[f"{w:g}"])
    return best, mse


def likelihood_sides(
    pool: np.ndarray, sigma: float
) -> tuple[torch.Tensor, None, Callable[[np.ndarray], torch.Tensor]]:
    """Log-likelihood of a stored noisy image ``y`` given candidate ``x`` under Gaussian noise of
    ``sigma`` (0..255 scale), rounding and clipping, as one product.

    Per pixel: interior values (0 < y < 255) contribute -(y - x)^2 / (2 sigma^2) (the density;
    exact up to a constant for sigma >> 1, a close approximation of the rounded channel below);
    y = 0 contributes log Phi((0.5 - x) / sigma) and y = 255 log Phi((x - 254.5) / sigma), the
    probabilities that rounding and clipping send the noisy value there. Dropping the terms that do
    not depend on x, the sum is [M y / s2, -M / (2 s2), L, H] . [x, x^2, lo(x), hi(x)] with masks
    M, L, H of the query's interior, 0 and 255 pixels."""
    from scipy.special import log_ndtr

    x = pool.reshape(len(pool), -1).astype(np.float64)
    lo = log_ndtr((0.5 - x) / sigma)
    hi = log_ndtr((x - 254.5) / sigma)
    side = torch.from_numpy(
        np.concatenate([x / 255.0, (x / 255.0) ** 2, lo, hi], 1).astype(np.float32)
    )
    s2 = (sigma / 255.0) ** 2

    def query(q: np.ndarray) -> torch.Tensor:
        y = q.reshape(len(q), -1).astype(np.float32)
        interior = ((y > 0) & (y < 255)).astype(np.float32)
        parts = [interior * (y / 255.0) / s2, -interior / (2 * s2), (y == 0), (y == 255)]
        return torch.from_numpy(np.concatenate([p.astype(np.float32) for p in parts], 1))

    return side, None, query
