"""Pixel-error figures shared by the whole package: PSNR and the error sums behind it.

Images are on a ``0..peak`` scale (255 for uint8 pixels). PSNR is ``10 log10(peak^2 / MSE)`` dB;
a perfect copy (MSE 0) has no finite PSNR and :func:`psnr_db` says so with ``None`` rather than
``inf``, which JSON cannot hold. Mean squared and absolute errors over many chunks are kept as sums
(:func:`squared_error_sum`, :func:`absolute_error_sum`) and divided by the value count once.
"""

from __future__ import annotations

import math

import numpy as np
from numpy.typing import ArrayLike

__all__ = [
    "PEAK",
    "absolute_error_sum",
    "mean_psnr_db",
    "psnr_db",
    "rms_at_psnr",
    "squared_error_sum",
]

PEAK = 255.0
"""The largest value of a uint8 pixel: the peak of every PSNR here unless told otherwise."""


def psnr_db(mse: float, peak: float = PEAK) -> float | None:
    """PSNR in dB of a mean squared error on a ``0..peak`` scale; None for a perfect copy."""
    return None if mse <= 0 else 10.0 * math.log10(peak * peak / mse)


def mean_psnr_db(mse: ArrayLike, peak: float = PEAK, floor: float = 1e-3) -> float:
    """Mean over images of the PSNR of each image's MSE, floored at ``floor`` so a perfect image
    counts as ``psnr_db(floor)`` (about 78 dB on the 0-255 scale) rather than infinity."""
    per_image = np.maximum(np.asarray(mse, dtype=np.float64), floor)
    return float((10.0 * np.log10(peak * peak / per_image)).mean())


def rms_at_psnr(psnr: float, peak: float = PEAK) -> float:
    """The root-mean-square error whose PSNR is ``psnr`` dB: ``peak * 10^(-psnr / 20)``."""
    return peak * 10.0 ** (-psnr / 20.0)


def squared_error_sum(a: np.ndarray, b: np.ndarray) -> float:
    """``sum((a - b)^2)`` in the arrays' own arithmetic (exact for integer arrays)."""
    return float(((a - b) ** 2).sum())


def absolute_error_sum(a: np.ndarray, b: np.ndarray) -> float:
    """``sum(|a - b|)`` in the arrays' own arithmetic (exact for integer arrays)."""
    return float(np.abs(a - b).sum())
