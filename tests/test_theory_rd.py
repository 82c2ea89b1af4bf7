"""R(D) (mix-SQP, SQUAREM and plain Blahut-Arimoto steps) against closed forms: binary, uniform
Q-ary, erasure, Gaussian grid."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lossylearn.errors import LossylearnError
from lossylearn.theory import (
    distortion_range,
    gaussian_rd,
    rate_distortion,
    rate_distortion_at_slope,
    rate_distortion_curve,
    solve_rate_distortion,
)
from lossylearn.theory.info import binary_entropy as hb
from lossylearn.theory.lagrangian import minimize_lagrangian


@pytest.fixture(autouse=True)
def _one_blas_thread():
    """Small matrices: threaded BLAS only adds contention on a shared 2-core machine."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


HAMMING2 = 1.0 - np.eye(2)


@pytest.mark.parametrize("p", [0.1, 0.3, 0.5])
def test_binary_rate_distortion_matches_closed_form(p: float) -> None:
    px = np.array([1 - p, p])
    for D in [0.0, 0.01, 0.05, 0.5 * p, 0.9 * p, p, 0.5]:
        point = solve_rate_distortion(px, HAMMING2, D)
        exact = hb(p) - hb(D) if D < p else 0.0
        assert point.rate_bits == pytest.approx(exact, abs=1e-9)
        assert point.lower_bound_bits <= point.rate_bits + 1e-12
        assert point.rate_bits - point.lower_bound_bits < 1e-8
        assert point.distortion == pytest.approx(D, abs=1e-8) or exact == 0.0


def test_fixed_slope_gives_the_parametric_point() -> None:
    # Binary Hamming: at slope beta the optimal distortion solves ln((1-D)/D) = beta.
    px = np.array([0.6, 0.4])
    for beta in [0.7, 1.5, 3.0]:
        point = rate_distortion_at_slope(px, HAMMING2, beta)
        D = 1.0 / (1.0 + math.exp(beta))
        assert point.distortion == pytest.approx(D, abs=1e-9)
        assert point.rate_bits == pytest.approx(hb(0.4) - hb(D), abs=1e-9)


def test_uniform_q_ary_hamming() -> None:
    q = 5
    px = np.full(q, 1.0 / q)
    d = 1.0 - np.eye(q)
    for D in [0.05, 0.2, 0.5, 0.79]:
        exact = math.log2(q) - hb(D) - D * math.log2(q - 1)
        assert rate_distortion(px, d, D) == pytest.approx(exact, abs=1e-9)
    assert rate_distortion(px, d, 0.8) == pytest.approx(0.0, abs=1e-12)


def test_erasure_distortion_with_infinite_entries() -> None:
    # Outputs {0, 1, erase}: flipping is forbidden (+inf), erasing costs 1. Erasing so that the
    # posterior given an erasure is uniform leaves H(X|Xhat) = D bits: R(D) = H(X) - D, D <= 2p.
    p = 0.3
    d = np.array([[0.0, np.inf, 1.0], [np.inf, 0.0, 1.0]])
    for D in [0.1, 0.4, 0.55]:
        assert rate_distortion([1 - p, p], d, D) == pytest.approx(hb(p) - D, abs=1e-8)


def test_straight_segment_is_time_shared() -> None:
    # A third output at distortion 0.4 from both symbols: R(D) follows 1 - Hb(D) up to the point
    # D0 whose tangent passes through (0.4, 0), then the straight line down to (0.4, 0).
    d = np.array([[0.0, 1.0, 0.4], [1.0, 0.0, 0.4]])
    px = np.array([0.5, 0.5])

    def gap(D: float) -> float:  # tangent condition f(D0) = f'(D0) (D0 - 0.4), f = 1 - Hb
        return (1 - hb(D)) + math.log2((1 - D) / D) * (D - 0.4)

    lo, hi = 1e-6, 0.399
    for _ in range(100):
        mid = 0.5 * (lo + hi)
        lo, hi = (lo, mid) if gap(mid) > 0 else (mid, hi)
    d0 = 0.5 * (lo + hi)
    for D in [0.5 * d0, d0 + 0.3 * (0.4 - d0), d0 + 0.8 * (0.4 - d0)]:
        exact = 1 - hb(D) if D <= d0 else (1 - hb(d0)) * (0.4 - D) / (0.4 - d0)
        point = solve_rate_distortion(px, d, D)
        assert point.rate_bits == pytest.approx(exact, abs=1e-7)
        assert point.distortion == pytest.approx(D, abs=1e-7)


def test_discretised_gaussian_matches_gaussian_rd() -> None:
    xs = np.linspace(-5.0, 5.0, 81)
    p = np.exp(-0.5 * xs**2)
    p /= p.sum()
    sigma = math.sqrt(float(p @ xs**2))
    d = (xs[:, None] - xs[None, :]) ** 2
    curve = rate_distortion_curve(p, d, distortions=[0.1, 0.3, 0.6])
    for D, r in zip(curve.distortions, curve.rates_bits, strict=True):
        assert r * math.log(2) == pytest.approx(gaussian_rd(D, sigma), abs=1e-6)


def test_curve_is_decreasing_convex_and_matches_single_solves() -> None:
    rng = np.random.default_rng(3)
    p = rng.dirichlet(np.ones(6))
    x = np.arange(6.0)
    d = np.abs(x[:, None] - x[None, :])
    curve = rate_distortion_curve(p, d, n_points=25)
    dmin, dmax = distortion_range(p, d)
    assert curve.distortions[0] == pytest.approx(dmin) and curve.distortions[-1] == pytest.approx(
        dmax
    )
    r = curve.rates_bits
    assert np.all(np.diff(r) <= 1e-10)
    assert np.all(np.diff(r, 2) >= -1e-8)
    assert r[-1] == pytest.approx(0.0, abs=1e-12)
    assert r[0] == pytest.approx(-(p * np.log2(p)).sum(), abs=1e-8)  # D_min = 0: lossless
    assert np.all(curve.rates_bits - curve.lower_bounds_bits < 1e-7)
    for i in (5, 13):
        assert rate_distortion(p, d, curve.distortions[i]) == pytest.approx(r[i], abs=1e-8)


def test_update_methods_agree() -> None:
    rng = np.random.default_rng(5)
    p = rng.dirichlet(np.ones(4))
    cost = 2.0 * rng.random((4, 5))
    sols = {
        m: minimize_lagrangian(p, cost, method=m, tol=1e-9, max_iter=200_000)
        for m in ("sqp", "squarem", "plain")
    }
    ref = sols["sqp"].upper
    for sol in sols.values():
        assert sol.lower <= ref + 1e-9
        assert sol.upper == pytest.approx(ref, abs=1e-8)


def test_invalid_inputs_raise_one_line_errors() -> None:
    with pytest.raises(LossylearnError, match="below the least achievable"):
        rate_distortion([0.5, 0.5], np.array([[0.1, 1.0], [1.0, 0.1]]), 0.05)
    with pytest.raises(LossylearnError, match="sums to"):
        rate_distortion([0.5, 0.6], HAMMING2, 0.1)
    with pytest.raises(LossylearnError, match="shape"):
        rate_distortion([0.5, 0.5], np.ones((3, 2)), 0.1)
    with pytest.raises(LossylearnError, match="unknown method"):
        rate_distortion([0.5, 0.5], HAMMING2, 0.1, method="newtonish")
