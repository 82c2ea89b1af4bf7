"""The solver of channel programs (:mod:`~lossylearn.theory.channel_program`): SLSQP on the channel.

The channel (and one slack vector per TV constraint, making them linear) is optimised by SLSQP
(scipy) with exact gradients: ``dI/dW[x,y] = p_x log(W[x,y] / q_y)`` and
``dH(S|Y')/dJ[s,y'] = -log(J[s,y'] / J[.,y'])`` for ``J`` the joint law of ``(S, Y')``.

- Without conditional-entropy constraints the problem is convex, so the SLSQP optimum is global,
  and it is certified by :func:`~lossylearn.theory.channel_dual.dual_lower_bound`. SLSQP's stopping
  rule on the primal can fire short of the optimum at a point that moves with the processor's
  rounding, so a convex program whose gap exceeds ``POLISH_GAP`` is re-solved from its best channel
  (up to ``POLISH_RESTARTS`` times).
- ``H(S|Y) <= C`` is not convex in ``W`` (conditional entropy is concave), so with such
  constraints SLSQP finds local optima; the solver runs from several starting channels and keeps
  the best feasible one. Its rate is achievable (an upper bound on the true minimum) and carries
  no certificate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy.optimize import minimize

from lossylearn.errors import LossylearnError
from lossylearn.theory.channel_dual import dual_lower_bound
from lossylearn.theory.channel_program import ChannelProgram, mutual_information_nats, violation
from lossylearn.theory.info import FloatArray

__all__ = ["MAX_CHANNEL_ENTRIES", "ProgramSolution", "solve_program"]

#: Largest number of channel entries the SLSQP solver accepts: its work grows as the cube
#: (128 entries take about 2 s, 256 about 20 s on one core).
MAX_CHANNEL_ENTRIES = 256

#: A convex program whose certified gap (nats) exceeds ``POLISH_GAP`` is re-solved from its best
#: channel, at most ``POLISH_RESTARTS`` times.
POLISH_GAP = 1e-10
POLISH_RESTARTS = 2


@dataclass(frozen=True)
class ProgramSolution:
    """The best channel found, its rate (nats) and, for convex programs, a certified lower bound.

    ``violation`` is the largest constraint violation of ``channel`` (0 when feasible); for convex
    programs ``lower_bound`` is a proven lower bound on the optimum (``-inf`` if none was found).
    """

    channel: FloatArray
    rate: float
    lower_bound: float
    violation: float
    starts: int


class _Layout:
    """Packing of (channel over live source symbols, TV slacks) into one SLSQP vector."""

    def __init__(self, program: ChannelProgram):
        self.program = program
        self.live = program.p_x > 0
        self.p = program.p_x[self.live]
        self.n = int(self.live.sum())
        self.m = program.n_outputs
        self.nw = self.n * self.m
        sizes = [tv.mapping.shape[0] for tv in program.tvs]
        self.slack_at = np.cumsum([self.nw, *sizes])[:-1].tolist()
        self.size = self.nw + sum(sizes)

    def channel(self, z: FloatArray) -> FloatArray:
        return z[: self.nw].reshape(self.n, self.m)

    def full_channel(self, z: FloatArray) -> FloatArray:
        w = np.clip(self.channel(z), 0.0, None)
        w = w / np.maximum(w.sum(axis=1, keepdims=True), 1e-300)
        full = np.empty((self.program.p_x.size, self.m))
        full[self.live] = w
        q = self.p @ w
        full[~self.live] = q[None, :]
        return full

    def pack(self, channel: FloatArray) -> FloatArray:
        z = np.zeros(self.size)
        w = channel[self.live]
        z[: self.nw] = w.ravel()
        q = self.p @ w
        for at, tv in zip(self.slack_at, self.program.tvs, strict=True):
            k = tv.mapping.shape[0]
            z[at : at + k] = np.maximum(tv.reference - tv.mapping @ q, 0.0)
        return z


def _slsqp(program: ChannelProgram, start: FloatArray, ftol: float, max_iter: int) -> FloatArray:
    lay = _Layout(program)
    p, n, m, nw = lay.p, lay.n, lay.m, lay.nw

    def objective(z: FloatArray) -> tuple[float, FloatArray]:
        w = np.maximum(lay.channel(z), 1e-300)
        q = np.maximum(p @ w, 1e-300)
        logr = np.log(w / q)
        grad = np.zeros_like(z)
        grad[:nw] = (p[:, None] * logr).ravel()
        return float((p[:, None] * w * logr).sum()), grad

    a_eq = np.zeros((n, lay.size))
    for x in range(n):
        a_eq[x, x * m : (x + 1) * m] = 1.0
    constraints: list[dict] = [
        {"type": "eq", "fun": lambda z: a_eq @ z - 1.0, "jac": lambda z: a_eq}
    ]
    rows: list[FloatArray] = []
    rhs: list[float] = []
    forbidden = np.zeros((n, m), dtype=bool)
    for con in program.costs:
        forbidden |= np.isinf(con.cost[lay.live])
    for con in program.costs:
        row = np.zeros(lay.size)
        row[:nw] = -(p[:, None] * np.where(forbidden, 0.0, con.cost[lay.live])).ravel()
        rows.append(row)
        rhs.append(con.bound)
    for at, tv in zip(lay.slack_at, program.tvs, strict=True):
        k = tv.mapping.shape[0]
        # slack_i - r_i + (M q)_i >= 0, with (M q)_i = sum_x p_x sum_y M[i, y] W[x, y]
        block = np.zeros((k, lay.size))
        block[:, :nw] = np.einsum("x,iy->ixy", p, tv.mapping).reshape(k, nw)
        block[:, at : at + k] = np.eye(k)
        for i in range(k):
            rows.append(block[i])
            rhs.append(-float(tv.reference[i]))
        total = np.zeros(lay.size)
        total[at : at + k] = -1.0
        rows.append(total)
        rhs.append(tv.bound)
    if rows:
        a_in = np.vstack(rows)
        b_in = np.asarray(rhs)
        constraints.append(
            {"type": "ineq", "fun": lambda z: a_in @ z + b_in, "jac": lambda z: a_in}
        )
    for ent in program.entropies:
        weights = p[:, None] * ent.p_s_given_x[lay.live]  # (n, |S|)
        mapping = ent.mapping

        def ent_fun(z: FloatArray, weights=weights, mapping=mapping, bound=ent.bound) -> float:
            joint = weights.T @ lay.channel(z) @ mapping.T
            joint = np.maximum(joint, 1e-300)
            col = joint.sum(axis=0, keepdims=True)
            return bound + float((joint * np.log(joint / col)).sum())

        def ent_jac(z: FloatArray, weights=weights, mapping=mapping) -> FloatArray:
            joint = np.maximum(weights.T @ lay.channel(z) @ mapping.T, 1e-300)
            col = joint.sum(axis=0, keepdims=True)
            dj = np.log(joint / col)  # d(-H)/dJ
            grad = np.zeros(lay.size)
            grad[:nw] = (weights @ dj @ mapping).ravel()
            return grad

        constraints.append({"type": "ineq", "fun": ent_fun, "jac": ent_jac})
    bounds = [(0.0, 0.0) if f else (0.0, 1.0) for f in forbidden.ravel()]
    bounds += [(0.0, 2.0)] * (lay.size - nw)
    z0 = lay.pack(start)
    z0[:nw][forbidden.ravel()] = 0.0
    res = minimize(
        objective,
        z0,
        jac=True,
        method="SLSQP",
        bounds=bounds,
        constraints=constraints,
        options={"ftol": ftol, "maxiter": max_iter},
    )
    return lay.full_channel(res.x)


def solve_program(
    program: ChannelProgram,
    starts: Sequence[FloatArray],
    *,
    ftol: float = 1e-13,
    max_iter: int = 1000,
    feasibility_tol: float = 1e-7,
    certify: bool = True,
) -> ProgramSolution:
    """Minimise ``I(X;Y)`` (nats) for ``program`` from each channel in ``starts``; keep the best
    feasible result (within ``feasibility_tol``) and, for convex programs, certify it."""
    n_entries = int((program.p_x > 0).sum()) * program.n_outputs
    if n_entries > MAX_CHANNEL_ENTRIES:
        raise LossylearnError(
            f"the channel has {n_entries} entries; this solver takes at most {MAX_CHANNEL_ENTRIES}"
        )
    if not starts:
        raise LossylearnError("at least one starting channel is needed")
    best: tuple[tuple[int, float], float, float, FloatArray] | None = None
    for start in starts:
        start = np.asarray(start, dtype=np.float64)
        # SLSQP is not monotone on non-convex programs: a feasible start stays a candidate.
        for channel in (start, _slsqp(program, start, ftol, max_iter)):
            viol = violation(program, channel)
            rate = mutual_information_nats(program.p_x, channel)
            key = (0, rate) if viol <= feasibility_tol else (1, viol)
            if best is None or key < best[0]:
                best = (key, rate, viol, channel)
    assert best is not None
    _, rate, viol, channel = best
    lower = -math.inf
    if certify and program.convex and viol <= feasibility_tol:
        lower = dual_lower_bound(program, channel)
        for _ in range(POLISH_RESTARTS):
            if rate - lower <= POLISH_GAP:
                break
            # SLSQP stops once the objective changes by less than ftol, which can happen short of
            # the optimum at a point that depends on rounding (the BLAS kernels of the processor).
            # A restart from its own result resumes with a fresh quasi-Newton model.
            polished = _slsqp(program, channel, ftol, max_iter)
            viol_p = violation(program, polished)
            rate_p = mutual_information_nats(program.p_x, polished)
            if viol_p > feasibility_tol or rate_p >= rate:
                break
            channel, rate, viol = polished, rate_p, viol_p
            lower = max(lower, dual_lower_bound(program, channel))
    return ProgramSolution(
        channel=channel, rate=rate, lower_bound=lower, violation=viol, starts=len(starts)
    )
