"""Per-image distortion between two batches of images on the 0-255 pixel scale."""

from __future__ import annotations

import numpy as np

from lossylearn.errors import LossylearnError

__all__ = ["DISTORTION_METRICS", "check_metric", "image_distortion", "metric_label"]

DISTORTION_METRICS: tuple[str, ...] = ("mse", "mae")
"""Mean squared error and mean absolute error per image, pixel values on the 0-255 scale."""

_CHUNK = 2048  # images per step: bounds the temporary difference array


def check_metric(metric: str) -> str:
    """``metric`` if it is a known distortion metric, else LossylearnError listing them."""
    if metric not in DISTORTION_METRICS:
        raise LossylearnError(
            f"unknown distortion metric {metric!r}; choose one of {', '.join(DISTORTION_METRICS)}"
        )
    return metric


def metric_label(metric: str) -> str:
    """The metric's name for messages: ``"MSE"`` or ``"MAE"``."""
    return check_metric(metric).upper()


def image_distortion(reference: np.ndarray, other: np.ndarray, metric: str = "mse") -> np.ndarray:
    """Per-image MSE or MAE (float64, shape ``(N,)``) between two ``(N, ...)`` image batches.

    Pixel values are taken as they are (0-255 for uint8 images). Integer inputs are compared exactly
    in integer arithmetic; floating inputs in float64.
    """
    check_metric(metric)
    ref, oth = np.asarray(reference), np.asarray(other)
    if ref.shape != oth.shape:
        raise LossylearnError(f"cannot compare image batches of shapes {ref.shape} and {oth.shape}")
    if ref.ndim < 2 or ref.shape[0] == 0 or ref[0].size == 0:
        raise LossylearnError(
            f"image_distortion needs non-empty (N, H, W, C) batches, got shape {ref.shape}"
        )
    n = ref.shape[0]
    pixels = ref[0].size
    exact = np.issubdtype(ref.dtype, np.integer) and np.issubdtype(oth.dtype, np.integer)
    work = np.int64 if exact else np.float64
    out = np.empty(n, dtype=np.float64)
    for start in range(0, n, _CHUNK):
        a = ref[start : start + _CHUNK].reshape(-1, pixels).astype(work)
        a -= oth[start : start + _CHUNK].reshape(-1, pixels)
        if metric == "mse":
            total = np.einsum("ij,ij->i", a, a)
        else:
            total = np.abs(a, out=a).sum(axis=1)
        out[start : start + _CHUNK] = total / pixels
    return out
