"""The distortion the noise really adds after clipping, estimated from the noisy images alone.

Clipping to [0, 255] shrinks the noise on dark and bright pixels: on MNIST's black background every
negative draw becomes 0, so Laplace noise of scale b leaves a mean absolute error near b / 2, and a
codec matched to MAE = b may store a near-constant image. The matched distortion that the LCoN
theorem asks for is the distortion between clean and noisy pixels, E d(X, Y); this module estimates
it without the clean data:

1. the channel ``K[x, y] = P(Y = y | X = x)`` of "add integer noise, then clip (or wrap)" is exact,
   from the noise law (:mod:`.laws`);
2. the law of the clean pixel values is recovered from the histogram of the noisy ones by
   expectation-maximisation deconvolution (Richardson-Lucy: the maximum-likelihood mixture);
3. ``E d(X, Y) = sum_x p(x) sum_y K[x, y] d(x, y)``.

It reads only noisy pixels, so it is post-processing of the released data and costs no privacy.
Measured on 1,000 MNIST digits (clip): within 0.2-1.7% of the true clean-to-noisy MSE / MAE for
Gaussian and Laplace noise at 8.1-22.1 dB (tests/test_privacy_effective.py pins 3%).
Hand-written: no library here deconvolves a histogram through a clipped noise channel.
"""

from __future__ import annotations

import math

import numpy as np

from lossylearn.errors import DataError
from lossylearn.privacy import laws
from lossylearn.privacy.mechanisms import NoiseSpec

__all__ = ["clean_pixel_law", "effective_distortion", "noise_channel"]

_LEVELS = 256
_TAIL_SCALES = 40.0  # the Laplace/Gaussian mass beyond 40 scales is below e^-40


def noise_channel(spec: NoiseSpec) -> np.ndarray:
    """``K[x, y] = P(noisy pixel = y | clean pixel = x)``, a (256, 256) row-stochastic matrix."""
    x = np.arange(_LEVELS)
    if spec.range_handling == "wrap":
        diff = (x[None, :] - x[:, None]) % _LEVELS
        k = np.exp(laws.log_pmf_wrapped(spec.law, diff, _LEVELS))
        return k / k.sum(axis=1, keepdims=True)
    reach = int(math.ceil(_TAIL_SCALES * spec.scale)) + _LEVELS
    a = np.arange(-reach, reach + 1)
    pmf = np.exp(laws.log_pmf(spec.law, a))
    cdf = np.concatenate(([0.0], np.cumsum(pmf)))  # cdf[i] = P(N < a[0] + i)
    total = cdf[-1]

    def below(v: np.ndarray) -> np.ndarray:  # P(N <= v)
        return cdf[np.clip(v - a[0] + 1, 0, len(a))]

    k = np.empty((_LEVELS, _LEVELS))
    k[:, 1:-1] = pmf[(x[None, 1:-1] - x[:, None]) - a[0]]
    k[:, 0] = below(-x)
    k[:, -1] = total - below(_LEVELS - 2 - x)
    return k / k.sum(axis=1, keepdims=True)


def clean_pixel_law(
    noisy: np.ndarray, spec: NoiseSpec, *, iterations: int = 20000, tol: float = 1e-12
) -> np.ndarray:
    """Maximum-likelihood law of the clean pixel values (length 256) given the noisy pixels."""
    return _deconvolve(noisy, noise_channel(spec), iterations=iterations, tol=tol)


def _deconvolve(noisy: np.ndarray, k: np.ndarray, *, iterations: int, tol: float) -> np.ndarray:
    if not isinstance(noisy, np.ndarray) or noisy.dtype != np.uint8 or noisy.size == 0:
        raise DataError("the effective noise is estimated from a non-empty uint8 array of pixels")
    counts = np.bincount(noisy.reshape(-1), minlength=_LEVELS).astype(np.float64)
    h = counts / counts.sum()
    p = np.full(_LEVELS, 1.0 / _LEVELS)
    for _ in range(iterations):
        q = p @ k
        ratio = np.divide(h, q, out=np.zeros_like(h), where=q > 0)
        new = p * (k @ ratio)
        new /= new.sum()
        if np.abs(new - p).sum() < tol:
            return new
        p = new
    return p


def effective_distortion(noisy: np.ndarray, spec: NoiseSpec, metric: str | None = None) -> float:
    """Estimated mean ``metric`` ("mse" or "mae"; default: the noise's matched one) between the
    clean and the noisy pixels, on the 0-255 scale, from the noisy uint8 images only."""
    if spec.range_handling == "wrap":
        raise DataError(
            "under --range-handling wrap the noise is exact mod 256; match the nominal distortion"
        )
    metric = metric or spec.matched_target()[0]
    if metric not in ("mse", "mae"):
        raise DataError(f"unknown distortion {metric!r}; known: mse, mae")
    k = noise_channel(spec)
    p = _deconvolve(noisy, k, iterations=20000, tol=1e-12)
    x = np.arange(_LEVELS, dtype=np.float64)
    gap = x[None, :] - x[:, None]
    d = gap**2 if metric == "mse" else np.abs(gap)
    return float(p @ (k * d).sum(axis=1))
