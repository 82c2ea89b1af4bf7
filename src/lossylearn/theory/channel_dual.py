"""A certified lower bound on the optimum of a convex channel program, by weak duality.

For multipliers ``lambda, eta >= 0`` weak duality gives the lower bound
``L(sum lambda_k c_k - M_t' eta_t) - lambda'b + sum_t (eta_t' r_t - P_t max eta_t)``, where
``L(cost) = min_W I + E cost`` is evaluated by :func:`~lossylearn.theory.lagrangian.minimize_lagrangian`
with its own certified lower bound. The multipliers are fitted to the primal optimum (whose channel
has the form ``W ∝ q exp(-cost)``; mass-weighted least squares, slack constraints at zero) and then
maximised by SLSQP on the smooth dual. The bound is then a proof that no channel does better, and
the primal rate minus the bound the solver's error bar.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.optimize import lsq_linear, minimize

from lossylearn.errors import LossylearnError
from lossylearn.theory.channel_program import ChannelProgram, total_variation_of
from lossylearn.theory.info import FloatArray
from lossylearn.theory.lagrangian import minimize_lagrangian

__all__ = ["ACTIVE_SLACK", "dual_lower_bound"]


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
