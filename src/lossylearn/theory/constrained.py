"""Rate-distortion-perception ``R(D, P)`` and rate-distortion-classification ``R(D, C)``.

Both are least-mutual-information problems over test channels (see ``channel_program``):

- ``R(D, P) = min I(X; Xhat)`` s.t. ``E d(X, Xhat) <= D`` and ``TV(p_X, p_Xhat) <= P``. Convex.
  If the unconstrained ``R(D)`` channel (Blahut-Arimoto) already meets the perception
  constraint it is returned with Blahut's certificate; otherwise SLSQP solves the program and a
  dual bound certifies it. Infeasible targets are detected exactly by a linear program (the least
  distortion under the perception constraint).
- ``R(D, C) = min I(X; Xhat)`` s.t. ``E d(X, Xhat) <= D`` and ``H(S | Xhat) <= C`` for a label
  ``S`` with joint law ``p_xs`` (Markov ``S - X - Xhat``). Not convex: SLSQP runs from several
  starting channels (the ``R(D)`` channel, the least-distortion map, mixtures of the two and
  seeded random channels) and keeps the best. The rate is achievable; the reported lower bound
  ``max(R(D), H(S) - C)`` (data processing: ``I(X; Xhat) >= I(S; Xhat) >= H(S) - C``) is proven,
  so the gap between the two is an honest error bar, zero when either bound is tight.

All rates are in bits; ``C`` is in bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.optimize import linprog

from lossylearn.errors import LossylearnError
from lossylearn.theory.channel_program import (
    ChannelProgram,
    CostConstraint,
    EntropyConstraint,
    TVConstraint,
    conditional_entropy_nats,
)
from lossylearn.theory.channel_solver import solve_program
from lossylearn.theory.info import FloatArray, as_distortion, as_nonneg, as_pmf, entropy
from lossylearn.theory.rd import RDPoint, distortion_range, solve_rate_distortion

LN2 = math.log(2.0)
DIVERGENCES = ("tv",)


@dataclass(frozen=True)
class ConstrainedPoint:
    """The optimum of ``R(D, P)`` or ``R(D, C)`` found by the solver.

    ``constraint_value`` is the channel's perception (TV) or ``H(S|Xhat)`` in bits;
    ``lower_bound_bits`` is a proven lower bound on the true optimum and ``certified`` says whether
    it is tight to solver precision by construction (convex programs).
    """

    rate_bits: float
    lower_bound_bits: float
    distortion: float
    constraint_value: float
    channel: FloatArray
    output_law: FloatArray
    certified: bool


def _expected(p: FloatArray, d: FloatArray, channel: FloatArray) -> float:
    return float(p @ (channel * np.where(channel > 0, d, 0.0)).sum(axis=1))


def _unconstrained(p: FloatArray, d: FloatArray, rd: RDPoint, value: float) -> ConstrainedPoint:
    """The ``R(D)`` point ``rd`` as the answer, when its channel already meets the constraint
    (``value`` is the constraint's value there); Blahut's certificate carries over."""
    return ConstrainedPoint(
        rate_bits=rd.rate_bits,
        lower_bound_bits=rd.lower_bound_bits,
        distortion=_expected(p, d, rd.channel),
        constraint_value=value,
        channel=rd.channel,
        output_law=p @ rd.channel,
        certified=True,
    )


def least_distortion_under_perception(p_x: ArrayLike, distortion: ArrayLike, P: float) -> float:
    """The least ``E d(X, Xhat)`` over channels with ``TV(p_X, p_Xhat) <= P`` (a linear program)."""
    p = as_pmf(p_x, "p_x")
    d = as_distortion(distortion, p.size)
    P = min(as_nonneg(P, "P", allow_inf=True), 1.0)
    n, m = d.shape
    if m != n:
        raise LossylearnError(
            "a perception constraint needs the reconstruction alphabet = source's"
        )
    # Variables: joint pi (n*m) then slacks t (m): min <pi, d>
    # rows of pi sum to p; t_y >= p_y - sum_x pi[x, y]; sum t <= P.
    finite = np.isfinite(d)
    c = np.concatenate([np.where(finite, d, 0.0).ravel(), np.zeros(m)])
    a_eq = np.zeros((n, n * m + m))
    for x in range(n):
        a_eq[x, x * m : (x + 1) * m] = 1.0
    a_ub = np.zeros((m + 1, n * m + m))
    for y in range(m):
        a_ub[y, y : n * m : m] = -1.0
        a_ub[y, n * m + y] = -1.0
    a_ub[m, n * m :] = 1.0
    b_ub = np.concatenate([-p, [P]])
    bounds = [(0.0, None if f else 0.0) for f in finite.ravel()] + [(0.0, None)] * m
    res = linprog(c, A_ub=a_ub, b_ub=b_ub, A_eq=a_eq, b_eq=p, bounds=bounds, method="highs")
    if res.status != 0:
        raise LossylearnError(f"the least-distortion linear program failed: {res.message}")
    return float(res.fun)


def solve_rate_distortion_perception(
    p_x: ArrayLike,
    distortion: ArrayLike,
    D: float,
    P: float,
    divergence: str = "tv",
    *,
    ftol: float = 1e-13,
    max_iter: int = 1000,
) -> ConstrainedPoint:
    """``R(D, P)`` with its channel and certificate (see :class:`ConstrainedPoint`)."""
    if divergence not in DIVERGENCES:
        raise LossylearnError(f"unknown divergence {divergence!r}; known: {', '.join(DIVERGENCES)}")
    p = as_pmf(p_x, "p_x")
    d = as_distortion(distortion, p.size)
    D = as_nonneg(D, "D")
    P = min(as_nonneg(P, "P", allow_inf=True), 1.0)
    n, m = d.shape
    if m != n:
        raise LossylearnError(
            f"TV perception compares p_X and p_Xhat, so the distortion matrix must be square; got {d.shape}"
        )
    dmin_p = least_distortion_under_perception(p, d, P)
    if D < dmin_p - 1e-12:
        raise LossylearnError(
            f"D = {D:g} is below {dmin_p:g}, the least distortion with perception <= {P:g}"
        )
    dmin, _ = distortion_range(p, d)
    rd: RDPoint = solve_rate_distortion(p, d, max(D, dmin))
    tv_rd = 0.5 * float(np.abs(p @ rd.channel - p).sum())
    if tv_rd <= P + 1e-12 and _expected(p, d, rd.channel) <= D + 1e-9:
        return _unconstrained(p, d, rd, tv_rd)
    program = ChannelProgram(
        p_x=p,
        n_outputs=m,
        costs=(CostConstraint(d, D),),
        tvs=(TVConstraint(np.eye(m), p, P),),
    )
    identity = np.eye(n)
    starts = [identity, 0.5 * identity + 0.5 * rd.channel]
    sol = solve_program(program, starts, ftol=ftol, max_iter=max_iter)
    if sol.violation > 1e-7:
        raise LossylearnError(
            f"no channel meets D = {D:g}, P = {P:g} (solver violation {sol.violation:.2e})"
        )
    q = p @ sol.channel
    return ConstrainedPoint(
        rate_bits=sol.rate / LN2,
        lower_bound_bits=max(sol.lower_bound, 0.0) / LN2,
        distortion=_expected(p, d, sol.channel),
        constraint_value=0.5 * float(np.abs(q - p).sum()),
        channel=sol.channel,
        output_law=q,
        certified=True,
    )


def rate_distortion_perception(
    p_x: ArrayLike, distortion: ArrayLike, D: float, P: float, divergence: str = "tv"
) -> float:
    """``R(D, P)`` in bits: least ``I(X; Xhat)`` with ``E d <= D`` and ``TV(p_X, p_Xhat) <= P``."""
    return solve_rate_distortion_perception(p_x, distortion, D, P, divergence).rate_bits


def split_joint(p_xs: ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Validate a joint law ``p_xs[x, s]``; return it, the law of ``X`` and ``p(s|x)``."""
    joint = as_pmf(p_xs, "p_xs")
    if joint.ndim != 2:
        raise LossylearnError(f"p_xs must be a 2-D joint law of (X, S); got shape {joint.shape}")
    p = joint.sum(axis=1)
    cond = np.where(p[:, None] > 0, joint / np.maximum(p[:, None], 1e-300), 1.0 / joint.shape[1])
    return joint, p, cond


def label_floor_bits(p_xs: ArrayLike) -> float:
    """``H(S|X)`` in bits: the least ``H(S|Xhat)`` any reconstruction can reach."""
    joint, p, _ = split_joint(p_xs)
    return entropy(joint) - entropy(p)


def _classification_starts(
    p: FloatArray, d: FloatArray, rd_channel: FloatArray, rng: np.random.Generator, n_random: int
) -> list[FloatArray]:
    n, m = d.shape
    sharp = np.zeros((n, m))
    sharp[np.arange(n), np.argmin(d, axis=1)] = 1.0
    starts = [rd_channel, sharp, 0.5 * (rd_channel + sharp), 0.8 * sharp + 0.2 * rd_channel]
    for _ in range(n_random):
        w = rng.dirichlet(np.full(m, 0.5), size=n)
        starts.append(0.5 * w + 0.5 * sharp)
    return starts


def solve_rate_distortion_classification(
    p_xs: ArrayLike,
    distortion: ArrayLike,
    D: float,
    C: float,
    *,
    n_random_starts: int = 6,
    seed: int = 0,
    ftol: float = 1e-13,
    max_iter: int = 1000,
) -> ConstrainedPoint:
    """``R(D, C)`` with its channel (see :class:`ConstrainedPoint`); ``C`` bounds ``H(S|Xhat)``
    in bits. ``n_random_starts`` seeded random starting channels join the structured ones."""
    joint, p, cond = split_joint(p_xs)
    d = as_distortion(distortion, p.size)
    D = as_nonneg(D, "D")
    C = as_nonneg(C, "C", allow_inf=True)
    floor = label_floor_bits(joint)
    if C < floor - 1e-12:
        raise LossylearnError(f"C = {C:g} bits is below H(S|X) = {floor:g}: infeasible")
    dmin, _ = distortion_range(p, d)
    if D < dmin - 1e-12:
        raise LossylearnError(f"D = {D:g} is below the least achievable distortion {dmin:g}")
    rd = solve_rate_distortion(p, d, max(D, dmin))
    h_s = entropy(joint.sum(axis=0))
    lower = max(rd.lower_bound_bits, h_s - C)
    h_rd = conditional_entropy_nats(p, rd.channel, cond, np.eye(d.shape[1])) / LN2
    if h_rd <= C + 1e-12:
        return _unconstrained(p, d, rd, h_rd)
    m = d.shape[1]
    program = ChannelProgram(
        p_x=p,
        n_outputs=m,
        costs=(CostConstraint(d, D),),
        entropies=(EntropyConstraint(cond, np.eye(m), C * LN2),),
    )
    rng = np.random.default_rng(seed)
    starts = _classification_starts(p, d, rd.channel, rng, n_random_starts)
    sol = solve_program(program, starts, ftol=ftol, max_iter=max_iter)
    if sol.violation > 1e-7:
        raise LossylearnError(
            f"no channel found meeting D = {D:g}, C = {C:g} bits (violation {sol.violation:.2e})"
        )
    rate = sol.rate / LN2
    return ConstrainedPoint(
        rate_bits=rate,
        lower_bound_bits=min(lower, rate),
        distortion=_expected(p, d, sol.channel),
        constraint_value=conditional_entropy_nats(p, sol.channel, cond, np.eye(m)) / LN2,
        channel=sol.channel,
        output_law=p @ sol.channel,
        certified=rate - lower <= 1e-9,
    )


def rate_distortion_classification(
    p_xs: ArrayLike, distortion: ArrayLike, D: float, C: float
) -> float:
    """``R(D, C)`` in bits for the joint law ``p_xs[x, s]`` of source and label:
    least ``I(X; Xhat)`` with ``E d <= D`` and ``H(S | Xhat) <= C`` bits."""
    return solve_rate_distortion_classification(p_xs, distortion, D, C).rate_bits
