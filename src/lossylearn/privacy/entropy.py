"""The LCoN paper's noise-matched distortion and the noise entropy.

For noise N with pmf P on the integers, the paper (Sec. IV, eq. 3) uses the difference distortion
``rho_N(a) = -log P(N = a)``; a good code at distortion level ``D = H(N)`` outputs samples from the
posterior of the clean data (Theorem IV.1), at rate ``H(Z^n)/n - H(N)`` (eq. 13). Here logs are
base 2: ``rho`` is in bits and ``H(N)`` in bits per pixel.

Under ``range_handling="wrap"`` the noise acts mod 256 (the paper's mod-Q model), so the law used
is that of ``N mod 256`` and ``a`` is read mod 256. Under ``"clip"`` it is the law of N on the
integers; the clipping to [0, 255] is ignored (it makes the effective noise depend on the pixel).
For float samplers N is the rounded noise ``round(n)``.
"""

from __future__ import annotations

import math

import numpy as np

from lossylearn.privacy import laws
from lossylearn.privacy.mechanisms import NoiseSpec

_LN2 = math.log(2.0)


def _log_pmf(spec: NoiseSpec, a: np.ndarray) -> np.ndarray:
    a = np.asarray(a)
    if a.dtype.kind not in "iu":
        if not np.all(np.equal(np.mod(a, 1), 0)):
            raise ValueError("noise support must be integers")
        a = a.astype(np.int64)
    if spec.range_handling == "wrap":
        return laws.log_pmf_wrapped(spec.law, a, 256)
    return laws.log_pmf(spec.law, a)


def noise_pmf(spec: NoiseSpec, support: np.ndarray) -> np.ndarray:
    """``P(N = a)`` for each integer ``a`` in ``support`` (``P(N mod 256 = a mod 256)`` if wrap)."""
    return np.exp(_log_pmf(spec, support))


def rho(spec: NoiseSpec, a: np.ndarray) -> np.ndarray:
    """The noise-matched distortion ``rho_N(a) = -log2 P(N = a)``, in bits (finite in the tails)."""
    return -_log_pmf(spec, a) / _LN2


def noise_entropy_bits(spec: NoiseSpec) -> float:
    """``H(N)`` in bits per pixel of the integer noise (of ``N mod 256`` under wrap).

    Clipping is ignored: it is the entropy of the noise as drawn, the paper's distortion level.
    """
    return spec.entropy_bits
