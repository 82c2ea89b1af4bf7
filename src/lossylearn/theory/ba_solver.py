"""Rate-distortion functions of finite sources by the Blahut-Arimoto algorithm.

Method. For a slope ``beta >= 0`` (nats per unit of distortion) Blahut-Arimoto minimises the
Lagrangian ``I(X; Xhat) + beta * E d(X, Xhat)`` by alternating the optimal test channel
``W(xhat|x) ∝ q(xhat) exp(-beta d(x, xhat))`` and its output law ``q``. In ``q`` alone the classic
iteration is ``q <- q * c(q)``, ``c_j = sum_x p_x K_xj / (K q)_x``, ``K = exp(-beta d)``: EM for
mixture weights, which crawls when outputs are nearly collinear or must die out (fine grids,
squared error). The output-law update is therefore a choice:

- ``"sqp"`` (default up to 1024 outputs): sequential quadratic programming on the same objective
  with an active-set inner solver (Kim, Carbonetto, Stephens & Anitescu 2020, "mix-SQP"): unused
  outputs get exact zeros and convergence is fast and to full precision;
- ``"squarem"``: Blahut-Arimoto steps with SQUAREM extrapolation (Varadhan & Roland 2008);
- ``"plain"``: the textbook iteration (kept as a reference and for the benchmark).

Every iterate carries Blahut's certificate: the Lagrangian minimum lies between
``F(q) - log max_j c_j`` and ``F(q)``, ``F(q) = -sum_x p_x log (Kq)_x``, so the stopping rule
``log max_j c_j <= tol`` bounds the error of the value, not just the step. Runs that stall at the
floating-point floor (about 1e-10 nats on ill-conditioned grids) stop early with their gap.

A target distortion ``D`` is met by finding the slope: the distortion of the optimal channel falls
monotonically with ``beta``. The search brackets ``log beta`` and runs a safeguarded secant,
starting from a slope interpolated in the table of earlier evaluations and warm-starting each run
from the previous output law. Where ``R(D)`` has a straight segment the distortion jumps at one
slope; the two channels either side are then mixed (time sharing), which is exact there. The rate
at ``D`` is the channel's rate moved along the tangent of slope ``-beta`` (a second-order
correction) and comes with the certified lower bound ``L(beta) - beta D``. Rates are in bits.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy.linalg import cho_factor, cho_solve

from lossylearn.errors import LossylearnError
from lossylearn.theory.info import (
    FloatArray,
    as_distortion,
    as_nonneg,
    as_pmf,
    mutual_information,
    plain,
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


METHODS = ("auto", "sqp", "squarem", "plain")

#: Above this many reconstruction symbols ``method="auto"`` uses SQUAREM instead of SQP steps
#: (each SQP step builds an m x m Hessian).
SQP_MAX_OUTPUTS = 1024

#: SQP iterations without halving the certified gap after which a run stops as stalled.
STALL_ITERATIONS = 12


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
    Blahut-Arimoto), ``"sqp"`` (active-set sequential quadratic programming on the same
    objective), or ``"auto"`` (SQP up to ``SQP_MAX_OUTPUTS`` outputs, else SQUAREM). ``tol`` bounds the certified gap
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
    if method == "auto":
        method = "sqp" if m <= SQP_MAX_OUTPUTS else "squarem"
    if method == "sqp":
        q = q / q.sum()
        q, v, gap, iterations = _sqp_output_law(pl, kernel, q, tol, max_iter, q0 is not None)
    else:
        # Keep every output reachable from a warm start: zeros are absorbing for these iterations.
        q = np.maximum(q, 1e-12 * max(float(q.max()), 1e-300))
        q /= q.sum()
        q, v, gap, iterations = _ba_output_law(pl, kernel, q, tol, max_iter, method == "squarem")
    upper = const - float(pl @ np.log(v))
    lower = upper - max(gap, 0.0)
    channel = np.empty((n, m))
    channel[live] = q[None, :] * kernel / v[:, None]
    channel[~live] = q[None, :]
    channel /= channel.sum(axis=1, keepdims=True)
    return LagrangianSolution(
        q=q,
        channel=channel,
        upper=upper,
        lower=lower,
        iterations=iterations,
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


def _active_set_qp(
    hess: FloatArray, lin: FloatArray, y0: FloatArray, tol: float, max_steps: int
) -> FloatArray:
    """Solve ``min_{y >= 0} 1/2 y'Hy + lin'y`` by a Lawson-Hanson style primal active-set method.

    ``y0`` must be feasible; its support is the starting working set. Each step solves the
    equality-constrained problem on the working set; a solution leaving the orthant is cut back to
    the boundary and the blocking coordinate dropped; otherwise the most negative gradient outside
    the set is added, until no coordinate outside wants to enter (the KKT conditions hold).
    """
    m = lin.size
    free = y0 > 0
    y = np.where(free, y0, 0.0)
    scale = max(float(np.abs(np.diag(hess)).max()), 1e-300)
    steps = 0
    while True:
        while True:
            steps += 1
            z = np.zeros(m)
            if free.any():
                sub = hess[np.ix_(free, free)]
                sub[np.diag_indices_from(sub)] += 1e-13 * scale
                try:
                    z[free] = cho_solve(
                        cho_factor(sub, check_finite=False), -lin[free], check_finite=False
                    )
                except np.linalg.LinAlgError:
                    z[free] = np.linalg.lstsq(sub, -lin[free], rcond=None)[0]
            blocked = free & (z <= 0)
            if not blocked.any() or steps > max_steps:
                break
            idx = np.flatnonzero(blocked)
            ratios = y[idx] / (y[idx] - z[idx])
            k = idx[int(np.argmin(ratios))]
            y = y + float(ratios.min()) * (z - y)
            y[k] = 0.0
            free &= y > 0
            y[~free] = 0.0
        y = np.maximum(z, 0.0)
        grad = -(hess @ y + lin)
        grad[free] = -np.inf
        j = int(np.argmax(grad))
        if grad[j] <= tol or steps > max_steps:
            return y
        free[j] = True


def _sqp_output_law(
    pl: FloatArray, kernel: FloatArray, q: FloatArray, tol: float, max_iter: int, warm: bool
) -> tuple[FloatArray, FloatArray, float, int]:
    """Sequential quadratic programming on ``f(x) = -sum_i p_i log (Kx)_i + sum_j x_j``, ``x >= 0``.

    The minimiser of ``f`` sums to one and is the Blahut-Arimoto fixed point (the optimal output
    law); dropping the simplex constraint leaves only bounds. Each iteration minimises the local
    quadratic model over ``x >= 0`` with an active-set method (exact zeros, so the unused outputs
    that make plain Blahut-Arimoto crawl are removed outright), then backtracks along the segment to
    the model's minimiser. This is the mix-SQP scheme of Kim, Carbonetto, Stephens & Anitescu (2020)
    for mixture weights. Every iterate is certified by Blahut's gap at ``q = x / sum(x)``.
    """
    m = kernel.shape[1]
    kt = np.ascontiguousarray(kernel.T)
    sqrt_p = np.sqrt(pl)
    y = np.where(q > 1e-10 * q.max(), q, 0.0) if warm else np.zeros(m)
    x = np.maximum(q, 1e-12 * float(q.max()))
    x /= x.sum()
    v = kernel @ x
    fx = -float(pl @ np.log(v)) + float(x.sum())
    gap = math.inf
    best = (math.inf, x, v)
    since_best = 0
    iterations = 0
    while iterations < max_iter:
        c = kt @ (pl / v)
        total = float(x.sum())
        gap = math.log(float(c.max()) * total)
        if gap < 0.5 * best[0]:
            since_best = 0
        else:
            since_best += 1
        if gap < best[0]:
            best = (gap, x, v)
        if gap <= tol or since_best > STALL_ITERATIONS:
            # Converged, or stalled at the floating-point floor of an ill-conditioned problem:
            # stop with the best certified iterate rather than spin to the iteration cap.
            break
        iterations += 1
        a = (sqrt_p / v)[:, None] * kernel
        hess = a.T @ a
        y = _active_set_qp(hess, 1.0 - 2.0 * c, y, 1e-13, 50 * m + 100)
        direction = y - x
        slope = float((1.0 - c) @ direction)
        alpha = 1.0
        accepted = False
        if slope < 0:
            for _ in range(50):
                xn = x + alpha * direction
                vn = kernel @ xn
                if np.all(vn > 0):
                    fn = -float(pl @ np.log(vn)) + float(xn.sum())
                    if fn <= fx + 1e-10 * alpha * slope:
                        accepted = True
                        break
                    if abs(fn - fx) <= 1e-14 * (1.0 + abs(fx)):
                        # Below the resolution of f: judge the step by Blahut's gap instead.
                        gn = math.log(float((kt @ (pl / vn)).max()) * float(xn.sum()))
                        accepted = gn < gap
                        break
                alpha *= 0.5
        if accepted:
            x, v, fx = xn, vn, fn
            continue
        # Fallback: one Blahut-Arimoto step from the normalised point (always descends).
        x = x / total * (c * total)
        x /= x.sum()
        v = kernel @ x
        fx = -float(pl @ np.log(v)) + float(x.sum())
        y = x.copy()
    gap, x, v = best
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
            {
                "distortion": float(d),
                "rate_bits": float(r),
                "lower_bound_bits": float(lb),
                "slope": float(s),
            }
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
        raise LossylearnError(f"slope must be >= 0; got {plain(slope)}")
    if beta == 0.0:
        return _zero_rate_point(p, d)
    cost = _slope_cost(d, beta)
    sol = minimize_lagrangian(
        p,
        cost,
        q0=None if q0 is None else np.asarray(q0, float),
        tol=tol,
        max_iter=max_iter,
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
        distortion=_expected_distortion(p, d, channel),
        rate_bits=0.0,
        lower_bound_bits=0.0,
        slope=0.0,
        channel=channel,
        output_law=q,
        iterations=0,
        converged=True,
    )


class _SlopeSolver:
    """Blahut-Arimoto runs at chosen slopes, warm-started from the previous output law.

    It remembers every ``(log beta, distortion)`` it has evaluated; the slope search interpolates
    in that table to predict the slope of a new target.
    """

    def __init__(self, p: FloatArray, d: FloatArray, tol: float, max_iter: int, method: str):
        self.p, self.d = p, d
        self.tol, self.max_iter, self.method = tol, max_iter, method
        self.q: FloatArray | None = None
        self.iterations = 0
        self.table: list[tuple[float, float]] = []

    def run(self, beta: float) -> tuple[LagrangianSolution, float]:
        # The limit beta -> inf has its own kernel; a warm start from a finite slope hurts there.
        q0 = None if math.isinf(beta) else self.q
        sol = minimize_lagrangian(
            self.p,
            _slope_cost(self.d, beta),
            q0=q0,
            tol=self.tol,
            max_iter=self.max_iter,
            method=self.method,
        )
        self.iterations += sol.iterations
        dist = _expected_distortion(self.p, self.d, sol.channel)
        if math.isfinite(beta):
            self.q = sol.q
            self.table.append((math.log(beta), dist))
        return sol, dist

    def predict(self, target: float) -> tuple[float, float] | None:
        """A predicted ``log beta`` for ``target`` and the nearest known ``(log beta, D)``."""
        if not self.table:
            return None
        pts = sorted(self.table, key=lambda e: e[1])
        ds = np.array([e[1] for e in pts])
        ts = np.array([e[0] for e in pts])
        k = int(np.searchsorted(ds, target))
        i, j = (
            (k - 1, k) if 0 < k < len(pts) else ((0, 1) if k == 0 else (len(pts) - 2, len(pts) - 1))
        )
        nearest = pts[int(np.argmin(np.abs(ds - target)))]
        if len(pts) < 2 or ds[j] == ds[i]:
            return None
        guess = ts[i] + (ts[j] - ts[i]) * (target - ds[i]) / (ds[j] - ds[i])
        # Clamp extrapolations to a factor 4 in beta beyond the known range.
        guess = float(np.clip(guess, ts.min() - math.log(4.0), ts.max() + math.log(4.0)))
        return guess, nearest[0]


@dataclass
class _Eval:
    t: float  # log(beta)
    f: float  # distortion minus target
    sol: LagrangianSolution | None


def _solve_target(
    solver: _SlopeSolver, target: float, dmin: float, dmax: float, dtol: float
) -> RDPoint:
    """Find the slope whose optimal channel has distortion ``target`` (within ``dtol``).

    ``D(beta)`` falls monotonically. The search brackets ``log beta`` and runs a safeguarded
    secant method on it (bisection whenever the bracket stops halving), starting from a slope
    interpolated in the solver's table of earlier evaluations.
    """
    p, d = solver.p, solver.d
    if target >= dmax:
        return _zero_rate_point(p, d)
    if target <= dmin + dtol:
        sol, _ = solver.run(math.inf)
        return _point_from(p, d, sol, math.inf, None)

    def evaluate(t: float) -> _Eval:
        sol, dist = solver.run(math.exp(t))
        return _Eval(t, dist - target, sol)

    lo: _Eval | None = None  # distortion above target (smaller slope)
    hi: _Eval | None = None  # distortion below target
    last: _Eval | None = None
    prediction = solver.predict(target)
    if prediction is None:
        t = -math.log(_span(d, dmin, dmax))
    else:
        t = prediction[0]
        known = [e for e in solver.table if e[0] == prediction[1]][-1]
        last = _Eval(known[0], known[1] - target, None)
        if last.f > 0:
            lo = last
        elif last.f < 0:
            hi = last
    widths: list[float] = []
    for _ in range(400):
        cur = evaluate(t)
        if abs(cur.f) <= dtol:
            return _point_from(p, d, cur.sol, math.exp(cur.t), target)
        if cur.f > 0 and (lo is None or cur.t >= lo.t):
            lo = cur
        elif cur.f < 0 and (hi is None or cur.t <= hi.t):
            hi = cur
        secant = math.nan
        if last is not None and cur.f != last.f:
            secant = cur.t - cur.f * (cur.t - last.t) / (cur.f - last.f)
        last = cur
        if lo is not None and hi is not None:
            width = hi.t - lo.t
            if width <= 1e-13 * (1.0 + abs(lo.t)):
                break
            widths.append(width)
            if not lo.t < secant < hi.t:
                secant = lo.t - lo.f * width / (hi.f - lo.f)
            if len(widths) >= 3 and widths[-1] > 0.5 * widths[-3]:
                secant = 0.5 * (lo.t + hi.t)
                widths.clear()
            t = secant
        else:
            # Not yet bracketed: step in the right direction by the secant, at most 4x in beta.
            direction = 1.0 if cur.f > 0 else -1.0
            step = math.log(2.0)
            if math.isfinite(secant) and (secant - cur.t) * direction > 0:
                step = min(1.5 * abs(secant - cur.t) + 1e-12, math.log(4.0))
            t = cur.t + direction * step
            if t > 700:
                raise LossylearnError(f"could not reach distortion {target:g} (D_min = {dmin:g})")
            if t < -700:
                return _zero_rate_point(p, d)
    if lo is None or hi is None:
        raise LossylearnError(f"slope search for distortion {target:g} did not converge")
    # A straight segment of R(D): time-share the channels on either side of the target.
    if lo.sol is None:
        lo = evaluate(lo.t)
    if hi.sol is None:
        hi = evaluate(hi.t)
    assert lo.sol is not None and hi.sol is not None
    da, db = lo.f + target, hi.f + target
    lam = (da - target) / (da - db) if da != db else 0.0
    mix = (1.0 - lam) * lo.sol.channel + lam * hi.sol.channel
    mixed = LagrangianSolution(
        q=p @ mix,
        channel=mix,
        upper=max(lo.sol.upper, hi.sol.upper),
        lower=min(lo.sol.lower, hi.sol.lower),
        iterations=0,
        converged=lo.sol.converged and hi.sol.converged,
    )
    return _point_from(p, d, mixed, math.exp(0.5 * (lo.t + hi.t)), target)


def _span(d: FloatArray, dmin: float, dmax: float) -> float:
    """The scale of the distortion axis: ``D_max - D_min``, or the finite spread of ``d`` when
    every output has an infinite distortion to some symbol (then ``D_max`` is infinite)."""
    if math.isfinite(dmax):
        return max(dmax - dmin, 1e-300)
    finite = d[np.isfinite(d)]
    return max(float(finite.max()) - dmin, float(finite.max()), 1e-300)


def _distortion_tolerance(distortion_tol: float, d: FloatArray, dmin: float, dmax: float) -> float:
    return float(distortion_tol) * _span(d, dmin, dmax)


def solve_rate_distortion(
    p_x: ArrayLike,
    distortion: ArrayLike,
    D: float,
    *,
    tol: float = 1e-10,
    distortion_tol: float = 1e-8,
    max_iter: int = 10_000,
    method: str = "auto",
) -> RDPoint:
    """``R(D)`` with its optimal test channel and certificate (see :class:`RDPoint`).

    ``tol`` bounds Blahut's gap (nats) at each slope; the slope search stops once the channel's
    distortion is within ``distortion_tol * (D_max - D_min)`` of ``D`` (the rate is then moved to
    ``D`` along the tangent, an error of second order); ``max_iter`` caps each solver run.
    """
    p = as_pmf(p_x, "p_x")
    d = as_distortion(distortion, p.size)
    target = as_nonneg(D, "D")
    dmin, dmax = distortion_range(p, d)
    dtol = _distortion_tolerance(distortion_tol, d, dmin, dmax)
    if target < dmin - dtol:
        raise LossylearnError(f"D = {target:g} is below the least achievable distortion {dmin:g}")
    solver = _SlopeSolver(p, d, tol, max_iter, method)
    point = _solve_target(solver, target, dmin, dmax, dtol)
    return _with_total_iterations(point, solver.iterations)


def _with_total_iterations(point: RDPoint, iterations: int) -> RDPoint:
    return RDPoint(
        distortion=point.distortion,
        rate_bits=point.rate_bits,
        lower_bound_bits=point.lower_bound_bits,
        slope=point.slope,
        channel=point.channel,
        output_law=point.output_law,
        iterations=iterations,
        converged=point.converged,
    )


def rate_distortion(
    p_x: ArrayLike,
    distortion: ArrayLike,
    D: float,
    *,
    tol: float = 1e-10,
    distortion_tol: float = 1e-8,
    max_iter: int = 10_000,
    method: str = "auto",
) -> float:
    """``R(D)`` in bits for a finite source ``p_x`` and distortion matrix ``d[x, xhat]``."""
    return solve_rate_distortion(
        p_x,
        distortion,
        D,
        tol=tol,
        distortion_tol=distortion_tol,
        max_iter=max_iter,
        method=method,
    ).rate_bits


def rate_distortion_curve(
    p_x: ArrayLike,
    distortion: ArrayLike,
    *,
    n_points: int = 50,
    distortions: ArrayLike | None = None,
    tol: float = 1e-10,
    distortion_tol: float = 1e-8,
    max_iter: int = 10_000,
    method: str = "auto",
) -> RDCurve:
    """Trace ``R(D)`` (bits) at ``distortions``, or at ``n_points`` evenly spaced in [D_min, D_max]
    (when ``D_max`` is infinite, over the finite spread of the distortion matrix).

    Targets are solved from the largest distortion down. Each slope search starts from the
    previous output law and a slope interpolated from all earlier evaluations, so a target
    typically costs two or three warm-started solver runs.
    """
    p = as_pmf(p_x, "p_x")
    d = as_distortion(distortion, p.size)
    dmin, dmax = distortion_range(p, d)
    dtol = _distortion_tolerance(distortion_tol, d, dmin, dmax)
    if distortions is None:
        if n_points < 2:
            raise LossylearnError(f"n_points must be >= 2; got {n_points}")
        # With every output infinitely far from some symbol the rate never reaches 0: trace the
        # finite spread of the distortion matrix instead.
        top = dmax if math.isfinite(dmax) else dmin + _span(d, dmin, dmax)
        targets = np.linspace(dmin, top, int(n_points))
    else:
        targets = np.asarray(distortions, dtype=np.float64).ravel()
        if targets.size == 0 or np.any(~np.isfinite(targets)) or np.any(targets < 0):
            raise LossylearnError("distortions must be finite, non-negative and not empty")
        if targets.min() < dmin - dtol:
            raise LossylearnError(
                f"distortion {targets.min():g} is below the least achievable distortion {dmin:g}"
            )
    order = np.argsort(-targets, kind="stable")
    solver = _SlopeSolver(p, d, tol, max_iter, method)
    rates = np.empty(targets.size)
    lowers = np.empty(targets.size)
    slopes = np.empty(targets.size)
    for idx in order:
        point = _solve_target(solver, float(targets[idx]), dmin, dmax, dtol)
        rates[idx] = point.rate_bits
        lowers[idx] = point.lower_bound_bits
        slopes[idx] = point.slope
    return RDCurve(
        distortions=targets,
        rates_bits=rates,
        lower_bounds_bits=lowers,
        slopes=slopes,
        iterations=solver.iterations,
    )
