"""The law of the integer-valued noise that reaches the pixels.

Four families, one per (kind, sampler):

- ``discrete_gaussian`` (parameter sigma^2): ``P(a) = exp(-a^2 / (2 sigma^2)) / Z``;
- ``rounded_gaussian`` (parameter sigma^2): the law of ``round(N)``, ``N ~ N(0, sigma^2)``, i.e.
  ``Phi((a + 1/2)/sigma) - Phi((a - 1/2)/sigma)`` (what the float sampler + rounding gives);
- ``discrete_laplace`` (parameter b): ``P(a) = tanh(1/(2b)) exp(-|a|/b)``;
- ``rounded_laplace`` (parameter b): the law of ``round(N)``, ``N ~ Laplace(b)``:
  ``P(0) = 1 - exp(-1/(2b))``, ``P(a) = sinh(1/(2b)) exp(-|a|/b)`` for ``a != 0``.

Pixels get ``x + noise`` (float samplers: ``rint(x + n)``, equal in law to ``x + round(n)``), then
either clipping to [0, 255] or reduction mod 256. The laws here ignore clipping; ``modulus`` gives
the law of ``noise mod 256`` (the paper's mod-Q model). Everything is computed in log space with
closed forms (Poisson summation for the Gaussian normaliser, geometric series for Laplace), so the
far tails keep finite ``-log P`` values.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import numpy as np
from scipy.special import log_ndtr, logsumexp

FAMILIES = ("discrete_gaussian", "rounded_gaussian", "discrete_laplace", "rounded_laplace")

_TAIL_SIGMAS = 40.0  # Gaussian mass beyond 40 sigma is below exp(-800): zero in float64
_DIRECT_SUM_MAX_SIGMA = 1.0e4  # beyond: asymptotic closed forms (error far below 1e-12)
_WRAP_UNIFORM_SIGMA = 2000.0  # wrapped mod 256 the Gaussian is uniform up to exp(-1200)


@dataclass(frozen=True)
class IntegerLaw:
    """An integer noise law: ``family`` (see module doc) and its parameter (sigma^2 or b)."""

    family: str
    param: float

    def __post_init__(self) -> None:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown noise law {self.family!r}; known: {', '.join(FAMILIES)}")
        if not (math.isfinite(self.param) and self.param > 0):
            raise ValueError(f"noise law parameter must be positive, got {self.param}")

    @property
    def gaussian(self) -> bool:
        return self.family.endswith("gaussian")

    @property
    def sigma(self) -> float:
        return math.sqrt(self.param)


# ---------------------------------------------------------------------------------------------
# log-pmf on Z
# ---------------------------------------------------------------------------------------------
def _log_theta_gaussian(sigma2: float) -> tuple[float, float]:
    """``(log Z, E[a^2])`` for the discrete Gaussian: ``Z = sum_a exp(-a^2/(2 sigma^2))``."""
    sigma = math.sqrt(sigma2)
    if sigma >= 1.0:
        # Poisson summation: sum_a exp(-a^2/2s^2) = sqrt(2 pi) s sum_m exp(-2 pi^2 s^2 m^2) and
        # sum_a a^2 exp(-a^2/2s^2) = sqrt(2 pi) s sum_m (s^2 - 4 pi^2 s^4 m^2) exp(-2 pi^2 s^2 m^2).
        m = np.arange(1, 11, dtype=np.float64)
        g = np.exp(-2.0 * math.pi**2 * sigma2 * m**2)
        theta = 1.0 + 2.0 * float(g.sum())
        second = sigma2 + 2.0 * float(((sigma2 - 4.0 * math.pi**2 * sigma2**2 * m**2) * g).sum())
        return math.log(math.sqrt(2.0 * math.pi) * sigma) + math.log(theta), second / theta
    a = np.arange(-60, 61, dtype=np.float64)
    w = np.exp(-(a**2) / (2.0 * sigma2))
    z = float(w.sum())
    return math.log(z), float((a**2 * w).sum()) / z


def _log_sinh(x: float) -> float:
    return x + math.log(-math.expm1(-2.0 * x)) - math.log(2.0)


def log_pmf(law: IntegerLaw, a: np.ndarray) -> np.ndarray:
    """Natural log of ``P(N = a)`` for integers ``a`` (unwrapped, clipping ignored)."""
    a = np.abs(np.asarray(a, dtype=np.float64))
    if law.family == "discrete_gaussian":
        log_z, _ = _log_theta_gaussian(law.param)
        return -(a**2) / (2.0 * law.param) - log_z
    if law.family == "rounded_gaussian":
        s = law.sigma
        upper_lo = log_ndtr(-(a - 0.5) / s)  # log P(N > |a| - 1/2)
        upper_hi = log_ndtr(-(a + 0.5) / s)  # log P(N > |a| + 1/2)
        with np.errstate(divide="ignore"):
            return upper_lo + np.log(-np.expm1(upper_hi - upper_lo))
    b = law.param
    if law.family == "discrete_laplace":
        return math.log(math.tanh(0.5 / b)) - a / b
    # rounded_laplace
    out = _log_sinh(0.5 / b) - a / b
    return np.where(a == 0, math.log(-math.expm1(-0.5 / b)), out)


def log_pmf_wrapped(law: IntegerLaw, a: np.ndarray, modulus: int = 256) -> np.ndarray:
    """Natural log of ``P(N mod modulus = a mod modulus)``."""
    r = np.mod(np.asarray(a, dtype=np.int64), modulus)
    return _log_pmf_wrapped_table(law, modulus)[r]


@lru_cache(maxsize=64)
def _log_pmf_wrapped_table(law: IntegerLaw, modulus: int) -> np.ndarray:
    q = float(modulus)
    r = np.arange(modulus, dtype=np.float64)
    if law.family in ("discrete_laplace", "rounded_laplace"):
        b = law.param
        # sum_k exp(-|r + kQ|/b) = (exp(-r/b) + exp(-(Q-r)/b)) / (1 - exp(-Q/b)), 0 <= r < Q
        log_fold = np.logaddexp(-r / b, -(q - r) / b) - math.log(-math.expm1(-q / b))
        if law.family == "discrete_laplace":
            table = math.log(math.tanh(0.5 / b)) + log_fold
        else:
            log_s = _log_sinh(0.5 / b)
            table = log_s + log_fold
            # r = 0: P(0) replaces the sinh term of k = 0
            rest = math.log(2.0) + log_s - q / b - math.log(-math.expm1(-q / b))
            table[0] = np.logaddexp(math.log(-math.expm1(-0.5 / b)), rest)
        table.setflags(write=False)
        return table
    if law.sigma > _WRAP_UNIFORM_SIGMA:
        table = np.full(modulus, -math.log(q))
    else:
        k_max = int(math.ceil((_TAIL_SIGMAS * law.sigma + q) / q))
        k = np.arange(-k_max, k_max + 1, dtype=np.int64)
        grid = np.arange(modulus, dtype=np.int64)[:, None] + modulus * k[None, :]
        table = logsumexp(log_pmf(law, grid), axis=1)
        table = table - logsumexp(table)  # remove the (tiny) rounding drift of the fold
    table.setflags(write=False)
    return table


# ---------------------------------------------------------------------------------------------
# moments and entropy
# ---------------------------------------------------------------------------------------------
def _support(law: IntegerLaw) -> np.ndarray:
    half = int(math.ceil(_TAIL_SIGMAS * law.sigma)) + 2
    return np.arange(-half, half + 1, dtype=np.int64)


@lru_cache(maxsize=256)
def variance(law: IntegerLaw) -> float:
    """``E[N^2]`` of the integer noise (its mean is 0), clipping ignored."""
    if law.family == "discrete_gaussian":
        return _log_theta_gaussian(law.param)[1]
    if law.family == "rounded_gaussian":
        if law.sigma > _DIRECT_SUM_MAX_SIGMA:
            return law.param + 1.0 / 12.0  # Sheppard's correction; exact up to exp(-2 pi^2 s^2)
        a = _support(law)
        return float((a.astype(np.float64) ** 2 * np.exp(log_pmf(law, a))).sum())
    b = law.param
    q = math.exp(-1.0 / b)
    one_minus_q = -math.expm1(-1.0 / b)
    if law.family == "discrete_laplace":
        return 2.0 * q / one_minus_q**2
    s = math.sinh(0.5 / b)
    return 2.0 * s * q * (1.0 + q) / one_minus_q**3


@lru_cache(maxsize=256)
def entropy_nats(law: IntegerLaw, modulus: int | None = None) -> float:
    """Shannon entropy (nats) of the integer noise, or of the noise mod ``modulus``."""
    if modulus is not None:
        lp = _log_pmf_wrapped_table(law, modulus)
        return float(-(np.exp(lp) * lp).sum())
    if law.family == "discrete_gaussian":
        log_z, second = _log_theta_gaussian(law.param)
        return log_z + second / (2.0 * law.param)
    if law.family == "rounded_gaussian":
        if law.sigma > _DIRECT_SUM_MAX_SIGMA:
            # H(round N) = h(N + U) up to exp(-2 pi^2 s^2) terms, U ~ U(-1/2, 1/2);
            # h(N + U) = 1/2 log(2 pi e s^2) + 1/(24 s^2) + O(s^-4).
            return 0.5 * math.log(2.0 * math.pi * math.e * law.param) + 1.0 / (24.0 * law.param)
        lp = log_pmf(law, _support(law))
        p = np.exp(lp)
        return float(-(p[p > 0] * lp[p > 0]).sum())
    b = law.param
    q = math.exp(-1.0 / b)
    one_minus_q = -math.expm1(-1.0 / b)
    if law.family == "discrete_laplace":
        c = math.tanh(0.5 / b)
        mean_abs = 2.0 * q / ((1.0 + q) * one_minus_q)
        return -math.log(c) + mean_abs / b
    s = math.sinh(0.5 / b)
    p0 = -math.expm1(-0.5 / b)
    h = -p0 * math.log(p0) if p0 > 0 else 0.0
    log_s = _log_sinh(0.5 / b)
    return h - 2.0 * s * q / one_minus_q * log_s + 2.0 * s / b * q / one_minus_q**2
