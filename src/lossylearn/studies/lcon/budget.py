"""Storage budget of the LCoN study: every training scheme gets the examples that fit in the same bits.

Each scheme's training set is a sequence of coded images (per-image payload bytes) plus bytes stored
once for the whole set (shared headers such as JPEG tables, or the PNG signature and header chunks).
With calibration on, the common budget is the smallest full-set total among the schemes (normally
the LCoN set), and each scheme keeps the longest prefix of its (randomly ordered) examples whose
bytes, shared header included, fit in that budget. With calibration off every scheme keeps all of
its examples (equal counts).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from lossylearn.errors import LossylearnError

__all__ = [
    "CodedSizes",
    "SchemeBudget",
    "calibrate_storage",
    "calibration_record",
    "largest_prefix",
    "png_sizes",
]


@dataclass(frozen=True)
class CodedSizes:
    """Real coded sizes of one scheme's candidate training examples, in their training order."""

    payload_bytes: np.ndarray
    shared_header_bytes: int

    @property
    def total_bytes(self) -> int:
        """All examples plus the shared header."""
        return int(self.payload_bytes.sum()) + int(self.shared_header_bytes)


@dataclass(frozen=True)
class SchemeBudget:
    """How many examples one scheme trains on and the bits they take."""

    scheme: str
    n_available: int
    n_train: int
    train_bits: int
    budget_bits: int

    @property
    def relative_gap(self) -> float:
        """(budget - used) / budget: how far below the common budget this scheme stays."""
        return (self.budget_bits - self.train_bits) / self.budget_bits if self.budget_bits else 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, with the relative gap."""
        d = asdict(self)
        d["relative_gap"] = self.relative_gap
        return d


def largest_prefix(payload_bytes: np.ndarray, shared_header_bytes: int, budget_bytes: int) -> int:
    """Largest n with shared_header_bytes + sum(payload_bytes[:n]) <= budget_bytes."""
    cum = np.cumsum(np.asarray(payload_bytes, dtype=np.int64)) + int(shared_header_bytes)
    return int(np.searchsorted(cum, budget_bytes, side="right"))


def calibrate_storage(
    sizes: dict[str, CodedSizes], *, enabled: bool = True
) -> dict[str, SchemeBudget]:
    """Per-scheme example counts under one common storage budget (see the module docstring).

    Raises :class:`LossylearnError` if a scheme could not keep a single example.
    """
    if not sizes:
        raise LossylearnError("storage calibration needs at least one training scheme")
    if not enabled:
        return {
            name: SchemeBudget(
                name,
                len(s.payload_bytes),
                len(s.payload_bytes),
                8 * s.total_bytes,
                8 * s.total_bytes,
            )
            for name, s in sizes.items()
        }
    budget = min(s.total_bytes for s in sizes.values())
    out: dict[str, SchemeBudget] = {}
    for name, s in sizes.items():
        n = largest_prefix(s.payload_bytes, s.shared_header_bytes, budget)
        if n < 1:
            raise LossylearnError(
                f"storage calibration left the {name} scheme without a single example "
                f"(budget {budget} bytes); use more training images or turn calibration off"
            )
        used = int(s.payload_bytes[:n].sum()) + int(s.shared_header_bytes)
        out[name] = SchemeBudget(name, len(s.payload_bytes), n, 8 * used, 8 * budget)
    return out


def png_sizes(images: np.ndarray) -> CodedSizes:
    """Lossless PNG bytes per image (clean and noisy schemes), the per-set PNG header counted once."""
    from lossylearn.codecs import get_codec

    png = get_codec("png")
    shape = tuple(int(v) for v in images.shape[1:])
    quality = int(tuple(getattr(png, "qualities", (0,)))[0])  # lossless: its only quality level
    sizes = np.fromiter(
        (len(png.encode(img, quality)) for img in images), dtype=np.int64, count=len(images)
    )
    return CodedSizes(sizes, len(png.shared_header(quality, shape)))


def calibration_record(
    psnr: float,
    budgets: dict[str, SchemeBudget],
    *,
    enabled: bool,
    pixels: int,
    clean: CodedSizes,
    noisy: CodedSizes,
    lcon_bits_per_pixel: float,
) -> dict[str, Any]:
    """The results.json entry of one noise level: PNG rates of the baselines' full sets (over
    ``pixels`` pixel positions), the LCoN store's rate, and each scheme's budget."""
    return {
        "psnr": float(psnr),
        "enabled": enabled,
        "png_bits_per_pixel": {
            "clean": 8 * clean.total_bytes / pixels,
            "noisy": 8 * noisy.total_bytes / pixels,
        },
        "lcon_bits_per_pixel": float(lcon_bits_per_pixel),
        "schemes": {k: v.to_dict() for k, v in budgets.items()},
    }
