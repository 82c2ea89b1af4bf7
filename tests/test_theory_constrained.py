"""R(D, P) and R(D, C) solvers against closed forms, brute force and an independent solver."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lossylearn.errors import LossylearnError
from lossylearn.theory import (
    binary_rdc,
    binary_rdp,
    least_distortion_under_perception,
    rate_distortion,
    rate_distortion_classification,
    solve_rate_distortion_classification,
    solve_rate_distortion_perception,
)
from lossylearn.theory.channel_program import (
    ChannelProgram,
    CostConstraint,
    mutual_information_nats,
)
from lossylearn.theory.channel_solver import solve_program
from lossylearn.theory.info import binary_entropy as hb
from lossylearn.theory.info import conditional_entropy
from lossylearn.theory.rd import solve_rate_distortion

HAMMING2 = 1.0 - np.eye(2)
LN2 = math.log(2.0)


@pytest.fixture(autouse=True)
def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def test_rdp_binary_matches_closed_form_with_certificate() -> None:
    p = 0.3
    px = np.array([1 - p, p])
    for D in np.linspace(0.0, 0.45, 10):
        for P in [0.0, 0.02, 0.05, 0.1, 0.3]:
            point = solve_rate_distortion_perception(px, HAMMING2, D, P)
            assert point.rate_bits == pytest.approx(binary_rdp(p, D, P), abs=1e-7)
            assert point.lower_bound_bits <= point.rate_bits + 1e-12
            assert point.rate_bits - point.lower_bound_bits < 1e-7
            assert point.distortion <= D + 1e-7
            assert point.constraint_value <= P + 1e-7


def test_rdp_three_symbols_beats_every_sampled_channel() -> None:
    rng = np.random.default_rng(11)
    p = np.array([0.5, 0.3, 0.2])
    x = np.arange(3.0)
    d = (x[:, None] - x[None, :]) ** 2
    D, P = 0.35, 0.05
    point = solve_rate_distortion_perception(p, d, D, P)
    assert point.rate_bits - point.lower_bound_bits < 1e-7
    assert point.rate_bits > rate_distortion(p, d, D) + 1e-3  # the perception constraint binds
    # Random channels (mixed towards the identity so that many are feasible) never do better.
    w = rng.dirichlet(np.full(3, 0.7), size=(40_000, 3))
    w = 0.6 * w + 0.4 * np.eye(3)[None]
    joint = p[None, :, None] * w
    q = joint.sum(axis=1)
    feasible = ((joint * d[None]).sum(axis=(1, 2)) <= D) & (0.5 * np.abs(q - p).sum(axis=1) <= P)
    assert feasible.sum() > 100
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.where(joint > 0, w / q[:, None, :], 1.0)
    rates = (joint * np.log2(ratio)).sum(axis=(1, 2))
    assert rates[feasible].min() >= point.rate_bits - 1e-9


def test_rdp_infeasible_target_is_detected_exactly() -> None:
    # A cyclic shift is free but moves the law; with P = 0 only costly channels remain.
    p = np.array([0.6, 0.3, 0.1])
    d = np.array([[1.0, 0.0, 1.0], [1.0, 1.0, 0.0], [0.0, 1.0, 1.0]])
    least = least_distortion_under_perception(p, d, 0.0)
    # Free moves 0->1, 1->2, 2->0 carry at most min(0.6,0.3) + min(0.3,0.1) + min(0.1,0.6) = 0.5
    # of the mass while keeping the output law equal to p; the rest costs 1.
    assert least == pytest.approx(0.5, abs=1e-9)
    with pytest.raises(LossylearnError, match="least distortion with perception"):
        solve_rate_distortion_perception(p, d, least - 0.01, 0.0)
    assert solve_rate_distortion_perception(p, d, least + 0.01, 0.0).rate_bits > 0


#: Blahut-Arimoto's stopping tolerance (nats): it stops once Blahut's certified gap is below it.
BA_TOL_NATS = 1e-10
#: The accuracy asked of the independent solver (bits): its certified gap. SLSQP stops when the
#: objective changes by less than ftol, which can be short of the optimum by an amount that moves
#: with the processor's rounding; measured after its polishing restarts, over OpenBLAS core types
#: Prescott..SkylakeX and inputs perturbed by 1 ulp to 1e-12: at most 6e-8 bits (2e-6 without the
#: restarts). The same bound is the `exact` margin of universal.py.
SLSQP_GAP_BITS = 1e-6
#: Rounding in the certificates themselves: rates ~0.3 bits summed over 12 terms; the tangent move
#: of BA's rate to D (distortion met to 1e-8 of the span) adds a second-order ~1e-15.
ROUNDING_BITS = 1e-12


def test_ba_agrees_with_an_independent_solver() -> None:
    # Two certified solvers of R(D): Blahut-Arimoto along the slope (interval [lower, rate]) and
    # SLSQP on the channel program with a weak-duality bound (interval [lower, rate], its channel
    # feasible to `violation`, which can lower its rate below R(D) by at most slope * violation).
    # Both intervals contain R(D), so they must overlap, and the two rates then agree to the sum
    # of the two certified gaps: a tolerance derived from the solvers' own accuracy, not a
    # constant tuned to one machine.
    rng = np.random.default_rng(4)
    for _ in range(3):
        p = rng.dirichlet(np.ones(4))
        d = rng.random((4, 3)) * 2
        D = 0.5 * (p @ d.min(axis=1)) + 0.5 * (p @ d).min()
        program = ChannelProgram(p_x=p, n_outputs=3, costs=(CostConstraint(d, D),))
        sol = solve_program(program, [np.full((4, 3), 1 / 3)])
        ba = solve_rate_distortion(p, d, D)
        ba_gap = ba.rate_bits - ba.lower_bound_bits
        slsqp_rate, slsqp_lower = sol.rate / LN2, sol.lower_bound / LN2
        slsqp_gap = slsqp_rate - slsqp_lower
        infeasibility = ba.slope * sol.violation / LN2
        assert ba.converged
        assert -ROUNDING_BITS <= ba_gap <= BA_TOL_NATS / LN2 + ROUNDING_BITS
        assert -ROUNDING_BITS <= slsqp_gap <= SLSQP_GAP_BITS
        # The certified intervals overlap ...
        assert ba.lower_bound_bits <= slsqp_rate + infeasibility + ROUNDING_BITS
        assert slsqp_lower <= ba.rate_bits + ROUNDING_BITS
        # ... so the rates agree to the solvers' combined error bars.
        tolerance = ba_gap + slsqp_gap + infeasibility + ROUNDING_BITS
        assert abs(slsqp_rate - ba.rate_bits) <= tolerance
        assert mutual_information_nats(p, sol.channel) == pytest.approx(sol.rate)


def _bsc_joint(p: float, flip: float) -> np.ndarray:
    return np.array([[(1 - p) * (1 - flip), (1 - p) * flip], [p * flip, p * (1 - flip)]])


def test_rdc_binary_matches_closed_form() -> None:
    p, flip = 0.3, 0.1
    joint = _bsc_joint(p, flip)
    for D in [0.02, 0.1, 0.2, 0.35]:
        for C in [hb(flip) + 0.01, 0.55, 0.7, 0.85, 1.0]:
            point = solve_rate_distortion_classification(joint, HAMMING2, D, C)
            assert point.rate_bits == pytest.approx(binary_rdc(p, D, C, flip=flip), abs=1e-6)
            assert point.lower_bound_bits <= point.rate_bits + 1e-12
            assert point.constraint_value <= C + 1e-7


def test_rdc_asymmetric_label_against_brute_force() -> None:
    # Z-channel label: S = 0 when X = 0; S = 1 w.p. 0.7 when X = 1. No closed form known.
    p = 0.4
    joint = np.array([[1 - p, 0.0], [0.3 * p, 0.7 * p]])
    n = 501
    a, b = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n), indexing="ij")
    chans = np.stack([np.stack([1 - a, a], -1), np.stack([b, 1 - b], -1)], axis=-2)  # (n,n,x,y)
    px = np.array([1 - p, p])
    pxy = px[:, None] * chans
    q = pxy.sum(axis=-2)
    psy = np.einsum("xs,...xy->...sy", joint, chans)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(pxy > 0, pxy * np.log2(chans / q[..., None, :]), 0).sum((-1, -2))
        h_s_y = -np.where(psy > 0, psy * np.log2(psy / q[..., None, :]), 0).sum((-1, -2))
    dist = (pxy * HAMMING2).sum((-1, -2))
    for D, C in [(0.1, 0.5), (0.25, 0.55), (0.3, 0.7), (0.05, 0.45)]:
        brute = rate[(dist <= D) & (h_s_y <= C)].min()
        point = solve_rate_distortion_classification(joint, HAMMING2, D, C)
        assert point.rate_bits <= brute + 1e-9
        assert brute - point.rate_bits < 3e-3
        assert point.lower_bound_bits <= point.rate_bits
        h = conditional_entropy(joint.T @ point.channel)
        assert h <= C + 1e-7


def test_rdc_errors() -> None:
    joint = _bsc_joint(0.3, 0.1)
    with pytest.raises(LossylearnError, match="below H"):
        rate_distortion_classification(joint, HAMMING2, 0.1, hb(0.1) - 0.01)
    with pytest.raises(LossylearnError, match="2-D joint law"):
        rate_distortion_classification(np.array([0.5, 0.5]), HAMMING2, 0.1, 0.9)
