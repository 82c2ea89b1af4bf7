"""Find the codec quality whose distortion matches a target (LCoN: the noise's own distortion).

Distortion falls as quality rises, but not strictly (JPEG's quality scale has flat steps and small
reversals), so the search bisects on the codec's quality list, then also tries the neighbours of
the bracket, and keeps the evaluated quality whose distortion is closest to the target; a tie goes
to the quality that spends fewer bytes. A target beyond what the lowest (highest) quality gives gets
that extreme quality. ``reached`` means ``|distortion - target| <= tolerance * target``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from lossylearn.codecs.base import Codec
from lossylearn.codecs.metrics import check_metric, image_distortion, metric_label
from lossylearn.errors import LossylearnError

__all__ = ["MatchResult", "match_quality", "match_quality_per_image"]


@dataclass(frozen=True)
class MatchResult:
    """The quality chosen for a batch and how well it matches the target distortion."""

    quality: int
    distortion: float
    """Mean distortion over the batch at ``quality``."""
    target: float
    metric: str
    reached: bool
    """``|distortion - target| <= tolerance * target``."""
    tolerance: float
    searched: tuple[tuple[int, float], ...]
    """(quality, mean distortion) pairs evaluated, by ascending quality."""
    message: str
    """One sentence saying what was chosen and, if the target was missed, why."""


def _check_inputs(images: np.ndarray, target: float, metric: str, tolerance: float) -> np.ndarray:
    check_metric(metric)
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[0] == 0:
        raise LossylearnError(
            f"matching needs a non-empty uint8 batch (N, H, W, C), got {images.dtype} {images.shape}"
        )
    if not np.isfinite(target) or target < 0:
        raise LossylearnError(f"the target distortion must be a finite number >= 0, got {target}")
    if not np.isfinite(tolerance) or tolerance < 0:
        raise LossylearnError(f"the tolerance must be a finite number >= 0, got {tolerance}")
    return images


def _round_trip(
    codec: Codec, images: np.ndarray, quality: int, metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-image distortion and payload bytes of ``images`` through ``codec`` at ``quality``."""
    shape = tuple(int(v) for v in images.shape[1:])
    decoded = np.empty_like(images)
    sizes = np.empty(len(images), dtype=np.int64)
    for i, image in enumerate(images):
        payload = codec.encode(image, quality)
        sizes[i] = len(payload)
        decoded[i] = codec.decode(payload, quality, shape)  # type: ignore[arg-type]
    return image_distortion(images, decoded, metric), sizes


def _closest(
    evaluate: Callable[[int], tuple[float, float]], n: int, target: float
) -> tuple[int, dict[int, tuple[float, float]], str]:
    """Index into an ascending quality list whose distortion is closest to ``target``.

    ``evaluate(i)`` gives (distortion, bytes) at the i-th quality. Returns the chosen index, every
    evaluation made, and where the target lies: ``"above"`` the lowest quality's distortion (the
    lowest quality is chosen), ``"below"`` the highest quality's (the highest is chosen), or
    ``"inside"`` the codec's range (the closest evaluated quality, ties to fewer bytes).
    """
    seen: dict[int, tuple[float, float]] = {}

    def dist(i: int) -> float:
        if i not in seen:
            seen[i] = evaluate(i)
        return seen[i][0]

    lo, hi = 0, n - 1
    if dist(lo) <= target:  # even the lowest quality is no more distorted than the target
        return lo, seen, "above"
    if dist(hi) >= target:  # even the highest quality is at least as distorted as the target
        return hi, seen, "below"
    while hi - lo > 1:  # dist(lo) > target > dist(hi): bisect down to adjacent qualities
        mid = (lo + hi) // 2
        if dist(mid) > target:
            lo = mid
        else:
            hi = mid
    for i in (lo - 1, hi + 1):  # distortion is not strictly monotone: look one step further out
        if 0 <= i < n:
            dist(i)
    best = min(seen, key=lambda i: (abs(seen[i][0] - target), seen[i][1], i))
    return best, seen, "inside"


def _gap(part: float, target: float, word: str) -> str:
    """`` (37% short)``-style relative gap, or nothing when the target is 0."""
    return f" ({part / target:.0%} {word})" if target > 0 else ""


def _message(
    codec: str,
    metric: str,
    target: float,
    quality: int,
    distortion: float,
    reached: bool,
    tolerance: float,
    where: str,
) -> str:
    """The sentence of a MatchResult (``where`` as returned by :func:`_closest`)."""
    m = metric_label(metric)
    if reached:
        return (
            f"{codec} quality {quality} gives {m} {distortion:.4g}, "
            f"within {tolerance:.0%} of the target {target:.4g}"
        )
    if where == "above":
        return (
            f"{codec} cannot reach {m} {target:.4g} on these images: its lowest quality gives {m} "
            f"{distortion:.4g}{_gap(target - distortion, target, 'short')}; storing at quality {quality}"
        )
    if where == "below":
        return (
            f"{codec} cannot get down to {m} {target:.4g} on these images: its highest quality gives "
            f"{m} {distortion:.4g}{_gap(distortion - target, target, 'above')}; "
            f"storing at quality {quality}"
        )
    return (
        f"{codec} has no quality within {tolerance:.0%} of {m} {target:.4g} on these images: the "
        f"closest is quality {quality} with {m} {distortion:.4g}"
        f"{_gap(abs(distortion - target), target, 'off')}"
    )


def _lossless_message(codec: str, metric: str, target: float, reached: bool) -> str:
    m = metric_label(metric)
    if reached:
        return f"{codec} is lossless: it stores every image exactly ({m} 0), matching the target {target:.4g}"
    return (
        f"{codec} is lossless: it stores every image exactly ({m} 0), so it cannot add distortion "
        f"to reach {m} {target:.4g}; storing losslessly"
    )


def match_quality(
    codec: Codec, images: np.ndarray, target: float, metric: str = "mse", *, tolerance: float = 0.10
) -> MatchResult:
    """One quality for the whole batch: the one whose mean distortion is closest to ``target``.

    ``images`` is a uint8 batch ``(N, H, W, C)``; the distortion of an image is measured between it
    and its decoded payload. A target beyond the codec's range gets the extreme quality (lowest or
    highest), ``reached`` only if that is within tolerance, and a ``message`` saying how far off it
    is. Lossless codecs report distortion 0 without coding anything.
    """
    images = _check_inputs(images, target, metric, tolerance)
    target, tolerance = float(target), float(tolerance)
    qualities = tuple(codec.qualities)
    if codec.lossless:
        reached = target <= tolerance * target
        return MatchResult(
            quality=qualities[0],
            distortion=0.0,
            target=target,
            metric=metric,
            reached=reached,
            tolerance=tolerance,
            searched=((qualities[0], 0.0),),
            message=_lossless_message(codec.name, metric, target, reached),
        )

    def evaluate(i: int) -> tuple[float, float]:
        d, sizes = _round_trip(codec, images, qualities[i], metric)
        return float(d.mean()), float(sizes.mean())

    best, seen, where = _closest(evaluate, len(qualities), target)
    distortion = seen[best][0]
    reached = abs(distortion - target) <= tolerance * target
    message = _message(
        codec.name, metric, target, qualities[best], distortion, reached, tolerance, where
    )
    return MatchResult(
        quality=qualities[best],
        distortion=distortion,
        target=target,
        metric=metric,
        reached=reached,
        tolerance=tolerance,
        searched=tuple((qualities[i], seen[i][0]) for i in sorted(seen)),
        message=message,
    )


def match_quality_per_image(
    codec: Codec, images: np.ndarray, target: float, metric: str = "mse", *, tolerance: float = 0.10
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A quality per image, each searched like :func:`match_quality` on that image alone.

    Returns ``(qualities int64, distortions float64, reached bool)``, each of shape ``(N,)``.
    """
    images = _check_inputs(images, target, metric, tolerance)
    target, tolerance = float(target), float(tolerance)
    qualities = tuple(codec.qualities)
    n = len(images)
    if codec.lossless:
        return (
            np.full(n, qualities[0], dtype=np.int64),
            np.zeros(n),
            np.full(n, target <= tolerance * target, dtype=bool),
        )
    chosen = np.empty(n, dtype=np.int64)
    distortions = np.empty(n, dtype=np.float64)
    for k in range(n):
        one = images[k : k + 1]

        def evaluate(i: int, one: np.ndarray = one) -> tuple[float, float]:
            d, sizes = _round_trip(codec, one, qualities[i], metric)
            return float(d[0]), float(sizes[0])

        best, seen, _ = _closest(evaluate, len(qualities), target)
        chosen[k] = qualities[best]
        distortions[k] = seen[best][0]
    reached = np.abs(distortions - target) <= tolerance * target
    return chosen, distortions, reached
