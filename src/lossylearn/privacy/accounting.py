"""(epsilon, delta) accounting for one release of Gaussian or Laplace noise.

- Gaussian, float sampler: the analytic Gaussian mechanism (Balle & Wang 2018), through
  ``dp_accounting.get_epsilon_gaussian`` / ``get_sigma_gaussian``, exact for real-valued noise.
- Discrete Gaussian, scalar query (one pixel): the exact delta of Canonne, Kamath & Steinke (2020,
  Thm. 7), ``delta = P[Y > eps s^2/v - v/2] - e^eps P[Y > eps s^2/v + v/2]`` for an integer shift
  v, maximised over every integer shift ``1 <= v <= sensitivity``, with the tails summed from the
  pmf (terms past 13 sigma of the lowest threshold, below 1e-36 in total, are dropped).
- Discrete Gaussian, many coordinates (a whole image) or sigma > 5e4: the product of discrete
  Gaussians with L2 sensitivity D is ``rho = D^2 / (2 s^2)`` zero-concentrated DP (CKS 2020,
  Thm. 14); converted with CKS 2020 Prop. 12 (a valid upper bound on delta for every order).
- Laplace (float or discrete): pure ``epsilon = sensitivity / b`` (L1 sensitivity).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

from lossylearn.privacy import laws

DEFAULT_DELTA = 1e-5
EXACT_DISCRETE_MAX_SIGMA = 5.0e4
_TABLE_SIGMAS = 13.0


# ---------------------------------------------------------------------------------------------
# Analytic Gaussian (float sampler)
# ---------------------------------------------------------------------------------------------
def gaussian_epsilon(sigma: float, sensitivity: float, delta: float) -> float:
    """Smallest epsilon of the analytic Gaussian mechanism (Balle & Wang 2018) at ``delta``."""
    from dp_accounting import get_epsilon_gaussian

    return float(get_epsilon_gaussian(sigma / sensitivity, delta))


def gaussian_sigma(epsilon: float, delta: float, sensitivity: float) -> float:
    """Smallest sigma giving (epsilon, delta)-DP (analytic Gaussian), nudged up by 1e-9."""
    from dp_accounting import get_sigma_gaussian

    return float(get_sigma_gaussian(epsilon, delta)) * sensitivity * (1.0 + 1e-9)


# ---------------------------------------------------------------------------------------------
# zCDP (discrete Gaussian on many coordinates)
# ---------------------------------------------------------------------------------------------
_ORDERS = 1.0 + np.logspace(-4, 8, 1500)


def _log_delta_at_orders(rho: float, epsilon: float, alpha: np.ndarray) -> np.ndarray:
    # CKS 2020 Prop. 12: (alpha, alpha rho)-RDP gives (eps, delta)-DP with
    # delta = exp((alpha - 1)(alpha rho - eps)) / (alpha - 1) * (1 - 1/alpha)^alpha, i.e.
    # log delta = (alpha - 1)(alpha rho - eps + log(1 - 1/alpha)) - log(alpha).
    return (alpha - 1.0) * (alpha * rho - epsilon + np.log1p(-1.0 / alpha)) - np.log(alpha)


def _least_over_orders(f: Callable[[np.ndarray], np.ndarray]) -> float:
    """The least value of ``f`` over the Renyi orders ``alpha > 1``: the best point of the grid
    ``_ORDERS``, refined by a bounded scalar search in ``log(alpha - 1)`` between its neighbours."""
    from scipy.optimize import minimize_scalar

    values = f(_ORDERS)
    i = int(np.argmin(values))
    lo = math.log(_ORDERS[max(i - 1, 0)] - 1.0)
    hi = math.log(_ORDERS[min(i + 1, len(_ORDERS) - 1)] - 1.0)
    res = minimize_scalar(
        lambda u: float(f(np.array([1.0 + math.exp(u)]))[0]), bounds=(lo, hi), method="bounded"
    )
    return min(float(values[i]), float(res.fun))


def zcdp_delta(rho: float, epsilon: float) -> float:
    """Delta at ``epsilon`` implied by rho-zCDP (CKS 2020 Prop. 12, optimised over the order)."""
    if rho <= 0:
        return 0.0
    best = _least_over_orders(lambda alpha: _log_delta_at_orders(rho, epsilon, alpha))
    return min(1.0, math.exp(best))


def _eps_at_orders(rho: float, delta: float, alpha: np.ndarray) -> np.ndarray:
    return alpha * rho + np.log1p(-1.0 / alpha) - np.log(delta * alpha) / (alpha - 1.0)


def zcdp_epsilon(rho: float, delta: float) -> float:
    """Epsilon at ``delta`` implied by rho-zCDP (CKS 2020 Prop. 12, optimised over the order)."""
    if rho <= 0:
        return 0.0
    return max(0.0, _least_over_orders(lambda alpha: _eps_at_orders(rho, delta, alpha)))


# ---------------------------------------------------------------------------------------------
# Exact discrete Gaussian (one coordinate)
# ---------------------------------------------------------------------------------------------
class _DiscreteGaussianTails:
    """``P(Y >= m)`` for the discrete Gaussian on a window of m, with symmetry for m <= 0."""

    def __init__(self, sigma2: float, m_min: int) -> None:
        sigma = math.sqrt(sigma2)
        self.lo = max(0, m_min)
        length = int(math.ceil(_TABLE_SIGMAS * sigma)) + 2
        if m_min <= 0:  # lookups 1 - m for m <= 0 reach up to 1 - m_min
            length += 1 - m_min
        y = np.arange(self.lo, self.lo + length, dtype=np.int64)
        p = np.exp(laws.log_pmf(laws.IntegerLaw("discrete_gaussian", sigma2), y))
        self.tail = np.append(np.cumsum(p[::-1])[::-1], 0.0)  # tail[i] = P(Y >= lo + i)
        self.hi = self.lo + length  # P(Y >= hi) is treated as 0

    def _upper(self, m: np.ndarray) -> np.ndarray:
        idx = np.clip(m - self.lo, 0, len(self.tail) - 1)
        return self.tail[idx]

    def greater_than(self, c: np.ndarray) -> np.ndarray:
        """``P(Y > c)`` for real thresholds ``c``."""
        m = np.floor(c).astype(np.int64) + 1
        pos = m > 0
        out = np.empty(m.shape)
        out[pos] = self._upper(m[pos])
        out[~pos] = 1.0 - self._upper(1 - m[~pos])
        return out


def _shifts(sensitivity: float) -> np.ndarray:
    return np.arange(1, int(math.floor(sensitivity + 1e-12)) + 1, dtype=np.float64)


def _dg_delta_from_tails(
    tails: _DiscreteGaussianTails, sigma2: float, epsilon: float, v: np.ndarray
) -> float:
    t_lo = tails.greater_than(epsilon * sigma2 / v - v / 2.0)
    t_hi = tails.greater_than(epsilon * sigma2 / v + v / 2.0)
    with np.errstate(divide="ignore"):
        second = np.exp(epsilon + np.log(t_hi))
    return float(max(0.0, np.max(t_lo - second)))


def _dg_tails(sigma2: float, epsilon_min: float, sensitivity: float) -> _DiscreteGaussianTails:
    v = float(math.floor(sensitivity + 1e-12))
    c_min = epsilon_min * sigma2 / v - v / 2.0  # the lowest threshold over shifts and epsilons
    return _DiscreteGaussianTails(sigma2, int(math.floor(c_min)))


def discrete_gaussian_delta(sigma2: float, epsilon: float, sensitivity: float) -> float:
    """Exact delta of the discrete Gaussian on one integer coordinate (CKS 2020 Thm. 7).

    The maximum over integer shifts ``1..floor(sensitivity)``.
    """
    v = _shifts(sensitivity)
    if v.size == 0:
        return 0.0
    tails = _dg_tails(sigma2, epsilon, sensitivity)
    return _dg_delta_from_tails(tails, sigma2, epsilon, v)


def discrete_gaussian_epsilon(sigma2: float, sensitivity: float, delta: float) -> float:
    """Smallest epsilon (to 1e-10 relative, rounded up) with exact delta <= ``delta``."""
    v = _shifts(sensitivity)
    if v.size == 0:
        return 0.0
    tails = _dg_tails(sigma2, 0.0, sensitivity)

    def d(eps: float) -> float:
        return _dg_delta_from_tails(tails, sigma2, eps, v)

    if d(0.0) <= delta:
        return 0.0
    hi = max(1e-3, gaussian_epsilon(math.sqrt(sigma2), float(v[-1]), delta))
    while d(hi) > delta:
        hi *= 2.0
    lo = 0.0
    while hi - lo > 1e-10 * hi:
        mid = 0.5 * (lo + hi)
        if d(mid) > delta:
            lo = mid
        else:
            hi = mid
    return hi


def discrete_gaussian_sigma(
    epsilon: float, delta: float, sensitivity: float, delta_of_sigma: object = None
) -> float:
    """Smallest sigma (to 1e-9 relative) whose exact delta at ``epsilon`` is <= ``delta``.

    ``delta_of_sigma(sigma) -> float`` overrides the exact one-coordinate delta (the caller uses
    it to account for the rational sigma^2 actually sampled).
    """
    f = delta_of_sigma or (lambda s: discrete_gaussian_delta(s * s, epsilon, sensitivity))
    start = gaussian_sigma(epsilon, delta, sensitivity)
    lo, hi = start * 0.5, start * 1.5
    while f(hi) > delta:  # type: ignore[operator]
        lo, hi = hi, hi * 2.0
    while f(lo) <= delta:  # type: ignore[operator]
        hi, lo = lo, lo * 0.5
    while hi - lo > 1e-9 * hi:
        mid = 0.5 * (lo + hi)
        if f(mid) > delta:  # type: ignore[operator]
            lo = mid
        else:
            hi = mid
    return hi


def laplace_epsilon(b: float, sensitivity: float) -> float:
    """Pure epsilon of the (discrete or continuous) Laplace mechanism: ``sensitivity / b``."""
    return sensitivity / b


def paper_epsilon_gaussian(sigma: float, delta: float) -> float:
    """The epsilon the LCoN paper would state: ``sigma^2 = 2 ln(2/delta)/eps^2`` on [0,1] pixels."""
    return math.sqrt(2.0 * math.log(2.0 / delta)) / (sigma / 255.0)
