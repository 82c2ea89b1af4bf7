"""Closed forms against brute-force searches: binary R(D,P), R(D,C); Gaussian R(D,P), R(D,C)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lossylearn.errors import LossylearnError
from lossylearn.theory import (
    binary_rd,
    binary_rdc,
    binary_rdp,
    gaussian_rd,
    gaussian_rdc,
    gaussian_rdp,
    gaussian_rdp_distortion,
    gaussian_universal_rdp,
)
from lossylearn.theory.info import binary_entropy as hb


def _h(*probs: np.ndarray) -> np.ndarray:
    """Entropy (bits) of the joint given as arrays of equal shape, elementwise over the grid."""
    total = np.zeros_like(probs[0])
    for pr in probs:
        with np.errstate(divide="ignore", invalid="ignore"):
            total -= np.where(pr > 0, pr * np.log2(pr), 0.0)
    return total


def _binary_grid(p: float, n: int = 801):
    """All 2x2 channels a = P(1|0), b = P(0|1) on a grid, with rate, distortion and output mean."""
    a, b = np.meshgrid(np.linspace(0, 1, n), np.linspace(0, 1, n), indexing="ij")
    j00, j01, j10, j11 = (1 - p) * (1 - a), (1 - p) * a, p * b, p * (1 - b)
    q = j01 + j11
    rate = hb(p) + _h(q, 1 - q) - _h(j00, j01, j10, j11)
    return a, b, rate, j01 + j10, q


@pytest.mark.parametrize("p", [0.2, 0.35])
def test_binary_rdp_against_brute_force(p: float) -> None:
    a, b, rate, dist, q = _binary_grid(p)
    tv = np.abs(q - p)
    for D in np.linspace(0.02, 0.48, 12):
        for P in [0.01, 0.05, 0.1, 0.3]:
            brute = rate[(dist <= D) & (tv <= P)].min()
            closed = binary_rdp(p, D, P)
            assert closed <= brute + 1e-12
            assert brute - closed < 2e-3
        # Perfect realism (P = 0) is a line in the grid: search it directly, b = (1-p) a / p.
        aa = np.linspace(0, min(1.0, p / (1 - p)), 200_001)
        bb = (1 - p) * aa / p
        j = [(1 - p) * (1 - aa), (1 - p) * aa, p * bb, p * (1 - bb)]
        line_rate = 2 * hb(p) - _h(*j)
        line_dist = j[1] + j[2]
        brute0 = line_rate[line_dist <= D].min()
        closed0 = binary_rdp(p, D, 0.0)
        assert closed0 <= brute0 + 1e-12
        assert brute0 - closed0 < 5e-5


def test_binary_rdp_regimes_are_consistent() -> None:
    p = 0.3
    for D in np.linspace(0, 0.5, 101):
        values = [binary_rdp(p, D, P) for P in np.linspace(0, 0.4, 41)]
        assert min(values) >= 0.0
        assert all(x >= y - 1e-12 for x, y in zip(values, values[1:], strict=False))  # falls with P
        assert values[-1] == pytest.approx(binary_rd(p, D), abs=1e-12)
    # Continuity across the boundary D = P / (1 - 2(p - P)) where perception starts to bind.
    P = 0.05
    edge = P / (1 - 2 * (p - P))
    assert binary_rdp(p, edge + 1e-9, P) == pytest.approx(binary_rdp(p, edge - 1e-9, P), abs=1e-6)


@pytest.mark.parametrize(("p", "flip"), [(0.3, 0.1), (0.5, 0.2)])
def test_binary_rdc_against_brute_force(p: float, flip: float) -> None:
    a, b, rate, dist, q = _binary_grid(p, 601)
    # P(S=1, Xhat=y) for the BSC(flip) label
    s1_y1 = (1 - p) * a * flip + p * (1 - b) * (1 - flip)
    s1_y0 = (1 - p) * (1 - a) * flip + p * b * (1 - flip)
    h_s_given_y = _h(s1_y1, q - s1_y1, s1_y0, 1 - q - s1_y0) - _h(q, 1 - q)
    for D in [0.02, 0.1, 0.2, 0.4]:
        for C in [min(hb(flip) + extra, 0.999) for extra in (0.02, 0.08, 0.15, 0.25)]:
            feasible = (dist <= D) & (h_s_given_y <= C)
            brute = rate[feasible].min()
            closed = binary_rdc(p, D, C, flip=flip)
            assert closed <= brute + 1e-9
            assert brute - closed < 3e-3
    with pytest.raises(LossylearnError, match="below H"):
        binary_rdc(p, 0.1, hb(flip) - 0.01, flip=flip)


def _gaussian_channels(sigma: float, n: int = 1500):
    """Jointly Gaussian test channels Xhat = a X + N(0, b^2): rate (nats), MSE, output std."""
    a, b = np.meshgrid(np.linspace(0.0, 1.2, n), np.linspace(1e-4, 1.2 * sigma, n), indexing="ij")
    rate = 0.5 * np.log1p(a * a * sigma * sigma / (b * b))
    mse = (1 - a) ** 2 * sigma**2 + b * b
    out_std = np.sqrt(a * a * sigma * sigma + b * b)
    return a, b, rate, mse, out_std


def test_gaussian_rdp_against_search_over_gaussian_channels() -> None:
    sigma = 1.3
    a, b, rate, mse, out_std = _gaussian_channels(sigma)
    w2 = (sigma - out_std) ** 2
    for D in [0.2, 0.5, 1.0, 2.0]:
        for P in [0.0, 0.01, 0.1, 0.5]:
            # P = 0 is a surface of measure zero on the grid: give the search a sliver of room
            # and compare it with the closed form at that same perception level.
            p_eff = max(P, 1e-5)
            brute = rate[(mse <= D) & (w2 <= p_eff)].min()
            assert gaussian_rdp(D, p_eff, sigma) <= brute + 1e-9
            assert brute - gaussian_rdp(D, P, sigma) < 3e-3
    assert gaussian_rdp(0.5, math.inf, sigma) == pytest.approx(gaussian_rd(0.5, sigma))
    # Perfect realism has its own closed form: R(D, 0) = 1/2 ln(s^4 / (s^4 - (s^2 - D/2)^2)).
    s2 = sigma**2
    for D in [0.3, 1.0, 2.5]:
        assert gaussian_rdp(D, 0.0, sigma) == pytest.approx(
            0.5 * math.log(s2 * s2 / (s2 * s2 - (s2 - D / 2) ** 2))
        )


def test_gaussian_dp_region_inverts_rdp_and_is_universal() -> None:
    sigma = 0.8
    for R in [0.1, 0.5, 1.5]:
        for P in [0.0, 0.02, 0.2]:
            D = gaussian_rdp_distortion(R, P, sigma)
            assert gaussian_rdp(D, P, sigma) == pytest.approx(R, abs=1e-9)
    rng = np.random.default_rng(2)
    for _ in range(20):
        targets = [(float(rng.uniform(0.05, 1.2)), float(rng.uniform(0.0, 0.3))) for _ in range(4)]
        best = max(gaussian_rdp(D, P, sigma) for D, P in targets)
        assert gaussian_universal_rdp(targets, sigma) == pytest.approx(best, abs=1e-9)  # A = 0


def test_gaussian_rdc_against_search_over_gaussian_channels() -> None:
    sigma, gain, tau = 1.0, 0.8, 0.5
    a, b, rate, mse, out_std = _gaussian_channels(sigma)
    with np.errstate(divide="ignore", invalid="ignore"):
        var_x_given_y = np.where(out_std > 0, sigma**2 * b * b / out_std**2, sigma**2)
    h_s = 0.5 * np.log(2 * math.pi * math.e * (gain**2 * var_x_given_y + tau**2))
    for D in [0.1, 0.3, 0.8]:
        for C in [0.8, 1.0, 1.2]:
            closed = gaussian_rdc(D, C, sigma, gain=gain, label_noise=tau)
            brute = rate[(mse <= D) & (h_s <= C)].min()
            assert closed <= brute + 1e-9
            assert brute - closed < 3e-3
    with pytest.raises(LossylearnError, match="below h"):
        gaussian_rdc(0.5, 0.1, sigma, gain=gain, label_noise=tau)


def test_gaussian_dp_region_against_search_over_decoders() -> None:
    # Representation of rate R: U = E[X|Z] ~ N(0, s^2); decoders Xhat = a U + b W, W ~ N(0, 1).
    sigma = 1.0
    a, b = np.meshgrid(np.linspace(0.0, 2.5, 1201), np.linspace(0.0, 1.2, 1201), indexing="ij")
    for R in [0.2, 0.7, 1.5]:
        s2 = sigma**2 * (1 - math.exp(-2 * R))
        mse = sigma**2 - 2 * a * s2 + a * a * s2 + b * b
        w2 = (sigma - np.sqrt(a * a * s2 + b * b)) ** 2
        for P in [0.0, 0.01, 0.1, 1.0]:
            p_eff = max(P, 1e-6)
            brute = mse[w2 <= p_eff].min()
            assert gaussian_rdp_distortion(R, p_eff, sigma) <= brute + 1e-9
            assert brute - gaussian_rdp_distortion(R, P, sigma) < 3e-3
