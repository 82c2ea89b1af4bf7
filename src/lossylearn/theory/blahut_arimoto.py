"""Rate-distortion functions of finite sources by the Blahut-Arimoto algorithm.

Method. For a slope ``beta >= 0`` (nats per unit of distortion) Blahut-Arimoto minimises the
Lagrangian ``I(X; Xhat) + beta * E d(X, Xhat)`` by alternating the optimal test channel
``W(xhat|x) ∝ q(xhat) exp(-beta d(x, xhat))`` and its output law ``q``. Written in ``q`` alone the
iteration is ``q <- q * c(q)`` with ``c_j = sum_x p_x K_xj / (K q)_x``, ``K = exp(-beta d)``; it is the
EM iteration for mixture weights, so it is accelerated here with SQUAREM extrapolation (Varadhan &
Roland 2008) guarded by a monotonicity check. Every iterate carries Blahut's certificate: the
Lagrangian minimum lies between ``F(q) - log max_j c_j`` and ``F(q)``, ``F(q) = -sum_x p_x log (Kq)_x``,
so the stopping rule ``log max_j c_j <= tol`` bounds the error of the value, not just the step.

A target distortion ``D`` is met by finding the slope: the distortion of the optimal channel falls
monotonically with ``beta``; it is bracketed in ``log beta`` and located by Illinois regula falsi,
warm-starting each Blahut-Arimoto run from the previous output law. Where ``R(D)`` has a straight
segment the distortion jumps at one slope; the two channels either side are then mixed (time
sharing), which is exact on a straight segment. Rates are reported in bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike

from lossylearn.errors import LossylearnError
from lossylearn.theory.info import (
    FloatArray,
    as_distortion,
    as_nonneg,
    as_pmf,
    mutual_information,
)

LN2 = math.log(2.0)


@dataclass(frozen=True)
class LagrangianSolution:
    """Minimiser of ``I(X;Y) + E cost(X,Y)`` over channels, with Blahut's two-sided certificate.

    ``upper`` and ``lower`` (nats) bracket the minimum value; ``channel`` is the channel induced by
    the output law ``q`` (rows of zero-probability source symbols are filled with ``q``).
    """

    q: FloatArray
    channel: FloatArray
    upper: float
    lower: float
    iterations: int
    converged: bool


METHODS = ("auto", "newton", "squarem", "plain")

#: Above this many reconstruction symbols ``method="auto"`` uses SQUAREM instead of Newton steps.
NEWTON_MAX_OUTPUTS = 1024


def minimize_lagrangian(
    p: FloatArray,
    cost: FloatArray,
    *,
    q0: FloatArray | None = None,
    tol: float = 1e-10,
    max_iter: int = 10_000,
    method: str = "auto",
) -> LagrangianSolution:
    """Minimise ``I(X;Y) + E[cost(X,Y)]`` (nats) over channels ``p(y|x)``.

    ``p`` is the source law (n,), ``cost`` an (n, m) matrix (``+inf`` forbids a pair). The output
    law is updated by ``method``: ``"plain"`` Blahut-Arimoto steps, ``"squarem"`` (extrapolated
    Blahut-Arimoto), ``"newton"`` (projected Newton steps on the same objective, Bertsekas 1982),
    or ``"auto"`` (Newton up to ``NEWTON_MAX_OUTPUTS`` outputs). ``tol`` bounds the certified gap
    ``upper - lower`` in nats; ``max_iter`` caps the number of iterations.
    """
    if method not in METHODS:
        raise LossylearnError(f"unknown method {method!r}; known: {', '.join(METHODS)}")
    n, m = cost.shape
    live = p > 0
    pl = p[live]
    cl = cost[live]
    shift = cl.min(axis=1)
    if not np.all(np.isfinite(shift)):
        raise LossylearnError("every source symbol needs at least one finite-cost output")
    with np.errstate(over="ignore", invalid="ignore"):
        kernel = np.exp(-(cl - shift[:, None]))
    kernel[np.isnan(kernel)] = 0.0
    const = float(pl @ shift)

    q = np.full(m, 1.0 / m) if q0 is None else np.asarray(q0, dtype=np.float64).copy()
    # Keep every output reachable from a warm start: zeros are absorbing for these iterations.
    q = np.maximum(q, 1e-12 * max(float(q.max()), 1e-300))
    q /= q.sum()
    if method == "auto":
        method = "newton" if m <= NEWTON_MAX_OUTPUTS else "squarem"
    if method == "newton":
        q, v, gap, iterations = _newton_output_law(pl, kernel, q, tol, max_iter)
    else:
        q, v, gap, iterations = _ba_output_law(pl, kernel, q, tol, max_iter, method == "squarem")
    upper = const - float(pl @ np.log(v))
    lower = upper - max(gap, 0.0)
    channel = np.empty((n, m))
    channel[live] = q[None, :] * kernel / v[:, None]
    channel[~live] = q[None, :]
    channel /= channel.sum(axis=1, keepdims=True)
    return LagrangianSolution(
        q=q, channel=channel, upper=upper, lower=lower, iterations=iterations,
        converged=gap <= tol,
    )


def _ba_output_law(
    pl: FloatArray, kernel: FloatArray, q: FloatArray, tol: float, max_iter: int, squarem: bool
) -> tuple[FloatArray, FloatArray, float, int]:
    """Blahut-Arimoto iterations ``q <- q * c(q)``, optionally SQUAREM-extrapolated.

    Returns ``(q, K q, gap, iterations)`` where ``gap = log max_j c_j(q)`` is Blahut's bound.
    """
    kt = np.ascontiguousarray(kernel.T)

    def value(v: FloatArray) -> float:
        return -float(pl @ np.log(v))

    def step(qc: FloatArray, v: FloatArray) -> tuple[FloatArray, float]:
        c = kt @ (pl / v)
        return qc * c, float(math.log(c.max()))

    v = kernel @ q
    iterations = 0
    gap = math.inf
    while iterations < max_iter:
        q1, gap = step(q, v)
        iterations += 1
        if gap <= tol:
            break
        q1 /= q1.sum()
        v1 = kernel @ q1
        if not squarem:
            q, v = q1, v1
            continue
        q2, gap1 = step(q1, v1)
        iterations += 1
        if gap1 <= tol:
            q, v, gap = q1, v1, gap1
            break
        q2 /= q2.sum()
        v2 = kernel @ q2
        r = q1 - q
        s = q2 - q1 - r
        ns = float(np.linalg.norm(s))
        if ns == 0.0:
            q, v = q2, v2
            continue
        alpha = min(-float(np.linalg.norm(r)) / ns, -1.0)
        qn = q - 2.0 * alpha * r + alpha * alpha * s
        qn = np.maximum(qn, 1e-3 * q2)
        qn /= qn.sum()
        vn = kernel @ qn
        if value(vn) <= value(v2):
            q, v = qn, vn
        else:
            q, v = q2, v2
    return q, v, gap, iterations


def _newton_output_law(
    pl: FloatArray, kernel: FloatArray, q: FloatArray, tol: float, max_iter: int
) -> tuple[FloatArray, FloatArray, float, int]:
    """Projected Newton on ``f(x) = -sum_i p_i log (Kx)_i + sum_j x_j`` over ``x >= 0``.

    Its minimiser sums to one and is the Blahut-Arimoto fixed point (the optimal output law);
    dropping the simplex constraint leaves only bounds, which projected Newton handles with an
    active set. Each iterate is certified by Blahut's gap at ``q = x / sum(x)``; a step that fails
    its line search is replaced by a plain Blahut-Arimoto step, which always descends.
    """
    kt = np.ascontiguousarray(kernel.T)
    x = q.copy()
    v = kernel @ x
    fx = -float(pl @ np.log(v)) + float(x.sum())
    gap = math.inf
    iterations = 0
    while iterations < max_iter:
        c = kt @ (pl / v)
        total = float(x.sum())
        gap = math.log(float(c.max()) * total)
        if gap <= tol:
            break
        iterations += 1
        g = 1.0 - c
        eps = min(1e-10, float(np.linalg.norm(x - np.maximum(x - g, 0.0))))
        active = (x <= eps) & (g > 0)
        free = ~active
        d = np.zeros_like(x)
        d[active] = -g[active]
        if free.any():
            kf = kernel[:, free]
            hess = kf.T @ (kf * (pl / (v * v))[:, None])
            diag = np.diag(hess)
            hess[np.diag_indices_from(hess)] = diag + 1e-12 * max(float(diag.max()), 1e-300)
            try:
                d[free] = -np.linalg.solve(hess, g[free])
            except np.linalg.LinAlgError:
                d[free] = -g[free] / np.maximum(diag, 1e-300)
        alpha = 1.0
        accepted = False
        for _ in range(40):
            xn = np.maximum(x + alpha * d, 0.0)
            vn = kernel @ xn
            if np.all(vn > 0):
                fn = -float(pl @ np.log(vn)) + float(xn.sum())
                if fn <= fx + 1e-4 * float(g @ (xn - x)):
                    accepted = True
                    break
            alpha *= 0.5
        if accepted and fn < fx:
            x, v, fx = xn, vn, fn
            continue
        # Fallback: one Blahut-Arimoto step from the normalised point.
        qn = x / total * (c * total)
        qn /= qn.sum()
        x = qn
        v = kernel @ x
        fx = -float(pl @ np.log(v)) + float(x.sum())
    total = float(x.sum())
    return x / total, v / total, gap, iterations


@dataclass(frozen=True)
class RDPoint:
    """One point of a rate-distortion function with the channel that attains it.

    ``rate_bits`` is the rate at ``distortion``; ``lower_bound_bits`` is Blahut's certified lower
    bound there, so ``rate_bits - lower_bound_bits`` is the solver's own error bar. ``slope`` is
    ``-dR/dD`` in nats per unit distortion (``inf`` at the minimum distortion).
    """

    distortion: float
    rate_bits: float
    lower_bound_bits: float
    slope: float
    channel: FloatArray
    output_law: FloatArray
    iterations: int
    converged: bool


@dataclass(frozen=True)
class RDCurve:
    """A traced rate-distortion curve (rates in bits)."""

    distortions: FloatArray
    rates_bits: FloatArray
    lower_bounds_bits: FloatArray
    slopes: FloatArray
    iterations: int

    def as_rows(self) -> list[dict[str, float]]:
        """The curve as JSON-ready rows."""
        return [
            {"distortion": float(d), "rate_bits": float(r), "lower_bound_bits": float(lb), "slope": float(s)}
            for d, r, lb, s in zip(
                self.distortions, self.rates_bits, self.lower_bounds_bits, self.slopes, strict=True
            )
        ]


def distortion_range(p_x: ArrayLike, distortion: ArrayLike) -> tuple[float, float]:
    """``(D_min, D_max)``: the least achievable distortion and the least one reachable at rate 0."""
    p = as_pmf(p_x, "p_x")
    d = as_distortion(distortion, p.size)
    live = p > 0
    dmin = float(p[live] @ d[live].min(axis=1))
    with np.errstate(invalid="ignore"):
        dmax = float((p[live] @ d[live]).min())
    return dmin, dmax


def _expected_distortion(p: FloatArray, d: FloatArray, channel: FloatArray) -> float:
    live = p > 0
    w = channel[live]
    dl = np.where(w > 0, d[live], 0.0)
    return float(p[live] @ (w * dl).sum(axis=1))


def _point_from(
    p: FloatArray, d: FloatArray, sol: LagrangianSolution, slope: float, target: float | None
) -> RDPoint:
    dist = _expected_distortion(p, d, sol.channel)
    rate = mutual_information(p[:, None] * sol.channel, base=math.e)
    at = dist if target is None else target
    if math.isinf(slope):
        lower = sol.lower
        corrected = rate
    else:
        # The Lagrangian bound: R(D) >= L(beta) - beta * D for every D; the tangent of slope
        # -beta through the solver's point moves its rate to the target distortion.
        lower = sol.lower - slope * at
        corrected = rate - slope * (at - dist)
    return RDPoint(
        distortion=at,
        rate_bits=max(corrected, 0.0) / LN2,
        lower_bound_bits=max(lower, 0.0) / LN2,
        slope=slope,
        channel=sol.channel,
        output_law=sol.q,
        iterations=sol.iterations,
        converged=sol.converged,
    )


def blahut_arimoto(
    p_x: ArrayLike,
    distortion: ArrayLike,
    slope: float,
    *,
    tol: float = 1e-10,
    max_iter: int = 10_000,
    q0: ArrayLike | None = None,
    method: str = "auto",
) -> RDPoint:
    """The point of ``R(D)`` where its slope is ``-slope`` (nats per unit distortion), in bits."""
    p = as_pmf(p_x, "p_x")
    d = as_distortion(distortion, p.size)
    beta = float(slope)
    if math.isnan(beta) or beta < 0:
        raise LossylearnError(f"slope must be >= 0; got {slope!r}")
    if beta == 0.0:
        return _zero_rate_point(p, d)
    cost = _slope_cost(d, beta)
    sol = minimize_lagrangian(
        p, cost, q0=None if q0 is None else np.asarray(q0, float), tol=tol, max_iter=max_iter,
        method=method,
    )
    return _point_from(p, d, sol, beta, None)


def _slope_cost(d: FloatArray, beta: float) -> FloatArray:
    if math.isinf(beta):
        return np.where(d <= d.min(axis=1, keepdims=True), 0.0, np.inf)
    return beta * d


def _zero_rate_point(p: FloatArray, d: FloatArray) -> RDPoint:
    live = p > 0
    with np.errstate(invalid="ignore"):
        col = int(np.argmin(p[live] @ d[live]))
    channel = np.zeros_like(d)
    channel[:, col] = 1.0
    q = np.zeros(d.shape[1])
    q[col] = 1.0
    return RDPoint(
        distortion=_expected_distortion(p, d, channel), rate_bits=0.0, lower_bound_bits=0.0,
        slope=0.0, channel=channel, output_law=q, iterations=0, converged=True,
    )


class _SlopeSolver:
    """Blahut-Arimoto runs at chosen slopes, warm-started from the previous output law."""

    def __init__(self, p: FloatArray, d: FloatArray, tol: float, max_iter: int, method: str):
        self.p, self.d = p, d
        self.tol, self.max_iter, self.method = tol, max_iter, method
        self.q: FloatArray | None = None
        self.iterations = 0

    def run(self, beta: float) -> tuple[LagrangianSolution, float]:
        sol = minimize_lagrangian(
            self.p, _slope_cost(self.d, beta), q0=self.q, tol=self.tol, max_iter=self.max_iter,
            method=self.method,
        )
        self.q = sol.q
        self.iterations += sol.iterations
        return sol, _expected_distortion(self.p, self.d, sol.channel)


def _solve_target(
    solver: _SlopeSolver,
    target: float,
    dmin: float,
    dmax: float,
    distortion_tol: float,
    beta_hint: float | None,
) -> RDPoint:
    p, d = solver.p, solver.d
    if target >= dmax:
        return _zero_rate_point(p, d)
    if target <= dmin + distortion_tol:
        sol, _ = solver.run(math.inf)
        return _point_from(p, d, sol, math.inf, None)
    # Bracket log(beta): D(beta) decreases from D_max (beta -> 0) to D_min (beta -> inf).
    t = math.log(beta_hint) if beta_hint else -math.log(max(dmax - dmin, 1e-300))
    sol, dist = solver.run(math.exp(t))
    if abs(dist - target) <= distortion_tol:
        return _point_from(p, d, sol, math.exp(t), target)
    lo = hi = None  # lo: D above target (small beta); hi: D below target
    if dist > target:
        lo = (t, dist, sol)
        step = 1.0
        while hi is None:
            t += step
            step *= 2.0
            sol, dist = solver.run(math.exp(t))
            if abs(dist - target) <= distortion_tol:
                return _point_from(p, d, sol, math.exp(t), target)
            if dist > target:
                lo = (t, dist, sol)
            else:
                hi = (t, dist, sol)
            if t > 700:
                raise LossylearnError(f"could not reach distortion {target:g} (D_min = {dmin:g})")
    else:
        hi = (t, dist, sol)
        step = 1.0
        while lo is None:
            t -= step
            step *= 2.0
            sol, dist = solver.run(math.exp(t))
            if abs(dist - target) <= distortion_tol:
                return _point_from(p, d, sol, math.exp(t), target)
            if dist < target:
                hi = (t, dist, sol)
            else:
                lo = (t, dist, sol)
            if t < -700:
                return _zero_rate_point(p, d)
    # Illinois regula falsi on f(t) = D(exp t) - target.
    ta, fa, sa = lo[0], lo[1] - target, lo[2]
    tb, fb, sb = hi[0], hi[1] - target, hi[2]
    side = 0
    for _ in range(200):
        if tb - ta <= 1e-13 * (1.0 + abs(ta)):
            break
        tc = tb - fb * (tb - ta) / (fb - fa)
        if not ta < tc < tb:
            tc = 0.5 * (ta + tb)
        sol, dist = solver.run(math.exp(tc))
        fc = dist - target
        if abs(fc) <= distortion_tol:
            return _point_from(p, d, sol, math.exp(tc), target)
        if fc > 0:
            ta, fa, sa = tc, fc, sol
            if side == -1:
                fb *= 0.5
            side = -1
        else:
            tb, fb, sb = tc, fc, sol
            if side == 1:
                fa *= 0.5
            side = 1
    # A straight segment of R(D): time-share the channels on either side of the target.
    da = _expected_distortion(p, d, sa.channel)
    db = _expected_distortion(p, d, sb.channel)
    lam = (da - target) / (da - db) if da != db else 0.0
    mix = (1.0 - lam) * sa.channel + lam * sb.channel
    q = p @ mix
    mixed = LagrangianSolution(
        q=q, channel=mix, upper=max(sa.upper, sb.upper), lower=min(sa.lower, sb.lower),
        iterations=sa.iterations + sb.iterations, converged=sa.converged and sb.converged,
    )
    return _point_from(p, d, mixed, math.exp(0.5 * (ta + tb)), target)


def solve_rate_distortion(
    p_x: ArrayLike,
    distortion: ArrayLike,
    D: float,
    *,
    tol: float = 1e-10,
    distortion_tol: float = 1e-9,
    max_iter: int = 10_000,
    method: str = "auto",
) -> RDPoint:
    """``R(D)`` with its optimal test channel and certificate (see :class:`RDPoint`).

    ``tol`` bounds Blahut's gap (nats) at each slope; ``distortion_tol`` is how close the channel's
    distortion must come to ``D`` before the slope search stops; ``max_iter`` caps each run.
    """
    p = as_pmf(p_x, "p_x")
    d = as_distortion(distortion, p.size)
    target = as_nonneg(D, "D")
    dmin, dmax = distortion_range(p, d)
    if target < dmin - distortion_tol:
        raise LossylearnError(f"D = {target:g} is below the least achievable distortion {dmin:g}")
    solver = _SlopeSolver(p, d, tol, max_iter, method)
    point = _solve_target(solver, target, dmin, dmax, distortion_tol, None)
    return _with_total_iterations(point, solver.iterations)


def _with_total_iterations(point: RDPoint, iterations: int) -> RDPoint:
    return RDPoint(
        distortion=point.distortion, rate_bits=point.rate_bits,
        lower_bound_bits=point.lower_bound_bits, slope=point.slope, channel=point.channel,
        output_law=point.output_law, iterations=iterations, converged=point.converged,
    )


def rate_distortion(
    p_x: ArrayLike,
    distortion: ArrayLike,
    D: float,
    *,
    tol: float = 1e-10,
    distortion_tol: float = 1e-9,
    max_iter: int = 10_000,
    method: str = "auto",
) -> float:
    """``R(D)`` in bits for a finite source ``p_x`` and distortion matrix ``d[x, xhat]``."""
    return solve_rate_distortion(
        p_x, distortion, D, tol=tol, distortion_tol=distortion_tol, max_iter=max_iter,
        method=method,
    ).rate_bits


def rate_distortion_curve(
    p_x: ArrayLike,
    distortion: ArrayLike,
    *,
    n_points: int = 50,
    distortions: ArrayLike | None = None,
    tol: float = 1e-10,
    distortion_tol: float = 1e-9,
    max_iter: int = 10_000,
    method: str = "auto",
) -> RDCurve:
    """Trace ``R(D)`` (bits) at ``distortions``, or at ``n_points`` evenly spaced in [D_min, D_max].

    The targets are solved from the largest distortion down, each slope search starting from the
    previous slope and output law.
    """
    p = as_pmf(p_x, "p_x")
    d = as_distortion(distortion, p.size)
    dmin, dmax = distortion_range(p, d)
    if distortions is None:
        if n_points < 2:
            raise LossylearnError(f"n_points must be >= 2; got {n_points}")
        targets = np.linspace(dmin, dmax, int(n_points))
    else:
        targets = np.asarray(distortions, dtype=np.float64).ravel()
        if targets.size == 0 or np.any(~np.isfinite(targets)) or np.any(targets < 0):
            raise LossylearnError("distortions must be finite, non-negative and not empty")
        if targets.min() < dmin - distortion_tol:
            raise LossylearnError(
                f"distortion {targets.min():g} is below the least achievable distortion {dmin:g}"
            )
    order = np.argsort(-targets, kind="stable")
    solver = _SlopeSolver(p, d, tol, max_iter, method)
    rates = np.empty(targets.size)
    lowers = np.empty(targets.size)
    slopes = np.empty(targets.size)
    beta_hint: float | None = None
    for idx in order:
        point = _solve_target(solver, float(targets[idx]), dmin, dmax, distortion_tol, beta_hint)
        rates[idx] = point.rate_bits
        lowers[idx] = point.lower_bound_bits
        slopes[idx] = point.slope
        if 0.0 < point.slope < math.inf:
            beta_hint = point.slope
    return RDCurve(
        distortions=targets, rates_bits=rates, lower_bounds_bits=lowers, slopes=slopes,
        iterations=solver.iterations,
    )
