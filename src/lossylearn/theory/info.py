"""Information measures on finite alphabets, plus input validation for the theory solvers.

Entropies and mutual informations are computed from probability arrays with the convention
0 log 0 = 0. Every function takes the logarithm base as ``base`` (2 for bits, e for nats).
The validators turn user input into clean float arrays or raise :class:`LossylearnError` with a
one-line message; the solvers call them before doing any work.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.optimize import brentq

from lossylearn.errors import LossylearnError

FloatArray = NDArray[np.float64]

#: Absolute tolerance on the total mass of a user-supplied probability vector.
PMF_SUM_TOL = 1e-8


def as_pmf(p: ArrayLike, name: str = "p") -> FloatArray:
    """Validate a probability vector (any shape); return it as float64, renormalised exactly."""
    arr = np.asarray(p, dtype=np.float64)
    if arr.size == 0:
        raise LossylearnError(f"{name} is empty")
    if not np.all(np.isfinite(arr)):
        raise LossylearnError(f"{name} has non-finite entries")
    if np.any(arr < 0):
        raise LossylearnError(f"{name} has negative entries")
    total = float(arr.sum())
    if abs(total - 1.0) > PMF_SUM_TOL:
        raise LossylearnError(f"{name} sums to {total:.10g}, not 1")
    return arr / total


def as_distortion(d: ArrayLike, n_source: int, name: str = "distortion") -> FloatArray:
    """Validate an (n_source, n_reconstruction) distortion matrix: non-negative, +inf allowed."""
    arr = np.asarray(d, dtype=np.float64)
    if arr.ndim != 2 or arr.shape[0] != n_source or arr.shape[1] < 1:
        raise LossylearnError(f"{name} must have shape ({n_source}, m); got {tuple(arr.shape)}")
    if np.any(np.isnan(arr)) or np.any(arr < 0) or np.any(arr == -np.inf):
        raise LossylearnError(f"{name} must be non-negative (+inf allowed), without NaN")
    if np.any(np.all(np.isinf(arr), axis=1)):
        raise LossylearnError(
            f"{name} has a source symbol with infinite distortion to every output"
        )
    return arr


def plain(value: object) -> str:
    """``value`` as it should read in an error message: a number in plain float formatting
    (``0.1``, ``-1``, ``nan``, ``inf``), never a repr such as ``np.float64(nan)``; text quoted."""
    if isinstance(value, str):
        return repr(value)
    try:
        return f"{float(value):.10g}"  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return str(value)


def as_nonneg(value: float, name: str, *, allow_inf: bool = False) -> float:
    """Validate a non-negative scalar (finite unless ``allow_inf``)."""
    v = float(value)
    if math.isnan(v) or v < 0 or (math.isinf(v) and not allow_inf):
        kind = "a number" if allow_inf else "a finite number"
        raise LossylearnError(f"{name} must be {kind} >= 0; got {plain(value)}")
    return v


def as_positive(value: float, name: str) -> float:
    """Validate a finite positive scalar."""
    v = float(value)
    if not math.isfinite(v) or v <= 0:
        raise LossylearnError(f"{name} must be a finite number > 0; got {plain(value)}")
    return v


def entropy(p: ArrayLike, *, base: float = 2.0) -> float:
    """Shannon entropy of a probability array (any shape, entries summing to 1)."""
    arr = np.asarray(p, dtype=np.float64).ravel()
    nz = arr[arr > 0]
    return float(-(nz * np.log(nz)).sum() / math.log(base))


def mutual_information(joint: ArrayLike, *, base: float = 2.0) -> float:
    """I(A;B) of a 2-D joint probability table."""
    pj = np.asarray(joint, dtype=np.float64)
    if pj.ndim != 2:
        raise LossylearnError("a joint law for mutual information must be 2-D")
    pa = pj.sum(axis=1, keepdims=True)
    pb = pj.sum(axis=0, keepdims=True)
    mask = pj > 0
    ratio = pj[mask] / np.broadcast_to(pa, pj.shape)[mask] / np.broadcast_to(pb, pj.shape)[mask]
    return float(max((pj[mask] * np.log(ratio)).sum(), 0.0) / math.log(base))


def conditional_entropy(joint: ArrayLike, *, base: float = 2.0) -> float:
    """H(A|B) of a 2-D joint table indexed [a, b]."""
    pj = np.asarray(joint, dtype=np.float64)
    pb = pj.sum(axis=0, keepdims=True)
    mask = pj > 0
    cond = pj[mask] / np.broadcast_to(pb, pj.shape)[mask]
    return float(-(pj[mask] * np.log(cond)).sum() / math.log(base))


def total_variation(p: ArrayLike, q: ArrayLike) -> float:
    """Total-variation distance (1/2) * sum |p - q| between two laws of the same shape."""
    a = np.asarray(p, dtype=np.float64)
    b = np.asarray(q, dtype=np.float64)
    if a.shape != b.shape:
        raise LossylearnError(f"laws of different shapes: {a.shape} vs {b.shape}")
    return float(0.5 * np.abs(a - b).sum())


def binary_entropy(x: float) -> float:
    """Hb(x) in bits, with Hb(0) = Hb(1) = 0."""
    x = float(x)
    if x <= 0.0 or x >= 1.0:
        return 0.0
    return -(x * math.log2(x) + (1.0 - x) * math.log2(1.0 - x))


def binary_entropy_inverse(h: float) -> float:
    """The x in [0, 1/2] with Hb(x) = h (h in bits, 0 <= h <= 1)."""
    h = float(h)
    if h < 0 or h > 1 + 1e-12:
        raise LossylearnError(f"binary entropy must lie in [0, 1] bits; got {h}")
    if h <= 0:
        return 0.0
    if h >= 1:
        return 0.5
    return float(brentq(lambda x: binary_entropy(x) - h, 0.0, 0.5, xtol=1e-15, rtol=1e-15))


def entropy_of(values: Sequence[float], *, base: float = 2.0) -> float:
    """Entropy of a short list of probabilities (a convenience for closed forms)."""
    return entropy(np.asarray(values, dtype=np.float64), base=base)
