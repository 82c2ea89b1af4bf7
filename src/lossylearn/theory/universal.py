"""Universal representations: ``R(Theta)`` and the rate penalty ``A(Theta)`` for finite sources.

Definitions (Zhang, Qian, Chen & Khisti 2021; Nguyen 2025). A representation ``Z`` of ``X``
serves a set ``Theta`` of targets if for each target there is a decoder ``p(xhat|Z)`` meeting it;
``R(Theta) = inf I(X; Z)`` over such ``Z``, and ``A(Theta) = R(Theta) - max_theta R(theta)``.

Method. For a finite ``Theta = {theta_1..theta_T}`` the tuple ``Z = (Xhat_1, ..., Xhat_T)`` of
reconstructions is itself a representation (decoder ``t`` reads coordinate ``t``), and for any
``Z`` and decoders ``I(X; Z) >= I(X; Xhat_1, ..., Xhat_T)`` by data processing. Hence

    R(Theta) = min I(X; Xhat_1..Xhat_T) over joint channels p(xhat_1..xhat_T | x)
               whose t-th marginal meets target t,

a least-mutual-information program over ``m^T`` outputs (``channel_program``). Before solving,
targets dominated by another target are dropped (a decoder for the stronger one serves both),
and so are targets reachable at rate zero (their decoder ignores ``Z``).

Where the result is exact and where it is a bound:

- ``(D, P)`` targets (TV perception): the program is convex. ``rate_bits`` is achieved by the
  returned encoder and ``lower_bound_bits`` is a dual certificate, so ``R(Theta)`` is exact to the
  solver's gap; so are the per-target ``R(D, P)`` and hence ``A(Theta)``.
- ``(D, C)`` targets: ``H(S | Xhat_t) <= C_t`` is not convex, so the program is solved by SLSQP
  from several starts. ``rate_bits`` is achievable, i.e. an upper bound on ``R(Theta)``; the
  proven lower bound is ``max_t`` of the per-target lower bounds. ``A(Theta)`` is then bracketed
  by ``penalty_lower_bits`` and ``penalty_bits``.
- A continuum ``Theta`` (e.g. a whole tradeoff curve) is handled by sampling it: the sample's
  ``R`` is a lower bound on the continuum's.
- The tuple alphabet grows as ``m^T``; past ``MAX_CHANNEL_ENTRIES`` channel entries the solver
  refuses rather than run for hours.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from lossylearn.errors import LossylearnError
from lossylearn.theory.channel_program import (
    ChannelProgram,
    CostConstraint,
    EntropyConstraint,
    TVConstraint,
)
from lossylearn.theory.channel_solver import MAX_CHANNEL_ENTRIES, solve_program
from lossylearn.theory.constrained import (
    ConstrainedPoint,
    solve_rate_distortion_classification,
    solve_rate_distortion_perception,
    split_joint,
)
from lossylearn.theory.info import FloatArray, as_distortion, as_nonneg, as_pmf

LN2 = math.log(2.0)

#: ``UniversalResult.exact`` holds when the achieved rate is within this many bits of the proven
#: lower bound. The margin covers the solver's accuracy, not rounding alone: SLSQP stops where the
#: objective changes by less than its ``ftol``, a point that moves with the processor's floating
#: point (BLAS kernels). Over OpenBLAS core types Prescott..SkylakeX, one and two BLAS threads and
#: inputs perturbed by 1 ulp to 1e-9 (relative), the certified gap of the two-target binary
#: ``(D, P)`` example stayed below 5e-8 bits (350 runs; 1.1e-6 before the solver re-solved short
#: SLSQP stops, 1.4e-4 before its dual fit dropped slack constraints); the dual bound itself is
#: certified to 1e-12 nats by Blahut-Arimoto. 1e-6 bits leaves a factor 20 over that, and is
#: far below the gap of a solver that stopped short (the best feasible start, left unoptimised, is
#: 0.02 bits above the optimum there and its gap says so).
EXACT_TOL_BITS = 1e-6


@dataclass(frozen=True)
class UniversalResult:
    """``R(Theta)`` and ``A(Theta)`` (bits) with the representation that achieves the rate.

    ``encoder[x, z]`` is the channel to the tuple index ``z`` of the ``active`` targets (row-major
    over their reconstructions); decoder ``t`` reads coordinate ``t`` of ``z``.
    ``lower_bound_bits`` and ``penalty_lower_bits`` are proven; ``rate_bits`` and
    ``penalty_bits`` are achieved. ``exact`` says the two agree to ``EXACT_TOL_BITS`` (1e-6 bits).
    """

    kind: str
    targets: list[tuple[float, float]]
    target_rates_bits: list[float]
    active: list[int]
    rate_bits: float
    lower_bound_bits: float
    penalty_bits: float
    penalty_lower_bits: float
    exact: bool
    encoder: FloatArray
    n_reconstructions: int

    def as_dict(self) -> dict[str, object]:
        """JSON-ready summary (without the encoder matrix)."""
        return {
            "kind": self.kind,
            "targets": [list(t) for t in self.targets],
            "target_rates_bits": self.target_rates_bits,
            "active_targets": self.active,
            "rate_bits": self.rate_bits,
            "lower_bound_bits": self.lower_bound_bits,
            "max_target_rate_bits": max(self.target_rates_bits),
            "penalty_bits": self.penalty_bits,
            "penalty_lower_bits": self.penalty_lower_bits,
            "exact": self.exact,
        }


def _prune(targets: list[tuple[float, float]], rates: list[float]) -> list[int]:
    """Indices of targets that need a share of the representation."""
    keep: list[int] = []
    for i, (d_i, c_i) in enumerate(targets):
        if rates[i] <= 1e-12:
            continue
        dominated = False
        for j, (d_j, c_j) in enumerate(targets):
            if j == i or rates[j] <= 1e-12:
                continue
            stronger = d_j <= d_i and c_j <= c_i
            if stronger and ((d_j, c_j) != (d_i, c_i) or j < i):
                dominated = True
                break
        if not dominated:
            keep.append(i)
    return keep


def _tuple_maps(m: int, t: int) -> list[FloatArray]:
    """``M_k[a, z] = 1`` when coordinate ``k`` of tuple ``z`` (row-major over ``m^t``) equals ``a``."""
    tuples = np.array(list(itertools.product(range(m), repeat=t)), dtype=np.int64).reshape(-1, t)
    maps = []
    for k in range(t):
        mk = np.zeros((m, tuples.shape[0]))
        mk[tuples[:, k], np.arange(tuples.shape[0])] = 1.0
        maps.append(mk)
    return maps


def _coupled_starts(p: FloatArray, channels: list[FloatArray], m: int) -> list[FloatArray]:
    """Feasible tuple channels built from per-target optimal channels: conditionally independent,
    and comonotone (all coordinates driven by one uniform variable per source symbol)."""
    n = p.size
    t = len(channels)
    size = m**t
    indep = np.ones((n, size))
    tuples = np.array(list(itertools.product(range(m), repeat=t))).reshape(-1, t)
    for k, ch in enumerate(channels):
        indep *= ch[:, tuples[:, k]]
    comono = np.zeros((n, size))
    strides = m ** np.arange(t - 1, -1, -1)
    for x in range(n):
        cdfs = [np.cumsum(ch[x]) for ch in channels]
        cuts = np.unique(np.clip(np.concatenate([[0.0, 1.0], *cdfs]), 0.0, 1.0))
        for lo, hi in itertools.pairwise(cuts):
            if hi - lo <= 0:
                continue
            u = 0.5 * (lo + hi)
            idx = [int(np.searchsorted(c, u, side="right")) for c in cdfs]
            idx = [min(i, m - 1) for i in idx]
            comono[x, int(np.dot(idx, strides))] += hi - lo
    comono /= comono.sum(axis=1, keepdims=True)
    return [comono, indep, 0.5 * (comono + indep)]


def _solve_universal(
    kind: str,
    p: FloatArray,
    d: FloatArray,
    targets: list[tuple[float, float]],
    points: list[ConstrainedPoint],
    extra: FloatArray | None,
) -> UniversalResult:
    n, m = d.shape
    rates = [float(pt.rate_bits) for pt in points]
    lowers = [float(pt.lower_bound_bits) for pt in points]
    active = _prune(targets, rates)
    best_single = max(rates)
    if len(active) <= 1:
        # One target (or none) needs the representation: R(Theta) = max R(theta), A = 0.
        k = active[0] if active else int(np.argmax(rates))
        encoder = points[k].channel
        return UniversalResult(
            kind=kind,
            targets=targets,
            target_rates_bits=rates,
            active=active,
            rate_bits=rates[k],
            lower_bound_bits=max(lowers),
            penalty_bits=0.0,
            penalty_lower_bits=0.0,
            exact=True,
            encoder=encoder,
            n_reconstructions=m,
        )
    t = len(active)
    if n * m**t > MAX_CHANNEL_ENTRIES:
        raise LossylearnError(
            f"{t} non-dominated targets over {m} reconstructions need {n * m**t} channel entries; "
            f"at most {MAX_CHANNEL_ENTRIES} are supported (use fewer targets)"
        )
    maps = _tuple_maps(m, t)
    costs = []
    tvs = []
    ents = []
    for k, i in enumerate(active):
        D, second = targets[i]
        costs.append(CostConstraint(d @ maps[k], D))
        if kind == "perception":
            tvs.append(TVConstraint(maps[k], p, min(second, 1.0)))
        else:
            assert extra is not None
            # Any C above log |S| is inactive; keep the bound finite for the solver.
            ceiling = math.log(extra.shape[1]) + 1.0
            ents.append(EntropyConstraint(extra, maps[k], min(second * LN2, ceiling)))
    program = ChannelProgram(p_x=p, n_outputs=m**t, costs=costs, tvs=tvs, entropies=ents)
    starts = _coupled_starts(p, [points[i].channel for i in active], m)
    sol = solve_program(program, starts)
    if sol.violation > 1e-7:
        raise LossylearnError(f"no joint representation found (violation {sol.violation:.2e})")
    rate = sol.rate / LN2
    if kind == "perception":
        lower = max(max(sol.lower_bound, 0.0) / LN2, max(lowers))
    else:
        lower = max(lowers)
    lower = float(min(lower, rate))
    return UniversalResult(
        kind=kind,
        targets=targets,
        target_rates_bits=rates,
        active=active,
        rate_bits=rate,
        lower_bound_bits=lower,
        penalty_bits=max(rate - best_single, 0.0),
        penalty_lower_bits=max(lower - best_single, 0.0),
        exact=bool(rate - lower <= EXACT_TOL_BITS),
        encoder=sol.channel,
        n_reconstructions=m,
    )


def _clean_targets(
    targets: Sequence[tuple[float, float]], second: str
) -> list[tuple[float, float]]:
    out = []
    for item in targets:
        if len(item) != 2:
            raise LossylearnError(
                f"each target must be a pair (D, {second}); got {len(item)} values"
            )
        out.append((as_nonneg(item[0], "D"), as_nonneg(item[1], second, allow_inf=True)))
    if not out:
        raise LossylearnError("targets must not be empty")
    return out


def universal_rdp(
    p_x: ArrayLike, distortion: ArrayLike, targets: Sequence[tuple[float, float]]
) -> UniversalResult:
    """``R(Theta)`` and ``A(Theta)`` for ``(D, P)`` targets (TV perception); exact (certified)."""
    p = as_pmf(p_x, "p_x")
    d = as_distortion(distortion, p.size)
    clean = _clean_targets(targets, "P")
    points = [solve_rate_distortion_perception(p, d, D, P) for D, P in clean]
    return _solve_universal("perception", p, d, clean, points, None)


def universal_rdc(
    p_xs: ArrayLike, distortion: ArrayLike, targets: Sequence[tuple[float, float]]
) -> UniversalResult:
    """``R(Theta)`` and ``A(Theta)`` for ``(D, C)`` targets (``C`` bounds ``H(S|Xhat)`` in bits);
    an achievable rate with a proven lower bound (the problem is not convex)."""
    joint, p, cond = split_joint(p_xs)
    d = as_distortion(distortion, p.size)
    clean = _clean_targets(targets, "C")
    points = [solve_rate_distortion_classification(joint, d, D, C) for D, C in clean]
    return _solve_universal("classification", p, d, clean, points, cond)


def rate_penalty(result: UniversalResult) -> float:
    """``A(Theta) = R(Theta) - max_theta R(theta)`` in bits (the achieved value)."""
    return result.penalty_bits
