"""Least mutual information over test channels under distortion, perception and label constraints.

The problem: minimise ``I(X; Y)`` over channels ``W(y|x)`` on finite alphabets subject to

- expected-cost constraints ``E c_k(X, Y) <= b_k`` (distortions),
- total-variation constraints ``TV(M_t q, r_t) <= P_t`` on linear images of the output law
  ``q = p W`` (``M_t`` = identity for one reconstruction, a marginalisation for a tuple),
- conditional-entropy constraints ``H(S | M_u Y) <= C_u`` for labels ``S`` with ``S - X - Y``.

Method. The channel (and one slack vector per TV constraint, making them linear) is optimised by
SLSQP (scipy) with exact gradients: ``dI/dW[x,y] = p_x log(W[x,y] / q_y)`` and
``dH(S|Y')/dJ[s,y'] = -log(J[s,y'] / J[.,y'])`` for ``J`` the joint law of ``(S, Y')``.

- Without conditional-entropy constraints the problem is convex, so the SLSQP optimum is global.
  It is also certified: for multipliers ``lambda, eta >= 0`` weak duality gives the lower bound
  ``L(sum lambda_k c_k - M_t' eta_t) - lambda'b + sum_t (eta_t' r_t - P_t max eta_t)``, where
  ``L(cost) = min_W I + E cost`` is evaluated by Blahut-Arimoto with its own certified lower
  bound. The multipliers are fitted to the primal optimum (whose channel has the form
  ``W ∝ q exp(-cost)``; mass-weighted least squares, slack constraints at zero) and then
  maximised by SLSQP on the smooth dual; ``lower_bound`` is then a proof that no channel does
  better, and ``rate - lower_bound`` the solver's error bar. SLSQP's stopping rule on the primal
  can fire short of the optimum at a point that moves with the processor's rounding, so a convex
  program whose gap exceeds ``POLISH_GAP`` is re-solved from its best channel (up to
  ``POLISH_RESTARTS`` times).
- ``H(S|Y) <= C`` is not convex in ``W`` (conditional entropy is concave), so with such
  constraints SLSQP finds local optima; the solver runs from several starting channels and keeps
  the best feasible one. Its rate is achievable (an upper bound on the true minimum) and carries
  no certificate.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy.optimize import lsq_linear, minimize

from lossylearn.errors import LossylearnError
from lossylearn.theory.ba_solver import minimize_lagrangian
from lossylearn.theory.info import FloatArray

#: Largest number of channel entries the SLSQP solver accepts: its work grows as the cube
#: (128 entries take about 2 s, 256 about 20 s on one core).
MAX_CHANNEL_ENTRIES = 256

#: A convex program whose certified gap (nats) exceeds ``POLISH_GAP`` is re-solved from its best
#: channel, at most ``POLISH_RESTARTS`` times.
POLISH_GAP = 1e-10
POLISH_RESTARTS = 2


@dataclass(frozen=True)
class CostConstraint:
    """``E cost(X, Y) <= bound`` for an (n, m) cost matrix."""

    cost: FloatArray
    bound: float


@dataclass(frozen=True)
class TVConstraint:
    """``TV(mapping @ q, reference) <= bound`` for a (k, m) 0/1 mapping of the output law ``q``."""

    mapping: FloatArray
    reference: FloatArray
    bound: float


@dataclass(frozen=True)
class EntropyConstraint:
    """``H(S | mapping(Y)) <= bound`` (nats) for a label law ``p_s_given_x`` (n, |S|)."""

    p_s_given_x: FloatArray
    mapping: FloatArray
    bound: float


@dataclass(frozen=True)
class ChannelProgram:
    """A least-mutual-information problem over channels from ``p_x`` to ``n_outputs`` symbols."""

    p_x: FloatArray
    n_outputs: int
    costs: Sequence[CostConstraint] = field(default_factory=tuple)
    tvs: Sequence[TVConstraint] = field(default_factory=tuple)
    entropies: Sequence[EntropyConstraint] = field(default_factory=tuple)

    @property
    def convex(self) -> bool:
        """Whether the program is convex (no conditional-entropy constraint)."""
        return not self.entropies


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


def mutual_information_nats(p: FloatArray, channel: FloatArray) -> float:
    """``I(X;Y)`` in nats for source ``p`` and channel ``W[x, y]``."""
    q = p @ channel
    joint = p[:, None] * channel
    mask = joint > 0
    ratio = channel[mask] / np.broadcast_to(q, channel.shape)[mask]
    return float(max((joint[mask] * np.log(ratio)).sum(), 0.0))


def conditional_entropy_nats(
    p: FloatArray, channel: FloatArray, p_s_given_x: FloatArray, mapping: FloatArray
) -> float:
    """``H(S | mapping(Y))`` in nats for ``S - X - Y``."""
    joint = (p[:, None] * p_s_given_x).T @ channel @ mapping.T
    col = joint.sum(axis=0, keepdims=True)
    mask = joint > 0
    cond = joint[mask] / np.broadcast_to(col, joint.shape)[mask]
    return float(-(joint[mask] * np.log(cond)).sum())


def total_variation_of(q: FloatArray, con: TVConstraint) -> float:
    """``TV(mapping @ q, reference)``."""
    return float(0.5 * np.abs(con.mapping @ q - con.reference).sum())


def violation(program: ChannelProgram, channel: FloatArray) -> float:
    """Largest amount by which ``channel`` breaks a constraint of ``program`` (0 if feasible)."""
    p = program.p_x
    q = p @ channel
    worst = 0.0
    for con in program.costs:
        used = np.where(channel > 0, con.cost, 0.0)
        worst = max(worst, float(p @ (channel * used).sum(axis=1)) - con.bound)
    for tv in program.tvs:
        worst = max(worst, total_variation_of(q, tv) - tv.bound)
    for ent in program.entropies:
        worst = max(
            worst, conditional_entropy_nats(p, channel, ent.p_s_given_x, ent.mapping) - ent.bound
        )
    return max(worst, 0.0)


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


def _dual_value(
    program: ChannelProgram, lam: FloatArray, etas: list[FloatArray], q0: FloatArray | None
) -> tuple[float, FloatArray, FloatArray]:
    """Weak-duality bound at multipliers ``lam >= 0`` (costs) and ``etas >= 0`` (TV constraints).

    Returns the certified bound, the Lagrangian channel and its output law."""
    p = program.p_x
    cost = np.zeros((p.size, program.n_outputs))
    for lk, con in zip(lam, program.costs, strict=True):
        if lk > 0:
            cost = cost + lk * con.cost
    for eta, tv in zip(etas, program.tvs, strict=True):
        cost = cost - (tv.mapping.T @ eta)[None, :]
    sol = minimize_lagrangian(p, cost, q0=q0, tol=1e-12, max_iter=2000)
    value = sol.lower - sum(lk * con.bound for lk, con in zip(lam, program.costs, strict=True))
    for eta, tv in zip(etas, program.tvs, strict=True):
        value += float(eta @ tv.reference) - tv.bound * float(eta.max(initial=0.0))
    return value, sol.channel, sol.q


#: A constraint whose slack at the primal channel exceeds this is treated as inactive when the
#: multipliers are fitted (complementary slackness: its multiplier is then zero).
ACTIVE_SLACK = 1e-9


def _fit_multipliers(
    program: ChannelProgram, channel: FloatArray, use_cost: list[bool], use_tv: list[bool]
) -> tuple[FloatArray, list[FloatArray]]:
    """Multipliers ``(lam, etas)`` fitted to ``channel`` by non-negative least squares on
    ``log W[x,y] - log q[y] = -sum_k lam_k c_k[x,y] + sum_t (M_t' eta_t)[y] - log Z_x`` over the
    support; the multipliers of constraints not in ``use_cost`` / ``use_tv`` are held at zero."""
    p = program.p_x
    n, m = p.size, program.n_outputs
    q = p @ channel
    live = p > 0
    rows = [
        (x, y) for x in range(n) if live[x] for y in range(m) if channel[x, y] > 1e-9 and q[y] > 0
    ]
    costs = [con for con, use in zip(program.costs, use_cost, strict=True) if use]
    tvs = [tv for tv, use in zip(program.tvs, use_tv, strict=True) if use]
    k_cost = len(costs)
    k_tv = [tv.mapping.shape[0] for tv in tvs]
    n_var = k_cost + sum(k_tv) + n
    design = np.zeros((len(rows), n_var))
    target = np.zeros(len(rows))
    for r, (x, y) in enumerate(rows):
        for k, con in enumerate(costs):
            design[r, k] = -con.cost[x, y] if np.isfinite(con.cost[x, y]) else -1e30
        at = k_cost
        for tv in tvs:
            design[r, at : at + tv.mapping.shape[0]] = tv.mapping[:, y]
            at += tv.mapping.shape[0]
        design[r, k_cost + sum(k_tv) + x] = -1.0
        target[r] = math.log(channel[x, y] / q[y])
    lower_b = np.concatenate([np.zeros(k_cost + sum(k_tv)), np.full(n, -np.inf)])
    upper_b = np.full(n_var, np.inf)
    # Weight each equation by its probability mass: the solver's channel is accurate to about the
    # same absolute error in every entry, so log W of a small entry carries a large error (and
    # entries that should be zero but are not quite would otherwise dominate the fit).
    weight = np.array([p[x] * channel[x, y] for x, y in rows])
    weight = weight / max(float(weight.max(initial=0.0)), 1e-300)
    fit = lsq_linear(
        design * weight[:, None],
        target * weight,
        bounds=(lower_b, upper_b),
        method="bvls",
        tol=1e-12,
    )
    fitted = iter(np.asarray(fit.x[:k_cost], dtype=np.float64))
    lam = np.array([next(fitted) if use else 0.0 for use in use_cost], dtype=np.float64)
    etas: list[FloatArray] = []
    at = k_cost
    for tv, use in zip(program.tvs, use_tv, strict=True):
        k = tv.mapping.shape[0]
        if not use:
            etas.append(np.zeros(k))
            continue
        eta = np.asarray(fit.x[at : at + k], dtype=np.float64)
        etas.append(eta - eta.min())
        at += k
    return lam, etas


def dual_lower_bound(
    program: ChannelProgram, channel: FloatArray, *, polish_iter: int = 60
) -> float:
    """A certified lower bound (nats) on the optimum of a convex ``program``.

    The multipliers are fitted to ``channel`` through the form of the optimal channel,
    ``log W[x,y] - log q[y] = -sum_k lam_k c_k[x,y] + sum_t (M_t' eta_t)[y] - log Z_x`` on the
    support (non-negative least squares), once with every constraint and once with the multipliers
    of constraints that are slack at ``channel`` held at zero (complementary slackness; a slack
    constraint's fitted multiplier is noise that costs ``bound * max(eta)`` to first order). The
    better of the two is improved by projected dual ascent steps. Any multipliers give a valid
    bound, so these choices only affect how tight it is.
    """
    if not program.convex:
        raise LossylearnError("a dual certificate exists only for convex programs")
    p = program.p_x
    q = p @ channel
    active_cost = [
        float(p @ (channel * np.where(channel > 0, con.cost, 0.0)).sum(axis=1))
        >= con.bound - ACTIVE_SLACK
        for con in program.costs
    ]
    active_tv = [total_variation_of(q, tv) >= tv.bound - ACTIVE_SLACK for tv in program.tvs]
    choices = [([True] * len(active_cost), [True] * len(active_tv))]
    if not (all(active_cost) and all(active_tv)):
        choices.append((active_cost, active_tv))
    best = -math.inf
    lam: FloatArray = np.zeros(len(program.costs))
    etas: list[FloatArray] = [np.zeros(tv.mapping.shape[0]) for tv in program.tvs]
    qd: FloatArray | None = None
    for use_cost, use_tv in choices:
        lam_c, etas_c = _fit_multipliers(program, channel, use_cost, use_tv)
        value, _, q_c = _dual_value(program, lam_c, etas_c, None)
        if value > best:
            best, lam, etas, qd = value, lam_c, etas_c, q_c
    return max(best, _dual_ascent(program, lam, etas, qd, max_iter=polish_iter))


def _dual_ascent(
    program: ChannelProgram,
    lam: FloatArray,
    etas: list[FloatArray],
    q0: FloatArray | None,
    *,
    max_iter: int,
) -> float:
    """Maximise the dual function from ``(lam, etas)`` by SLSQP; return the best certified value.

    The dual ``g = L(sum lam_k c_k - M_t' eta_t) - lam'b + sum_t (eta_t' r_t - P_t max eta_t)`` is
    concave; its gradient is the constraint residual of the Lagrangian channel (envelope
    theorem). ``max eta_t`` is replaced by a variable ``s_t >= eta_t`` so that the problem is
    smooth. The dual is sharply curved where the primal is flat (several channels of nearly the
    same rate), so a quasi-Newton method is needed there: first-order ascent stalls ~1e-5 short.
    Every evaluation is a valid lower bound; the largest is returned.
    """
    p = program.p_x
    sizes = [tv.mapping.shape[0] for tv in program.tvs]
    k_cost = len(program.costs)
    n_eta = sum(sizes)
    n_var = k_cost + n_eta + len(sizes)
    eta_at = np.cumsum([k_cost, *sizes])[:-1].tolist()

    def unpack(z: FloatArray) -> tuple[FloatArray, list[FloatArray], FloatArray]:
        z = np.maximum(z, 0.0)  # SLSQP may step a rounding error outside its bounds
        parts = [z[a : a + k] for a, k in zip(eta_at, sizes, strict=True)]
        return z[:k_cost], parts, z[k_cost + n_eta :]

    state: dict[str, Any] = {"best": -math.inf, "q": q0, "key": None, "out": None}

    def evaluate(z: FloatArray) -> tuple[float, FloatArray]:
        key = z.tobytes()
        if state["key"] == key:
            return state["out"]
        lam_z, etas_z, s_z = unpack(z)
        value, chan, q = _dual_value(program, lam_z, etas_z, state["q"])
        state["best"] = max(state["best"], value)
        state["q"] = q
        smooth = value
        grad = np.zeros(n_var)
        for k, con in enumerate(program.costs):
            grad[k] = float(p @ (chan * np.where(chan > 0, con.cost, 0.0)).sum(axis=1)) - con.bound
        for t, (tv, a, k) in enumerate(zip(program.tvs, eta_at, sizes, strict=True)):
            smooth += tv.bound * (float(etas_z[t].max(initial=0.0)) - float(s_z[t]))
            grad[a : a + k] = tv.reference - tv.mapping @ (p @ chan)
            grad[k_cost + n_eta + t] = -tv.bound
        state["key"], state["out"] = key, (-smooth, -grad)
        return state["out"]

    z0 = np.concatenate([lam, *etas, [float(e.max(initial=0.0)) for e in etas]]).astype(np.float64)
    cons = []
    if sizes:
        # s_t - eta_t,i >= 0
        a_ineq = np.zeros((n_eta, n_var))
        for t, (a, k) in enumerate(zip(eta_at, sizes, strict=True)):
            a_ineq[a - k_cost : a - k_cost + k, a : a + k] = -np.eye(k)
            a_ineq[a - k_cost : a - k_cost + k, k_cost + n_eta + t] = 1.0
        cons.append({"type": "ineq", "fun": lambda z: a_ineq @ z, "jac": lambda z: a_ineq})
    evaluate(z0)
    if n_var:
        minimize(
            evaluate,
            z0,
            jac=True,
            method="SLSQP",
            bounds=[(0.0, None)] * n_var,
            constraints=cons,
            options={"maxiter": max_iter, "ftol": 1e-16},
        )
    return float(state["best"])
