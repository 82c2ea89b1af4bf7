"""Integer probability tables: what the entropy coder actually uses.

A learned entropy model (the bottleneck's per-channel densities, the Gaussian conditional's scale
table) is turned into integer tables ONCE, after training, by :func:`quantize_pmf`. The tables are
saved with the checkpoint and never recomputed when a checkpoint is loaded, so the decoder's entropy
parameters do not depend on floating-point behaviour of the machine that decodes.

Each table ``t`` covers the integer values ``offsets[t] .. offsets[t] + lengths[t] - 1``; symbol
``v - offsets[t]`` stands for value ``v`` and symbol ``lengths[t]`` is the escape symbol for values
outside the range (their excess is then sent with uniform "bypass" models, see ``coding.py``).
``freqs[t, :lengths[t] + 1]`` are positive integers that sum to ``2**precision``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossylearn.errors import CodecError

__all__ = ["CategoricalTables", "PRECISION", "quantize_pmf", "stack_tables"]

PRECISION = 16
"""Integer probabilities of every table sum to 2**PRECISION."""


def quantize_pmf(pmf: np.ndarray, tail_mass: float, precision: int = PRECISION) -> np.ndarray:
    """Integer frequencies for ``pmf`` followed by one escape entry carrying ``tail_mass``.

    Every entry (escape included) gets at least 1, the total is exactly ``2**precision``, and the
    result is a deterministic function of the float64 inputs.
    """
    probs = np.concatenate([np.asarray(pmf, dtype=np.float64), [float(tail_mass)]])
    if probs.ndim != 1 or probs.size < 2 or not np.all(np.isfinite(probs)) or np.any(probs < 0):
        raise ValueError("pmf must be a non-empty 1-D array of finite non-negative numbers")
    total = 1 << precision
    if probs.size > total // 2:
        raise ValueError(f"a table of {probs.size} entries does not fit {precision}-bit precision")
    probs = probs / probs.sum()
    freqs = np.maximum(1, np.rint(probs * total)).astype(np.int64)
    excess = int(freqs.sum()) - total
    # Move the rounding excess onto the largest entries (stable order: ties go to the lower index).
    order = np.argsort(-freqs, kind="stable")
    i = 0
    while excess != 0:
        j = order[i % order.size]
        if excess > 0:
            step = min(excess, int(freqs[j]) - 1)
            freqs[j] -= step
            excess -= step
        else:
            freqs[j] -= excess
            excess = 0
        i += 1
    return freqs


@dataclass(frozen=True)
class CategoricalTables:
    """A stack of integer tables (see the module docstring)."""

    freqs: np.ndarray  # (T, max_len + 1) int64, zero beyond each table's escape entry
    offsets: np.ndarray  # (T,) int64: the value of symbol 0
    lengths: np.ndarray  # (T,) int64: number of in-range values
    precision: int = PRECISION

    def __post_init__(self) -> None:
        t = self.freqs.shape[0] if self.freqs.ndim == 2 else -1
        if t < 1 or self.offsets.shape != (t,) or self.lengths.shape != (t,):
            raise CodecError("entropy tables have inconsistent shapes")
        total = 1 << self.precision
        for row, n in zip(self.freqs, self.lengths, strict=True):
            if n < 1 or n + 1 > row.size or row[: n + 1].min() < 1 or row[: n + 1].sum() != total:
                raise CodecError("entropy tables are corrupt (frequencies do not sum up)")

    @property
    def num_tables(self) -> int:
        return int(self.freqs.shape[0])

    def probabilities(self, t: int) -> np.ndarray:
        """Table ``t`` (escape last) as float64 probabilities, exactly freqs / 2**precision."""
        n = int(self.lengths[t])
        return self.freqs[t, : n + 1].astype(np.float64) / float(1 << self.precision)

    def bits(self, t: np.ndarray, values: np.ndarray) -> np.ndarray:
        """Information content in bits of in-range ``values`` under tables ``t`` (escapes: inf)."""
        sym = values - self.offsets[t]
        ok = (sym >= 0) & (sym < self.lengths[t])
        f = np.where(ok, self.freqs[t, np.clip(sym, 0, self.freqs.shape[1] - 1)], 0)
        with np.errstate(divide="ignore"):
            return self.precision - np.log2(f.astype(np.float64))

    def to_arrays(self) -> dict[str, np.ndarray]:
        return {"freqs": self.freqs, "offsets": self.offsets, "lengths": self.lengths}

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], precision: int) -> CategoricalTables:
        return cls(
            freqs=np.asarray(arrays["freqs"], dtype=np.int64),
            offsets=np.asarray(arrays["offsets"], dtype=np.int64),
            lengths=np.asarray(arrays["lengths"], dtype=np.int64),
            precision=int(precision),
        )


def stack_tables(
    rows: list[np.ndarray], offsets: list[int], precision: int = PRECISION
) -> CategoricalTables:
    """Stack per-table frequency rows (each ending with its escape entry) into one table set."""
    width = max(r.size for r in rows)
    freqs = np.zeros((len(rows), width), dtype=np.int64)
    for i, r in enumerate(rows):
        freqs[i, : r.size] = r
    return CategoricalTables(
        freqs=freqs,
        offsets=np.asarray(offsets, dtype=np.int64),
        lengths=np.asarray([r.size - 1 for r in rows], dtype=np.int64),
        precision=precision,
    )
