"""Rate-distortion functions ``R(D)`` of finite sources, with certified lower bounds.

At a slope ``beta >= 0`` (nats per unit of distortion) the optimal test channel minimises the
Lagrangian ``I(X; Xhat) + beta * E d(X, Xhat)``; :mod:`~lossylearn.theory.lagrangian` finds it
(mix-SQP by default, Blahut-Arimoto steps on request: see its ``method``) together with Blahut's
two-sided bound on the minimum.

A target distortion ``D`` is met by finding the slope: the distortion of the optimal channel falls
monotonically with ``beta``. The search brackets ``log beta`` and runs a safeguarded secant,
starting from a slope interpolated in the table of earlier evaluations and warm-starting each run
from the previous output law. Where ``R(D)`` has a straight segment the distortion jumps at one
slope; the two channels either side are then mixed (time sharing), which is exact there. The rate
at ``D`` is the channel's rate moved along the tangent of slope ``-beta`` (a second-order
correction) and comes with the certified lower bound ``L(beta) - beta D``. Rates are in bits.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from lossylearn.errors import LossylearnError
from lossylearn.theory.info import (
    FloatArray,
    as_distortion,
    as_nonneg,
    as_pmf,
    mutual_information,
    plain,
)
from lossylearn.theory.lagrangian import LagrangianSolution, minimize_lagrangian

__all__ = [
    "RDCurve",
    "RDPoint",
    "distortion_range",
    "rate_distortion",
    "rate_distortion_at_slope",
    "rate_distortion_curve",
    "solve_rate_distortion",
]

LN2 = math.log(2.0)


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
        keys = ("distortion", "rate_bits", "lower_bound_bits", "slope")
        columns = (self.distortions, self.rates_bits, self.lower_bounds_bits, self.slopes)
        return [dict(zip(keys, map(float, row), strict=True)) for row in zip(*columns, strict=True)]


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


def rate_distortion_at_slope(
    p_x: ArrayLike,
    distortion: ArrayLike,
    slope: float,
    *,
    tol: float = 1e-10,
    max_iter: int = 10_000,
    q0: ArrayLike | None = None,
    method: str = "auto",
) -> RDPoint:
    """The point of ``R(D)`` where its slope is ``-slope`` (nats per unit distortion), in bits.

    ``method`` picks the output-law solver (:func:`~lossylearn.theory.lagrangian.minimize_lagrangian`).
    """
    p = as_pmf(p_x, "p_x")
    d = as_distortion(distortion, p.size)
    beta = float(slope)
    if math.isnan(beta) or beta < 0:
        raise LossylearnError(f"slope must be >= 0; got {plain(slope)}")
    if beta == 0.0:
        return _zero_rate_point(p, d)
    q = None if q0 is None else np.asarray(q0, float)
    cost = _slope_cost(d, beta)
    sol = minimize_lagrangian(p, cost, q0=q, tol=tol, max_iter=max_iter, method=method)
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
    """Lagrangian solver runs at chosen slopes, warm-started from the previous output law.

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
    ``D`` along the tangent, an error of second order); ``max_iter`` caps each solver run and
    ``method`` picks it (:data:`~lossylearn.theory.lagrangian.METHODS`; ``"auto"``: mix-SQP).
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
    return dataclasses.replace(point, iterations=solver.iterations)


def rate_distortion(p_x: ArrayLike, distortion: ArrayLike, D: float, **options: Any) -> float:
    """``R(D)`` in bits for a finite source ``p_x`` and distortion matrix ``d[x, xhat]``: the rate
    of :func:`solve_rate_distortion`, which takes the same keyword ``options`` (``tol``,
    ``distortion_tol``, ``max_iter``, ``method``)."""
    return solve_rate_distortion(p_x, distortion, D, **options).rate_bits


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
