"""The LCoN theorem on finite sources: eq. (9), posterior sampling, Corollary V.1, (13), (16)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from lossylearn.errors import LossylearnError
from lossylearn.theory import (
    corollary_check,
    iid_source,
    lcon_check,
    leakage_ceiling,
    markov_source,
    privacy_leakage_bound,
    random_source,
    storage_rate,
    symmetric_noise,
    wrapped_laplace_noise,
)
from lossylearn.theory.info import entropy
from lossylearn.theory.sources import add_noise, block_distortion, is_nonsingular, joint_block_law


@pytest.fixture(autouse=True)
def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


@pytest.mark.parametrize("kind", ["iid", "markov"])
@pytest.mark.parametrize("q", [2, 3, 4])
def test_rate_equals_formula_and_reconstructions_follow_the_clean_law(kind: str, q: int) -> None:
    source = random_source(kind, q, np.random.default_rng(100 + q))
    noise = wrapped_laplace_noise(q, 0.8) if kind == "iid" else symmetric_noise(q, 0.3)
    for row in lcon_check(source, noise, (1, 2, 3)):
        assert abs(row.rate_solver_bits - row.rate_formula_bits) < 1e-8  # issue asks 1e-4
        assert row.lower_bound_bits <= row.rate_solver_bits + 1e-12
        assert row.recon_tv < 1e-6
        assert row.joint_tv < 1e-6
        assert row.distortion == pytest.approx(entropy(noise), abs=1e-7)
        # In matched units the optimal slope is exactly 1: beta = k ln 2 for a per-letter
        # distortion in bits over k-blocks.
        assert row.slope == pytest.approx(row.k * math.log(2), rel=1e-6)


def test_noise_with_forbidden_values_gives_infinite_distortions() -> None:
    # P(N = a) = 0 makes rho_N(a) infinite (and D_max infinite); the theorem still holds.
    source = random_source("markov", 4, np.random.default_rng(4))
    for row in lcon_check(source, [0.8, 0.2, 0.0, 0.0], (1, 2, 3)):
        assert abs(row.rate_solver_bits - row.rate_formula_bits) < 1e-8
        assert row.recon_tv < 1e-6


def test_block_length_four_on_256_symbols() -> None:
    source = random_source("markov", 4, np.random.default_rng(7))
    (row,) = lcon_check(source, symmetric_noise(4, 0.25), (4,))
    assert abs(row.rate_solver_bits - row.rate_formula_bits) < 1e-8
    assert row.recon_tv < 1e-6


def test_corollary_partial_denoising() -> None:
    source = random_source("markov", 3, np.random.default_rng(1))
    rows = corollary_check(source, symmetric_noise(3, 0.2), symmetric_noise(3, 0.15), (1, 2))
    for row in rows:
        assert abs(row.rate_solver_bits - row.rate_formula_bits) < 1e-8
        assert row.tv_to_partially_noisy < 1e-6  # samples of X + U ...
        assert row.tv_to_clean > 0.02  # ... not of X


def test_storage_rate_equals_leakage_bound_and_stays_below_the_ceiling() -> None:
    source = markov_source([[0.9, 0.1, 0.0], [0.2, 0.5, 0.3], [0.1, 0.1, 0.8]])
    previous = math.inf
    for level in [0.05, 0.2, 0.4, 0.6]:
        noise = symmetric_noise(3, level)
        for k in (1, 2, 3):
            rate = storage_rate(source, noise, k)
            assert privacy_leakage_bound(source, noise, k) == pytest.approx(rate, abs=1e-12)
            assert 0.0 <= rate <= leakage_ceiling(noise) + 1e-12
        assert rate < previous  # more noise entropy: cheaper storage and less leakage
        previous = rate
    assert storage_rate(source, symmetric_noise(3, 2 / 3), 2) == pytest.approx(0.0, abs=1e-12)
    # Memory makes the per-symbol rate fall with k towards the entropy-rate limit.
    rates = [storage_rate(source, symmetric_noise(3, 0.2), k) for k in (1, 2, 3, 4)]
    assert all(a > b for a, b in zip(rates, rates[1:], strict=False))


def test_block_laws_and_noise() -> None:
    source = markov_source([[0.7, 0.3], [0.4, 0.6]])
    law = source.block_law(3)
    assert law.sum() == pytest.approx(1.0)
    for axis in range(3):  # stationarity: every coordinate has the stationary marginal
        others = tuple(a for a in range(3) if a != axis)
        assert law.sum(axis=others) == pytest.approx(source.marginal)
    assert source.marginal == pytest.approx([4 / 7, 3 / 7])
    pair = law.sum(axis=2)
    assert pair == pytest.approx(source.marginal[:, None] * np.array([[0.7, 0.3], [0.4, 0.6]]))
    iid = iid_source([0.2, 0.8]).block_law(2)
    assert iid == pytest.approx(np.outer([0.2, 0.8], [0.2, 0.8]))
    noise = np.array([0.7, 0.2, 0.1])
    z = add_noise(iid_source([1.0, 0.0, 0.0]).block_law(2), noise)
    assert z == pytest.approx(np.outer(noise, noise))  # X = 0: Z^k is the noise itself
    joint = joint_block_law(source.block_law(2), [0.8, 0.2])
    assert joint.sum(axis=0) == pytest.approx(source.block_law(2).ravel())
    assert joint.sum(axis=1) == pytest.approx(add_noise(source.block_law(2), [0.8, 0.2]).ravel())
    d = block_distortion(np.array([0.0, 1.0, 3.0]), 2)
    assert d[0, 0] == 0.0
    assert d[np.ravel_multi_index((2, 1), (3, 3)), np.ravel_multi_index((0, 0), (3, 3))] == 2.0


def test_singular_noise_is_refused() -> None:
    assert not is_nonsingular([0.25, 0.25, 0.25, 0.25])
    assert not is_nonsingular([0.5, 0.0, 0.5, 0.0])  # eigenvalue at frequency 1/2 vanishes
    assert is_nonsingular(symmetric_noise(4, 0.3))
    with pytest.raises(LossylearnError, match="singular"):
        lcon_check(iid_source([0.5, 0.5]), [0.5, 0.5], (1,))
    with pytest.raises(LossylearnError, match="reducible"):
        markov_source([[1.0, 0.0], [0.0, 1.0]])
