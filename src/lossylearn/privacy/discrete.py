"""Exact samplers for the discrete Laplace and discrete Gaussian distributions.

Canonne, Kamath & Steinke (2020), "The Discrete Gaussian for Differential Privacy":

- Algorithm 1: Bernoulli(exp(-gamma)) for a rational gamma >= 0, using only Bernoulli draws with
  rational probabilities;
- Algorithm 2: the discrete Laplace ``P(x) ∝ exp(-|x| s/t)`` (scale ``t/s``) from a geometric;
- Algorithm 3: the discrete Gaussian ``P(x) ∝ exp(-x^2 / (2 sigma^2))`` by rejection from a discrete
  Laplace of integer scale ``t = floor(sigma) + 1``.

Every random decision is a comparison of an exact uniform integer with an integer, so the output
law is exactly the stated distribution (given a perfect source of uniform words): no floating point
touches a sample. The algorithms are vectorised: each loop of the paper runs over the whole set of
still-undecided samples at once.

Integer bounds (why int64 never overflows):

- ``Bernoulli(p/q / K)`` is drawn as ``Bernoulli(p/q) AND Bernoulli(1/K)`` (independent), so the
  largest uniform bound is ``q``, never ``q*K``.
- ``Bernoulli(exp(-1))`` uses one 32-bit word ``w`` uniform below ``8 * 12!`` (< 2**32): the loop
  of Algorithm 1 runs past ``K`` with probability ``1/K!``, which is the event
  ``w < 8 * 12!/K!`` for ``K <= 12``; the rare ``w < 8`` continues the loop one draw at a time.
- ``Bernoulli(p/q)`` keeps a word ``w < j q`` (``j = 2**W // q``) and returns ``w < j p``, exact
  with no division (:meth:`NoiseSource.bernoulli`).
- Discrete Gaussian: ``sigma^2 = t * c`` with ``c = cn/cd`` and ``cd <= 2**31 // (32 t)``, so the
  rejection exponent ``(|Y| - c)^2 / (2 sigma^2) = A^2 / D`` has ``A = |Y| cd - cn`` and
  ``D = 2 t cn cd <= 2**53`` (``2 t^2 <= 2**62`` when ``cd = 1``); ``A^2`` is formed in int64 while
  ``|A| < 2**31`` and with Python integers otherwise (a far tail, ``|Y| > ~32 t``). There the
  integer part ``k`` of the exponent is capped at 2**62: reaching the cap needs 2**62 successive
  Bernoulli(exp(-1)) successes, which no run can perform, so no realised output changes.
- Discrete Laplace of scale ``b = t/s``: ``t <= 2**31`` (``2**40`` accepted) so ``X = U + t V``
  fits unless the geometric ``V`` exceeds ``2**22``, an event of probability ``exp(-2**22)``.

The exact parameters are rationals (:func:`gaussian_sigma2_fraction`, :func:`laplace_b_fraction`):
the relative error of the rational ``sigma^2`` w.r.t. the requested one is at most ``32 t^2 /
(2**31 sigma^2)`` (about 1.5e-8 for sigma >= 1), that of ``b`` at most ``(b + 2) / (2**31 b)``.
The privacy accounting uses the rational values, so it describes exactly what is sampled.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from lossylearn.privacy.source import NoiseSource

_EXP1_KMAX = 12
_FACT = math.factorial(_EXP1_KMAX)  # 12! < 2**32
_EXP1_SCALE = (1 << 32) // _FACT  # 8
# 8 * 12!/K! for K = 12, 11, ..., 2 (ascending): the loop of Algorithm 1 with gamma = 1 goes past
# K exactly when w < 8 * 12!/K!, w uniform below 8 * 12!.
_EXP1_THRESHOLDS = np.array(
    [_EXP1_SCALE * (_FACT // math.factorial(k)) for k in range(_EXP1_KMAX, 1, -1)],
    dtype=np.uint32,
)
_EXP1_T2 = _EXP1_THRESHOLDS[-1]
_EXP1_T3 = _EXP1_THRESHOLDS[-2]
ROUND_SIZE = 1 << 18
"""Attempts per vectorised round. Rounds this small keep every temporary array in the allocator's
cache (large fresh arrays cost page faults); part of the seeded output's definition: changing it
changes the noise drawn for a given (seed, stream)."""
_INT64_SQUARE_LIMIT = 1 << 31
_MAX_D = 1 << 62
_K_CLAMP = 1 << 62


# ---------------------------------------------------------------------------------------------
# Exact rational parameters
# ---------------------------------------------------------------------------------------------
def gaussian_t(sigma2: Fraction) -> int:
    """The Laplace scale ``t = floor(sigma) + 1`` of Algorithm 3 (exact integer arithmetic)."""
    return math.isqrt(sigma2.numerator // sigma2.denominator) + 1


def _cd_max(t: int) -> int:
    return max(1, (1 << 31) // (32 * t))


def gaussian_sigma2_fraction(sigma: float) -> Fraction:
    """The exact rational ``sigma^2 = t * c`` the discrete Gaussian sampler uses for ``sigma``.

    ``c`` is the best rational approximation of ``sigma^2 / t`` with denominator at most
    ``max(1, 2**31 // (32 t))``, kept inside ``[(t-1)^2/t, t)`` so that ``t`` is unchanged.
    """
    s2 = Fraction(sigma) ** 2
    t = gaussian_t(s2)
    cd_max = _cd_max(t)
    c = (s2 / t).limit_denominator(cd_max)
    low = Fraction((t - 1) ** 2, t)
    if c >= t:
        c = Fraction(t * cd_max - 1, cd_max)
    if c < low or c <= 0:
        c = max(Fraction(-((-((t - 1) ** 2) * cd_max) // t), cd_max), Fraction(1, cd_max))
    return c * t


def laplace_b_fraction(b: float) -> Fraction:
    """The exact rational scale ``b = t/s`` the discrete Laplace sampler uses (``t <= ~2**31``)."""
    s_max = max(1, (1 << 31) // (math.ceil(b) + 1))
    frac = Fraction(b).limit_denominator(s_max)
    if frac <= 0:
        frac = Fraction(1, s_max)
    return frac


def check_gaussian_fraction(sigma2: Fraction) -> None:
    """Raise ValueError when ``sigma2`` would overflow the int64 sampler."""
    if sigma2 <= 0:
        raise ValueError(f"discrete Gaussian needs sigma^2 > 0, got {sigma2}")
    t = gaussian_t(sigma2)
    c = sigma2 / t
    if c.denominator > _cd_max(t) or 2 * t * c.numerator * c.denominator > _MAX_D:
        raise ValueError(
            f"discrete Gaussian sigma^2 = {sigma2} has too large a denominator for the exact "
            "sampler; use gaussian_sigma2_fraction()"
        )


def check_laplace_fraction(b: Fraction) -> None:
    """Raise ValueError when ``b = t/s`` would overflow the int64 sampler."""
    if b <= 0:
        raise ValueError(f"discrete Laplace needs b > 0, got {b}")
    if b.numerator > (1 << 40) or b.denominator > (1 << 40):
        raise ValueError(
            f"discrete Laplace b = {b} has too large a numerator/denominator for the exact "
            "sampler; use laplace_b_fraction()"
        )


# ---------------------------------------------------------------------------------------------
# Algorithm 1: Bernoulli(exp(-gamma))
# ---------------------------------------------------------------------------------------------
def bernoulli_exp_minus_one(source: NoiseSource, n: int) -> np.ndarray:
    """``n`` exact Bernoulli(exp(-1)) draws (bool), one 32-bit word each (rarely more)."""
    # w uniform on [0, 8 * 12!) (8 = 2**32 // 12!): the loop passes K exactly when
    # w < 8 * 12!/K!, an event of probability 1/K!.
    w = source.uniform_words_below(_EXP1_SCALE * _FACT, n, bits=32)
    # The loop stops at K = 2 + passed; Algorithm 1 returns 1 iff that K is odd. Most draws stop
    # at K = 2 (w >= T_2, probability 1/2) or K = 3 (T_3 <= w < T_2, probability 1/3).
    out = (w < _EXP1_T2) & (w >= _EXP1_T3)
    deep = np.flatnonzero(w < _EXP1_T3)
    wd = w[deep]
    passed = len(_EXP1_THRESHOLDS) - np.searchsorted(_EXP1_THRESHOLDS, wd, side="right")
    out[deep] = (passed % 2) == 1
    tail = deep[passed == len(_EXP1_THRESHOLDS)]  # w < 8: the loop is past K = 12
    if tail.size:
        k = np.full(tail.size, _EXP1_KMAX + 1, dtype=np.int64)
        active = np.arange(tail.size)
        res = np.empty(tail.size, dtype=bool)
        while active.size:
            go_on = source.below(k[active]) == 0
            stop = active[~go_on]
            res[stop] = (k[stop] % 2) == 1
            active = active[go_on]
            k[active] += 1
        out[tail] = res
    return out


def bernoulli_exp_fraction(source: NoiseSource, r: np.ndarray, d: int) -> np.ndarray:
    """Exact Bernoulli(exp(-r/d)) for integers ``0 <= r < d < 2**63`` (Algorithm 1, gamma < 1).

    Algorithm 1 runs ``K = 1, 2, ...`` while Bernoulli(gamma / K) succeeds and returns ``K odd``.
    Bernoulli(gamma / K) is drawn as Bernoulli(r/d) AND Bernoulli(1/K).
    """
    r = np.asarray(r, dtype=np.int64)
    d = int(d)
    out = np.ones(r.size, dtype=bool)  # stopping at K = 1 returns 1
    active = np.flatnonzero(source.bernoulli(r, d, r.size))
    k = 2
    while active.size:
        go_on = source.bernoulli(r[active], d, active.size)
        go_on &= source.bernoulli(1, k, active.size)
        out[active[~go_on]] = (k % 2) == 1
        active = active[go_on]
        k += 1
    return out


def bernoulli_exp(source: NoiseSource, k: np.ndarray, r: np.ndarray, d: int) -> np.ndarray:
    """Exact Bernoulli(exp(-(k + r/d))) for integers ``k >= 0``, ``0 <= r < d``.

    Algorithm 1 for gamma > 1: ``k`` Bernoulli(exp(-1)) draws that must all succeed, then
    Bernoulli(exp(-r/d)). The draws stop at the first failure.
    """
    out = bernoulli_exp_fraction(source, r, d)
    remaining = np.asarray(k, dtype=np.int64).copy()
    active = np.flatnonzero(out & (remaining > 0))
    while active.size:
        ok = bernoulli_exp_minus_one(source, active.size)
        out[active[~ok]] = False
        remaining[active] -= 1
        active = active[ok]
        active = active[remaining[active] > 0]
    return out


def geometric_exp_minus_one(source: NoiseSource, n: int) -> np.ndarray:
    """Number of successes before the first failure of Bernoulli(exp(-1)) draws (int64)."""
    v = np.zeros(n, dtype=np.int64)
    active = np.arange(n)
    while active.size:
        ok = bernoulli_exp_minus_one(source, active.size)
        active = active[ok]
        v[active] += 1
    return v


# ---------------------------------------------------------------------------------------------
# Algorithm 2: discrete Laplace
# ---------------------------------------------------------------------------------------------
def _laplace_round(source: NoiseSource, m: int, t: int, s: int) -> np.ndarray:
    """One vectorised pass of Algorithm 2 over ``m`` attempts: the accepted samples (i.i.d.)."""
    u = source.below(t, m)
    u = u[bernoulli_exp_fraction(source, u, t)]  # accept U with probability exp(-U/t)
    v = geometric_exp_minus_one(source, u.size)
    y = u + t * v  # X = U + tV ~ Geometric(1 - exp(-1/t))
    if s != 1:
        y //= s  # Y = floor(X/s)
    negative = source.bernoulli(1, 2, y.size)  # 16-bit words
    keep = ~(negative & (y == 0))  # the sign of 0 would count 0 twice
    return np.where(negative, -y, y)[keep]


def _laplace_acceptance(t: int, s: int) -> float:
    p_u = (1.0 - math.exp(-1.0)) / (t * -math.expm1(-1.0 / t))
    return p_u * (1.0 - 0.5 * -math.expm1(-s / t))


def sample_discrete_laplace(source: NoiseSource, n: int, b: Fraction) -> np.ndarray:
    """``n`` exact draws of the discrete Laplace ``P(x) ∝ exp(-|x|/b)`` (int64), ``b = t/s``."""
    check_laplace_fraction(b)
    t, s = b.numerator, b.denominator
    rate = _laplace_acceptance(t, s)
    out = np.empty(n, dtype=np.int64)
    filled = 0
    while filled < n:
        need = n - filled
        attempts = min(ROUND_SIZE, int(need / rate * 1.03) + 32)
        got = _laplace_round(source, attempts, t, s)[:need]
        out[filled : filled + got.size] = got
        filled += got.size
    return out


# ---------------------------------------------------------------------------------------------
# Algorithm 3: discrete Gaussian
# ---------------------------------------------------------------------------------------------
def _gaussian_exponent(
    abs_y: np.ndarray, cn: int, cd: int, d: int
) -> tuple[np.ndarray, np.ndarray]:
    """``(k, r)`` with ``(|Y| cd - cn)^2 = k d + r``, exactly (int64 where safe, else Python ints)."""
    k = np.empty(abs_y.size, dtype=np.int64)
    r = np.empty(abs_y.size, dtype=np.int64)
    safe = abs_y < (_INT64_SQUARE_LIMIT + cn) // cd
    a = abs_y[safe] * cd - cn
    safe_idx = np.flatnonzero(safe)
    fits = np.abs(a) < _INT64_SQUARE_LIMIT
    af = a[fits]
    sq = af * af  # < 2**62
    # Quotient from a float estimate, then exact remainder; the rare estimates that are off
    # (remainder outside [0, d)) are redone with integer division.
    kq = np.floor(sq / float(d)).astype(np.int64)
    rq = sq - kq * d
    off = np.flatnonzero((rq < 0) | (rq >= d))
    if off.size:
        kq[off], rq[off] = np.divmod(sq[off], d)
    k[safe_idx[fits]] = kq
    r[safe_idx[fits]] = rq
    slow = np.concatenate([np.flatnonzero(~safe), safe_idx[~fits]])
    for i in slow:  # far tail: exact Python integers (k clamped at 2**62, see module docstring)
        big = (int(abs_y[i]) * cd - cn) ** 2
        kk, rr = divmod(big, d)
        k[i] = min(kk, _K_CLAMP)
        r[i] = rr
    return k, r


def sample_discrete_gaussian(source: NoiseSource, n: int, sigma2: Fraction) -> np.ndarray:
    """``n`` exact draws of the discrete Gaussian ``P(x) ∝ exp(-x^2/(2 sigma2))`` (int64)."""
    check_gaussian_fraction(sigma2)
    t = gaussian_t(sigma2)
    c = sigma2 / t
    cn, cd = c.numerator, c.denominator
    d = 2 * t * cn * cd
    rate = 0.6  # refined from the observed acceptance after the first round
    out = np.empty(n, dtype=np.int64)
    filled = 0
    while filled < n:
        need = n - filled
        attempts = min(ROUND_SIZE, int(need / rate * 1.03) + 32)
        y = _laplace_round(source, attempts, t, 1)
        k, r = _gaussian_exponent(np.abs(y), cn, cd, d)
        got = y[bernoulli_exp(source, k, r, d)]
        rate = max(0.05, got.size / attempts)
        got = got[:need]
        out[filled : filled + got.size] = got
        filled += got.size
    return out
