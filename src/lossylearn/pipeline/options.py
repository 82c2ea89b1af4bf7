"""Checks of a run's options and inputs, made before anything is read from or written to disk."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np

from lossylearn.errors import LossylearnError

MATCH_MODES = ("dataset", "image")
MATCH_NOISE = ("nominal", "effective")


def validate_images(images: np.ndarray, labels: np.ndarray) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        raise LossylearnError(
            f"images must be a uint8 array (N, H, W, C); got {getattr(images, 'dtype', type(images))} "
            f"with shape {getattr(images, 'shape', '?')}"
        )
    if images.shape[-1] not in (1, 3):
        raise LossylearnError(f"images must have 1 or 3 channels, got {images.shape[-1]}")
    if len(labels) != len(images):
        raise LossylearnError(f"{len(images)} images but {len(labels)} labels")
    if len(images) == 0:
        raise LossylearnError("no images to compress")


MIN_CHANGED = 0.5
"""Noise that changes fewer than this share of pixels is refused without ``allow_weak_noise``."""


def check_options(
    match: str,
    workers: int,
    chunk_size: int,
    match_sample: int,
    tolerance: float,
    target_distortion: float | None,
    match_noise: str,
    seed: int | None,
    limit: int | None,
) -> None:
    """Refuse impossible run options before anything is read or written."""
    if match not in MATCH_MODES:
        raise LossylearnError(f"unknown --match {match!r}; choose one of {', '.join(MATCH_MODES)}")
    if match_noise not in MATCH_NOISE:
        raise LossylearnError(
            f"unknown --match-noise {match_noise!r}; choose one of {', '.join(MATCH_NOISE)}"
        )
    for name, value in (("--workers", workers), ("--chunk-size", chunk_size),
                        ("--match-sample", match_sample)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise LossylearnError(f"{name} must be a whole number >= 1, got {value!r}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise LossylearnError(f"--limit must be a whole number >= 1, got {limit!r}")
    if not isinstance(tolerance, int | float) or not math.isfinite(tolerance) or tolerance <= 0:
        raise LossylearnError(f"--tolerance must be a positive finite number, got {tolerance}")
    if target_distortion is not None and (
        not math.isfinite(target_distortion) or target_distortion < 0
    ):
        raise LossylearnError(
            f"--target-distortion must be a finite number >= 0, got {target_distortion}"
        )
    if seed is not None and (
        isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63
    ):
        raise LossylearnError(f"--seed must be a whole number from 0 to 2^63 - 1, got {seed!r}")


def resolved_options(codec: str, options: dict[str, Any] | None) -> dict[str, Any]:
    """Codec options as recorded: a checkpoint path made absolute (a store opened from another
    folder must still find it; the codec's config also pins its SHA-256)."""
    opts = dict(options or {})
    ck = opts.get("checkpoint")
    if isinstance(ck, str | Path):
        opts["checkpoint"] = str(Path(ck).expanduser().resolve())
    return opts
