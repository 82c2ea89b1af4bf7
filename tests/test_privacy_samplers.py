"""Samplers: exact discrete laws, float samplers, sources, determinism, add_noise."""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

from lossylearn.errors import DataError, PrivacyError
from lossylearn.privacy import (
    NoiseSource,
    NoiseSpec,
    add_noise,
    noise_pmf,
    sample_discrete_gaussian,
    sample_discrete_laplace,
    sample_noise,
)
from lossylearn.privacy.discrete import (
    bernoulli_exp,
    bernoulli_exp_fraction,
    bernoulli_exp_minus_one,
    gaussian_sigma2_fraction,
    gaussian_t,
    geometric_exp_minus_one,
)

N = 200_000


def chi_square_pvalue(samples: np.ndarray, spec: NoiseSpec) -> float:
    """Chi-square goodness of fit of integer samples against noise_pmf (tails pooled)."""
    lo, hi = int(samples.min()), int(samples.max())
    support = np.arange(lo - 1, hi + 2)
    p = noise_pmf(spec, support)
    expected = p * samples.size
    keep = np.flatnonzero(expected >= 5)
    a, z = support[keep[0]], support[keep[-1]]
    counts = np.bincount(samples - lo + 1, minlength=support.size).astype(float)
    inner = (support >= a) & (support <= z)
    obs = np.concatenate([[counts[support < a].sum()], counts[inner], [counts[support > z].sum()]])
    exp_left = spec_tail(spec, a, left=True) * samples.size
    exp_right = spec_tail(spec, z, left=False) * samples.size
    exp = np.concatenate([[exp_left], expected[inner], [exp_right]])
    mask = exp > 0
    obs, exp = obs[mask], exp[mask]
    exp *= obs.sum() / exp.sum()
    return float(stats.chisquare(obs, exp).pvalue)


def spec_tail(spec: NoiseSpec, edge: int, *, left: bool) -> float:
    far = np.arange(edge - 20_000, edge) if left else np.arange(edge + 1, edge + 20_001)
    return float(noise_pmf(spec, far).sum())


def binomial_z(hits: np.ndarray, p: float) -> float:
    return float((hits.mean() - p) / math.sqrt(p * (1 - p) / hits.size))


# ---------------------------------------------------------------------------------------------
# Bernoulli building blocks (CKS 2020 Algorithm 1)
# ---------------------------------------------------------------------------------------------
def test_bernoulli_exp_minus_one_has_probability_exp_minus_one() -> None:
    draws = bernoulli_exp_minus_one(NoiseSource.create(11, 0), 400_000)
    assert abs(binomial_z(draws, math.exp(-1))) < 4.5


def test_bernoulli_exp_fraction_and_integer_part() -> None:
    src = NoiseSource.create(12, 0)
    r = np.repeat(np.array([0, 3, 6], dtype=np.int64), 100_000)
    draws = bernoulli_exp_fraction(src, r, 7).reshape(3, -1)
    for row, gamma in zip(draws, (0.0, 3 / 7, 6 / 7), strict=True):
        if gamma == 0:
            assert row.all()
        else:
            assert abs(binomial_z(row, math.exp(-gamma))) < 4.5
    k = np.full(200_000, 2, dtype=np.int64)
    both = bernoulli_exp(src, k, np.full(200_000, 3, dtype=np.int64), 7)
    assert abs(binomial_z(both, math.exp(-(2 + 3 / 7)))) < 4.5


def test_geometric_count_of_exp_minus_one_successes() -> None:
    v = geometric_exp_minus_one(NoiseSource.create(13, 0), 200_000)
    q = math.exp(-1)
    assert v.min() == 0
    assert abs(v.mean() - q / (1 - q)) < 4.5 * math.sqrt(q / (1 - q) ** 2 / v.size)
    assert abs((v == 0).mean() - (1 - q)) < 0.005


def test_uniform_integers_and_bernoulli_are_exact_in_law() -> None:
    src = NoiseSource.create(14, 0)
    counts = np.bincount(src.below(7, 140_000), minlength=7)
    assert stats.chisquare(counts).pvalue > 1e-4
    wide = src.below((1 << 40) + 3, 50_000)
    assert wide.min() >= 0 and wide.max() < (1 << 40) + 3
    per = src.below(np.array([2, 3, 5] * 30_000))
    for j, m in enumerate((2, 3, 5)):
        assert stats.chisquare(np.bincount(per[j::3], minlength=m)).pvalue > 1e-4
    assert not src.bernoulli(0, 5, 1000).any()
    assert src.bernoulli(5, 5, 1000).all()
    third = src.bernoulli(1, 3, 200_000)
    assert abs(binomial_z(third, 1 / 3)) < 4.5


# ---------------------------------------------------------------------------------------------
# exact discrete Gaussian / Laplace vs their pmf
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("sigma", [25.5, 1.7])
def test_discrete_gaussian_matches_exact_pmf(sigma: float) -> None:
    spec = NoiseSpec("gaussian", sigma, discrete=True)
    x = sample_noise(N, spec, NoiseSource.create(21, 0))
    assert x.dtype == np.int64
    var = spec.variance
    assert abs(x.mean()) < 4.5 * math.sqrt(var / N)
    # variance of the sample variance: (mu4 - var^2)/n, mu4 from the exact pmf
    a = np.arange(-int(40 * sigma) - 2, int(40 * sigma) + 3)
    p = noise_pmf(spec, a)
    mu4 = float((a.astype(float) ** 4 * p).sum())
    assert abs(float((a.astype(float) ** 2 * p).sum()) - var) < 1e-9 * var
    assert abs(x.var() - var) < 4.5 * math.sqrt((mu4 - var**2) / N)
    assert chi_square_pvalue(x, spec) > 1e-4
    tv = 0.5 * np.abs(np.bincount(x - a[0], minlength=a.size) / N - p).sum()
    assert tv < 0.02


@pytest.mark.parametrize("b", [10.0, 2.5, 0.4])
def test_discrete_laplace_matches_exact_pmf(b: float) -> None:
    spec = NoiseSpec("laplace", b, discrete=True)
    assert spec.exact == Fraction(str(b))  # 10, 5/2, 2/5: the shortest rational
    x = sample_noise(N, spec, NoiseSource.create(22, 0))
    q = math.exp(-1 / b)
    assert abs(spec.variance - 2 * q / (1 - q) ** 2) < 1e-9 * spec.variance
    assert abs(x.mean()) < 4.5 * math.sqrt(spec.variance / N)
    assert chi_square_pvalue(x, spec) > 1e-4


def test_csprng_path_is_exact_too() -> None:
    src = NoiseSource.create(None, 0)
    assert src.secure and src.description == "csprng (os.urandom)"
    g = NoiseSpec("gaussian", 25.5, discrete=True)
    lap = NoiseSpec("laplace", 10.0, discrete=True)
    assert chi_square_pvalue(sample_noise(N, g, src), g) > 1e-6
    assert chi_square_pvalue(sample_noise(N, lap, src), lap) > 1e-6
    # two CSPRNG sources never agree
    a = sample_noise(1000, g, NoiseSource.create(None, 0))
    b = sample_noise(1000, g, NoiseSource.create(None, 0))
    assert not np.array_equal(a, b)


def test_large_sigma_uses_python_integers_only_in_far_tail() -> None:
    sigma2 = gaussian_sigma2_fraction(3.0e5)
    t = gaussian_t(sigma2)
    assert t == 300_001
    x = sample_discrete_gaussian(NoiseSource.create(23, 0), 50_000, sigma2)
    assert abs(x.std() / 3.0e5 - 1) < 0.02
    y = sample_discrete_laplace(NoiseSource.create(23, 1), 50_000, Fraction(7, 3))
    assert abs(np.abs(y).mean() - 2 * math.exp(-3 / 7) / (1 - math.exp(-6 / 7))) < 0.05


# ---------------------------------------------------------------------------------------------
# float samplers
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize("seed", [5, None])
def test_float_samplers_follow_their_laws(seed: int | None) -> None:
    src = NoiseSource.create(seed, 3)
    g = src.normal(25.5, 100_000)
    lap = src.laplace(10.0, 100_000)
    assert stats.kstest(g, stats.norm(scale=25.5).cdf).pvalue > 1e-5
    assert stats.kstest(lap, stats.laplace(scale=10.0).cdf).pvalue > 1e-5
    u = src.uniform_open(100_000)
    assert u.min() > 0 and u.max() < 1


@pytest.mark.parametrize("kind", ["gaussian", "laplace"])
def test_rounded_float_noise_matches_rounded_law(kind: str) -> None:
    spec = NoiseSpec(kind, 3.0)  # type: ignore[arg-type]
    x = np.rint(sample_noise(N, spec, NoiseSource.create(31, 0))).astype(np.int64)
    assert chi_square_pvalue(x, spec) > 1e-4


# ---------------------------------------------------------------------------------------------
# sources, determinism, add_noise
# ---------------------------------------------------------------------------------------------
def test_seeded_streams_are_deterministic_and_distinct() -> None:
    spec = NoiseSpec("gaussian", 25.5, discrete=True)
    a = sample_noise((4, 28, 28, 1), spec, NoiseSource.create(7, 3))
    b = sample_noise((4, 28, 28, 1), spec, NoiseSource.create(7, 3))
    c = sample_noise((4, 28, 28, 1), spec, NoiseSource.create(7, 4))
    d = sample_noise((4, 28, 28, 1), spec, NoiseSource.create(8, 3))
    assert a.shape == (4, 28, 28, 1)
    assert np.array_equal(a, b)
    assert not np.array_equal(a, c) and not np.array_equal(a, d)
    assert "SeedSequence(7" in NoiseSource.create(7, 3).description


def test_chunks_are_independent_of_how_work_is_split() -> None:
    images = np.random.default_rng(0).integers(0, 256, size=(10, 8, 8, 1), dtype=np.uint8)
    spec = NoiseSpec("laplace", 10.0, discrete=True)
    chunks = [images[0:4], images[4:8], images[8:10]]
    first = [add_noise(c, spec, NoiseSource.create(99, k)) for k, c in enumerate(chunks)]
    again = [
        add_noise(c, spec, NoiseSource.create(99, k)) for k, c in reversed(list(enumerate(chunks)))
    ]
    for x, y in zip(first, reversed(again), strict=True):
        assert x.tobytes() == y.tobytes()


def test_add_noise_clip_and_wrap() -> None:
    images = np.full((2, 16, 16, 3), 250, dtype=np.uint8)
    images[0] = 3
    for discrete in (False, True):
        clip = add_noise(images, NoiseSpec("gaussian", 20.0, discrete), NoiseSource.create(1, 0))
        assert clip.dtype == np.uint8 and clip.shape == images.shape
        assert (clip == 255).any() and (clip == 0).any()
        spec = NoiseSpec("gaussian", 20.0, discrete, range_handling="wrap")
        wrap = add_noise(images, spec, NoiseSource.create(1, 0))
        noise = sample_noise(images.shape, spec, NoiseSource.create(1, 0))
        z = images.astype(np.int64) + (noise if discrete else np.rint(images + noise) - images)
        assert np.array_equal(wrap, np.mod(z, 256).astype(np.uint8))
        assert np.array_equal(clip, np.clip(z, 0, 255).astype(np.uint8))


def test_float_path_rounds_half_to_even() -> None:
    class Fixed(NoiseSource):
        def normal(self, scale: float, size: int) -> np.ndarray:
            return np.array([0.5, 0.5, 1.5, -0.5][:size])

    src = Fixed(seed=0, stream=0, description="fixed")
    out = add_noise(np.array([0, 1, 2, 2], dtype=np.uint8), NoiseSpec("gaussian", 1.0), src)
    assert out.tolist() == [0, 2, 4, 2]


def test_add_noise_rejects_non_uint8_and_bad_sources() -> None:
    spec = NoiseSpec("gaussian", 5.0)
    with pytest.raises(DataError, match="uint8"):
        add_noise(np.zeros((1, 4, 4, 1), dtype=np.float32), spec, NoiseSource.create(0, 0))
    with pytest.raises(PrivacyError, match="stream"):
        NoiseSource.create(0, -1)
    with pytest.raises(PrivacyError, match="seed"):
        NoiseSource.create(-3, 0)


def test_gaussian_exponent_is_exact_in_int64_and_in_the_far_tail() -> None:
    from lossylearn.privacy.discrete import _gaussian_exponent

    cn, cd, d = 2601, 104, 2 * 26 * 2601 * 104
    abs_y = np.array([0, 1, 25, 26, 700, 20_650_000, 10**12], dtype=np.int64)
    k, r = _gaussian_exponent(abs_y, cn, cd, d)
    for y, kk, rr in zip(abs_y.tolist(), k.tolist(), r.tolist(), strict=True):
        q, rem = divmod((y * cd - cn) ** 2, d)
        assert (min(q, 1 << 62), rem) == (kk, rr)


def test_specs_survive_pickling_for_worker_processes() -> None:
    import pickle

    spec = NoiseSpec("gaussian", 25.5, discrete=True, range_handling="wrap")
    _ = spec.entropy_bits  # fills the cached law
    clone = pickle.loads(pickle.dumps(spec))
    assert clone == spec and clone.exact == spec.exact
    images = np.arange(64, dtype=np.uint8).reshape(1, 8, 8, 1)
    assert np.array_equal(
        add_noise(images, clone, NoiseSource.create(4, 2)),
        add_noise(images, spec, NoiseSource.create(4, 2)),
    )
