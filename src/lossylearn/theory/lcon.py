"""Numerical checks of the LCoN theorem (Isik & Weissman), and its storage and privacy figures.

Setting: ``Z_i = X_i + N_i (mod Q)`` with ``X`` stationary (i.i.d. or Markov) and ``N_i`` i.i.d.,
compressed under the difference distortion ``rho_N(a) = log 1/P(N = a)`` (bits here).

- Theorem (eq. 9): ``R(Z^k, H(N)) = H(Z^k)/k - H(N)``, attained uniquely (for non-singular noise)
  by the pair ``(Z^k, X^k)``. ``lcon_check`` computes the left side by Blahut-Arimoto on the
  ``Q^k``-symbol block source ``Z^k`` with the per-letter block distortion, finding the slope for
  ``D = H(N)``, and compares it with the right side; it also measures how far the optimal test
  channel's reconstruction law is from ``P_{X^k}`` (posterior sampling means they are equal) and
  how far the joint law of (``Z^k``, reconstruction) is from ``P_{Z^k, X^k}``.
- Corollary V.1: if ``N = U + W`` with ``U, W`` independent and the code is matched to ``W``
  (distortion ``rho_W`` at level ``H(W) < H(N)``), reconstructions follow ``X + U``: only part of
  the noise is removed. ``corollary_check`` verifies it the same way.
- Storage rate (13) ``H(Z^n)/n - H(N)`` and the privacy-leakage bound (16)
  ``I(X^n; Z^n)/n``; the two are equal, and both are at most ``log Q - H(N)`` (17).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from numpy.typing import ArrayLike

from lossylearn.errors import LossylearnError
from lossylearn.records import Record
from lossylearn.theory.info import as_pmf, entropy, mutual_information, total_variation
from lossylearn.theory.rd import RDPoint, solve_rate_distortion
from lossylearn.theory.sources import (
    FiniteSource,
    add_noise,
    block_distortion,
    is_nonsingular,
    joint_block_law,
    noise_distortion,
)


@dataclass(frozen=True)
class LConRow(Record):
    """One block length of the LCoN check (rates in bits per source symbol)."""

    k: int
    rate_solver_bits: float
    rate_formula_bits: float
    lower_bound_bits: float
    recon_tv: float
    joint_tv: float
    distortion: float
    slope: float
    iterations: int


@dataclass(frozen=True)
class CorollaryRow(Record):
    """One block length of the Corollary V.1 check (rates in bits per source symbol)."""

    k: int
    rate_solver_bits: float
    rate_formula_bits: float
    tv_to_partially_noisy: float
    tv_to_clean: float


def storage_rate(source: FiniteSource, p_n: ArrayLike, k: int) -> float:
    """Eq. (13): ``H(Z^k)/k - H(N)`` bits per component, the least storage for LCoN data."""
    noise = as_pmf(p_n, "p_n")
    _check_alphabet(source, noise)
    return entropy(add_noise(source.block_law(k), noise)) / k - entropy(noise)


def privacy_leakage_bound(source: FiniteSource, p_n: ArrayLike, k: int) -> float:
    """Eq. (16): ``I(X^k; Z^k)/k`` bits per component, computed from the joint law; it bounds the
    normalised leakage ``I(X^k; stored reconstructions)/k`` by data processing."""
    noise = as_pmf(p_n, "p_n")
    _check_alphabet(source, noise)
    return mutual_information(joint_block_law(source.block_law(k), noise)) / k


def leakage_ceiling(p_n: ArrayLike) -> float:
    """Eq. (17): ``log2 Q - H(N)``, the bound on (13) and (16) for every source."""
    noise = as_pmf(p_n, "p_n")
    return math.log2(noise.size) - entropy(noise)


def _check_alphabet(source: FiniteSource, noise: np.ndarray) -> None:
    if noise.size != source.alphabet:
        raise LossylearnError(
            f"noise alphabet {noise.size} differs from the source alphabet {source.alphabet}"
        )


class _Block(NamedTuple):
    """One block length of a check: the laws of ``X^k``, of the part kept ``Y^k`` and of ``Z^k``,
    and the solver's point for ``Z^k`` under the noise's distortion at ``D = H(N)``."""

    k: int
    clean: np.ndarray
    kept: np.ndarray
    p_zk: np.ndarray
    point: RDPoint


def _matched_blocks(
    source: FiniteSource,
    noise: np.ndarray,
    ks: Iterable[int],
    tol: float,
    max_iter: int,
    kept: np.ndarray | None = None,
) -> Iterator[_Block]:
    """For each block length: ``Y = X + kept`` (``Y = X`` when ``kept`` is None) and
    ``Z = Y + noise``, compressed under ``rho_noise`` at ``D = H(noise)`` (the matched code)."""
    rho, level = noise_distortion(noise), entropy(noise)
    for k in ks:
        law = source.block_law(k)
        y = law if kept is None else add_noise(law, kept)
        p_zk = add_noise(y, noise)
        d = block_distortion(rho, k)
        point = solve_rate_distortion(p_zk.ravel(), d, level, tol=tol, max_iter=max_iter)
        yield _Block(k, law, y, p_zk, point)


def lcon_check(
    source: FiniteSource,
    p_n: ArrayLike,
    ks: tuple[int, ...] = (1, 2, 3),
    *,
    tol: float = 1e-11,
    max_iter: int = 10_000,
) -> list[LConRow]:
    """Check eq. (9) and posterior sampling for each block length in ``ks`` (see module doc).

    ``tol`` is the Blahut-Arimoto certificate tolerance (nats) and ``max_iter`` its cap.
    """
    noise = as_pmf(p_n, "p_n")
    _check_alphabet(source, noise)
    if not is_nonsingular(noise):
        raise LossylearnError(
            "the noise law is singular (its circulant matrix is not invertible): the optimal "
            "reconstruction law is then not unique and the theorem's second part does not apply"
        )
    h_n = entropy(noise)
    rows = []
    for k, law, _, p_zk, point in _matched_blocks(source, noise, ks, tol, max_iter):
        joint_true = joint_block_law(law, noise)
        joint_solver = p_zk.ravel()[:, None] * point.channel
        rows.append(
            LConRow(
                k=int(k),
                rate_solver_bits=point.rate_bits / k,
                rate_formula_bits=entropy(p_zk) / k - h_n,
                lower_bound_bits=point.lower_bound_bits / k,
                recon_tv=total_variation(point.output_law, law.ravel()),
                joint_tv=total_variation(joint_solver, joint_true),
                distortion=point.distortion,
                slope=point.slope,
                iterations=point.iterations,
            )
        )
    return rows


def compose_noise(p_u: ArrayLike, p_w: ArrayLike) -> np.ndarray:
    """The law of ``U + W (mod Q)`` for independent ``U`` and ``W``."""
    u = as_pmf(p_u, "p_u")
    w = as_pmf(p_w, "p_w")
    if u.size != w.size:
        raise LossylearnError(f"U and W have different alphabets ({u.size} vs {w.size})")
    q = u.size
    idx = (np.arange(q)[:, None] + np.arange(q)[None, :]) % q
    out = np.zeros(q)
    np.add.at(out, idx, u[:, None] * w[None, :])
    return out


def corollary_check(
    source: FiniteSource,
    p_u: ArrayLike,
    p_w: ArrayLike,
    ks: tuple[int, ...] = (1, 2),
    *,
    tol: float = 1e-11,
    max_iter: int = 10_000,
) -> list[CorollaryRow]:
    """Corollary V.1: compress ``Z = X + U + W`` under ``rho_W`` at ``D = H(W)``; the
    reconstructions should follow ``X + U`` (``tv_to_partially_noisy`` near 0), not ``X``."""
    u = as_pmf(p_u, "p_u")
    w = as_pmf(p_w, "p_w")
    _check_alphabet(source, u)
    if not is_nonsingular(w):
        raise LossylearnError("the law of W is singular; the corollary's uniqueness does not apply")
    h_w = entropy(w)
    rows = []
    for k, law, partial, p_zk, point in _matched_blocks(source, w, ks, tol, max_iter, kept=u):
        rows.append(
            CorollaryRow(
                k=int(k),
                rate_solver_bits=point.rate_bits / k,
                rate_formula_bits=entropy(p_zk) / k - h_w,
                tv_to_partially_noisy=total_variation(point.output_law, partial.ravel()),
                tv_to_clean=total_variation(point.output_law, law.ravel()),
            )
        )
    return rows
