"""Closed-form rate functions, used as oracles for the numerical solvers.

Gaussian source ``N(0, sigma^2)``, squared error, rates in nats:

- ``gaussian_rd``: ``max(0, 1/2 ln(sigma^2 / D))``.
- ``gaussian_rdp``: squared-W2 perception (Zhang, Qian, Chen & Khisti 2021). Derived here from the
  distortion-perception region of a Gaussian representation ``Z`` of rate ``R``: with
  ``U = E[X|Z]``, ``s^2 = Var U = sigma^2 (1 - e^{-2R})``, the decoder ``a U`` (plus independent
  noise, which never helps the distortion) reaches output deviation ``w``, hence perception
  ``(sigma - w)^2``, at distortion ``sigma^2 + w^2 - 2 s w`` (``gaussian_rdp_distortion``).
  Minimising over ``w >= sigma - sqrt(P)`` and inverting gives the formula in REFERENCE.md. The
  region depends on ``Z`` only through ``R``, so one representation serves every ``(D, P)``.
- ``gaussian_rdc``: a Gaussian label ``S = g X + V``, ``V ~ N(0, tau^2)``, with the constraint
  ``h(S | Xhat) <= C`` (nats). The conditional entropy-power inequality gives
  ``h(S|Xhat) >= 1/2 ln(g^2 e^{2 h(X|Xhat)} + 2 pi e tau^2)``, so the constraint caps
  ``h(X|Xhat)`` at ``1/2 ln(2 pi e delta_C)``, ``delta_C = (e^{2C}/(2 pi e) - tau^2) / g^2``; the
  Gaussian backward channel with error variance ``min(D, delta_C)`` meets both bounds, so
  ``R(D, C) = max(0, 1/2 ln(sigma^2 / min(D, delta_C)))``.

Binary source ``Bernoulli(p)``, ``p <= 1/2``, Hamming distortion, rates in bits:

- ``binary_rd``: ``Hb(p) - Hb(D)`` for ``D < p``, else 0.
- ``binary_rdp``: total-variation perception. The unconstrained optimum (backward BSC(D)) has
  output mean ``(p - D)/(1 - 2D)``, i.e. perception ``D (1 - 2p)/(1 - 2D)``; the constraint is
  inactive for ``D <= P / (1 - 2(p - P))``. Otherwise it binds: the output law is
  ``Bernoulli(p - P)`` and, with both marginals and ``D`` fixed, the 2x2 joint law is determined:
  ``P(1,1) = (2p - P - D)/2``, ``P(1,0) = (D + P)/2``, ``P(0,1) = (D - P)/2``. The rate is
  ``Hb(p) + Hb(p - P) - H(joint)`` (never negative: it is a mutual information), and 0 once
  ``D >= 2p(1-p) - P(1-2p)`` (independent output). For ``P >= p`` the constraint never binds.
- ``binary_rdc``: label ``S = X xor V``, ``V ~ Bernoulli(eps)``, constraint ``H(S|Xhat) <= C``
  bits. Mrs. Gerber's lemma gives ``H(S|Xhat) >= Hb(eps * Hb^{-1}(H(X|Xhat)))`` (``*`` the binary
  convolution), so the constraint caps ``H(X|Xhat)`` at ``Hb(delta_C)``,
  ``delta_C = (Hb^{-1}(C) - eps)/(1 - 2 eps)``; the backward BSC(min(D, delta_C, p)) meets it with
  equality: ``R(D, C) = Hb(p) - Hb(min(D, delta_C, p))``, infeasible for ``C < Hb(eps)``.
"""

from __future__ import annotations

import math

from lossylearn.errors import LossylearnError
from lossylearn.theory.info import (
    as_nonneg,
    as_positive,
    binary_entropy,
    binary_entropy_inverse,
    entropy_of,
    plain,
)


def gaussian_rd(D: float, sigma: float = 1.0) -> float:
    """``R(D)`` of ``N(0, sigma^2)`` under squared error, in nats (``inf`` at ``D = 0``)."""
    D = as_nonneg(D, "D")
    s2 = as_positive(sigma, "sigma") ** 2
    if D == 0:
        return math.inf
    return max(0.0, 0.5 * math.log(s2 / D))


def gaussian_rdp(D: float, P: float, sigma: float = 1.0) -> float:
    """``R(D, P)`` of ``N(0, sigma^2)``: squared error ``D``, squared-W2 perception ``P``; nats."""
    D = as_nonneg(D, "D")
    P = as_nonneg(P, "P", allow_inf=True)
    s = as_positive(sigma, "sigma")
    s2 = s * s
    if D == 0:
        return math.inf
    w = s - math.sqrt(P)
    if w <= 0:
        return gaussian_rd(D, s)
    if D >= s2 + w * w:
        return 0.0
    if D < s2 and s - math.sqrt(s2 - D) <= math.sqrt(P):
        return 0.5 * math.log(s2 / D)
    sw = 0.5 * (s2 + w * w - D)
    return 0.5 * math.log(s2 * w * w / (s2 * w * w - sw * sw))


def gaussian_rdp_distortion(R: float, P: float, sigma: float = 1.0) -> float:
    """Least squared error reachable from a rate-``R`` (nats) Gaussian representation of
    ``N(0, sigma^2)`` by a decoder whose output is within squared-W2 ``P`` of the source."""
    R = as_nonneg(R, "R", allow_inf=True)
    P = as_nonneg(P, "P", allow_inf=True)
    sg = as_positive(sigma, "sigma")
    s = sg * math.sqrt(-math.expm1(-2.0 * R))
    w = sg - math.sqrt(P)
    if w <= s:
        return sg * sg - s * s
    return sg * sg + w * w - 2.0 * s * w


def gaussian_universal_rdp(targets: list[tuple[float, float]], sigma: float = 1.0) -> float:
    """``R(Theta)`` (nats) for Gaussian representations of ``N(0, sigma^2)``: the least rate whose
    distortion-perception region (``gaussian_rdp_distortion``) contains every ``(D, P)`` target.

    Because that region grows with the rate alone, this equals ``max gaussian_rdp(D, P)``: the
    rate penalty ``A(Theta)`` is 0 (Zhang et al. 2021). It is computed here by bisection on the
    region, independently of ``gaussian_rdp``, so that the equality is a check, not a definition.
    """
    if not targets:
        raise LossylearnError("targets must not be empty")
    clean = [(as_nonneg(D, "D"), as_nonneg(P, "P", allow_inf=True)) for D, P in targets]
    if any(D == 0 for D, _ in clean):
        return math.inf

    def ok(rate: float) -> bool:
        return all(gaussian_rdp_distortion(rate, P, sigma) <= D for D, P in clean)

    lo, hi = 0.0, 1.0
    if ok(lo):
        return 0.0
    while not ok(hi):
        hi *= 2.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if ok(mid):
            hi = mid
        else:
            lo = mid
        if hi - lo <= 1e-15 * max(1.0, hi):
            break
    return hi


def gaussian_rdc(
    D: float, C: float, sigma: float = 1.0, *, gain: float = 1.0, label_noise: float = 1.0
) -> float:
    """``R(D, C)`` (nats) of ``N(0, sigma^2)`` with label ``S = gain X + N(0, label_noise^2)`` and
    classification constraint ``h(S | Xhat) <= C`` (differential entropy, nats)."""
    D = as_nonneg(D, "D")
    s = as_positive(sigma, "sigma")
    g = float(gain)
    if not math.isfinite(g) or g == 0:
        raise LossylearnError(f"gain must be a finite non-zero number; got {plain(gain)}")
    tau = as_positive(label_noise, "label_noise")
    C = float(C)
    if math.isnan(C):
        raise LossylearnError("C must be a number (nats); got nan")
    floor = 0.5 * math.log(2 * math.pi * math.e * tau * tau)
    if not C >= floor:
        raise LossylearnError(
            f"C = {C:g} nats is below h(S|X) = {floor:g}: no reconstruction can do better"
        )
    delta_c = (math.exp(2 * C) / (2 * math.pi * math.e) - tau * tau) / (g * g)
    delta = min(D, delta_c)
    if delta <= 0:
        return math.inf
    return max(0.0, 0.5 * math.log(s * s / delta))


def _check_binary(p: float) -> float:
    p = float(p)
    if not 0.0 < p <= 0.5:
        raise LossylearnError(
            f"p must lie in (0, 1/2]; got {plain(p)} (relabel the symbols if p > 1/2)"
        )
    return p


def binary_rd(p: float, D: float) -> float:
    """``R(D)`` in bits of a Bernoulli(p) source (``p <= 1/2``) under Hamming distortion."""
    p = _check_binary(p)
    D = as_nonneg(D, "D")
    return 0.0 if D >= p else binary_entropy(p) - binary_entropy(D)


def binary_rdp(p: float, D: float, P: float) -> float:
    """``R(D, P)`` in bits of Bernoulli(p), Hamming distortion, total-variation perception."""
    p = _check_binary(p)
    D = as_nonneg(D, "D")
    P = min(as_nonneg(P, "P", allow_inf=True), p)
    if D <= P / (1.0 - 2.0 * (p - P)):
        return binary_rd(p, D)
    if D >= 2.0 * p * (1.0 - p) - P * (1.0 - 2.0 * p):
        return 0.0
    joint = [(2 * p - P - D) / 2, (D + P) / 2, (D - P) / 2, 1 - (2 * p - P + D) / 2]
    return max(binary_entropy(p) + binary_entropy(p - P) - entropy_of(joint), 0.0)


def binary_rdc(p: float, D: float, C: float, *, flip: float) -> float:
    """``R(D, C)`` in bits of Bernoulli(p), Hamming distortion, label ``S = X xor Bernoulli(flip)``
    and classification constraint ``H(S | Xhat) <= C`` bits."""
    p = _check_binary(p)
    D = as_nonneg(D, "D")
    eps = float(flip)
    if not 0.0 <= eps < 0.5:
        raise LossylearnError(f"flip must lie in [0, 1/2); got {plain(flip)}")
    C = as_nonneg(C, "C", allow_inf=True)
    if C < binary_entropy(eps) - 1e-12:
        raise LossylearnError(
            f"C = {C:g} bits is below H(S|X) = {binary_entropy(eps):g}: infeasible"
        )
    delta_c = (binary_entropy_inverse(min(C, 1.0)) - eps) / (1.0 - 2.0 * eps)
    delta = min(D, max(delta_c, 0.0), p)
    return binary_entropy(p) - binary_entropy(delta)
