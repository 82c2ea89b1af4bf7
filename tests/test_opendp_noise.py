"""Release noise through OpenDP (issue 16): the two exact samplers against the exact pmf and each
other, and the manifest naming the sampler.

Statistical design (each check stated with its false-alarm rate):

- Laws: discrete Gaussian sigma = 25.5 (sigma^2 = 2601/4: the README's PSNR 20 job) and discrete
  Laplace b = 10. Both scales are doubles, so OpenDP and lossylearn sample exactly the same law.
- Draws: OpenDP (CSPRNG, fresh every run) N_OPENDP = 500,000 per law, about 8 s in all (OpenDP
  draws about 1e5 values/s); lossylearn's seeded sampler N_SEEDED = 4,000,000 per law (fixed seed,
  so its checks are deterministic: they pass or fail the same way every run).
- Per sample and law: a chi-square goodness of fit against ``noise_pmf`` (integer bins, tails
  pooled until every bin expects >= 1,000 draws, so the asymptotic chi-square tail is accurate);
  a Kolmogorov-Smirnov distance ``sup |F_n - F|`` held to the DKW-Massart bound
  ``P(D > eps) <= 2 exp(-2 n eps^2)``, which holds for every n and every law, discrete included;
  and a z-test of the second moment (variance known exactly from the pmf).
- OpenDP against lossylearn, per law: a chi-square test of homogeneity (2 x bins table) and the
  two-sample KS distance against the sum of the two one-sample DKW bounds (each at ALPHA/2).
- Every check rejects at ALPHA = 1e-7. Ten checks draw fresh randomness each run (3 per OpenDP
  sample, 2 per two-sample comparison), so a correct sampler fails this file by chance with
  probability at most 10 x 1e-7 = 1e-6 per run (Bonferroni).
- Power: the same checks at the same sizes reject a discrete Gaussian 2% too wide
  (``test_the_checks_catch_a_two_percent_scale_error``), deterministically (seeded draws).
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from scipy import stats

import lossylearn
from lossylearn.data import ImageDataset
from lossylearn.errors import PrivacyError
from lossylearn.privacy import NoiseSource, NoiseSpec, noise_pmf, resolve_noise, sample_noise
from lossylearn.privacy import opendp_sampler as odp

ALPHA = 1e-7
N_OPENDP = 500_000
N_SEEDED = 4_000_000
MIN_EXPECTED = 1_000
Z_LIMIT = float(stats.norm.isf(ALPHA / 2))  # two-sided: 5.33
SPECS = {
    "gaussian": NoiseSpec("gaussian", 25.5, discrete=True),
    "laplace": NoiseSpec("laplace", 10.0, discrete=True),
}


def _release(spec: NoiseSpec) -> NoiseSpec:
    return NoiseSpec(spec.kind, spec.scale, discrete=True, backend="opendp")


def _law(spec: NoiseSpec) -> tuple[np.ndarray, np.ndarray]:
    """Support and pmf out to where the remaining mass is far below float precision."""
    reach = int(60 * spec.scale) if spec.kind == "gaussian" else int(80 * spec.scale)
    support = np.arange(-reach, reach + 1)
    return support, noise_pmf(spec, support)


def _edges(p: np.ndarray, n: int) -> np.ndarray:
    """Left indices of bins of consecutive integers, each expecting >= MIN_EXPECTED of ``n``."""
    starts, acc = [0], 0.0
    for i, pi in enumerate(p):
        acc += pi * n
        if acc >= MIN_EXPECTED and i + 1 < p.size:
            starts.append(i + 1)
            acc = 0.0
    if acc < MIN_EXPECTED:  # the last bin is short: merge it into the one before
        starts.pop()
    return np.asarray(starts)


def _binned(x: np.ndarray, support: np.ndarray, starts: np.ndarray) -> np.ndarray:
    idx = np.clip(x - support[0], 0, support.size - 1)
    per_value = np.bincount(idx, minlength=support.size)
    return np.add.reduceat(per_value, starts).astype(float)


def _cdf_distance(x: np.ndarray, support: np.ndarray, cdf: np.ndarray) -> float:
    counts = np.bincount(np.clip(x - support[0], 0, support.size - 1), minlength=support.size)
    return float(np.abs(np.cumsum(counts) / x.size - cdf).max())


def _dkw(n: int, alpha: float) -> float:
    return math.sqrt(math.log(2.0 / alpha) / (2.0 * n))


def _check_against_pmf(x: np.ndarray, spec: NoiseSpec) -> None:
    support, p = _law(spec)
    assert x.dtype == np.int64 and x.min() >= support[0] and x.max() <= support[-1]
    starts = _edges(p, x.size)
    observed = _binned(x, support, starts)
    expected = np.add.reduceat(p, starts) * x.size
    expected *= observed.sum() / expected.sum()  # the mass beyond the support is < 1e-30
    chi2 = stats.chisquare(observed, expected)
    assert chi2.pvalue > ALPHA, f"chi-square p = {chi2.pvalue:.3g} over {starts.size} bins"
    distance = _cdf_distance(x, support, np.cumsum(p))
    assert distance <= _dkw(x.size, ALPHA), f"KS distance {distance:.3g}"
    var = float((support.astype(float) ** 2 * p).sum())
    mu4 = float((support.astype(float) ** 4 * p).sum())
    z = (float(np.mean(x.astype(float) ** 2)) - var) / math.sqrt((mu4 - var**2) / x.size)
    assert abs(z) < Z_LIMIT, f"second-moment z = {z:.2f}"


@pytest.fixture(scope="module")
def draws() -> dict[tuple[str, str], np.ndarray]:
    out = {}
    for kind, spec in SPECS.items():
        out[kind, "opendp"] = sample_noise(N_OPENDP, _release(spec), NoiseSource.create(None, 0))
        out[kind, "seeded"] = sample_noise(N_SEEDED, spec, NoiseSource.create(16, 0))
    return out


@pytest.mark.parametrize("sampler", ["opendp", "seeded"])
@pytest.mark.parametrize("kind", ["gaussian", "laplace"])
def test_each_sampler_matches_the_exact_pmf(draws, kind: str, sampler: str) -> None:
    _check_against_pmf(draws[kind, sampler], SPECS[kind])


@pytest.mark.parametrize("kind", ["gaussian", "laplace"])
def test_opendp_and_lossylearn_draw_the_same_law(draws, kind: str) -> None:
    a, b = draws[kind, "opendp"], draws[kind, "seeded"]
    assert _release(SPECS[kind]).exact == SPECS[kind].exact  # the very same law
    support, p = _law(SPECS[kind])
    starts = _edges(p, a.size)
    table = np.stack([_binned(a, support, starts), _binned(b, support, starts)])
    homogeneity = stats.chi2_contingency(table, correction=False)
    assert homogeneity.pvalue > ALPHA, f"homogeneity p = {homogeneity.pvalue:.3g}"
    ca = np.cumsum(np.bincount(a - support[0], minlength=support.size)) / a.size
    cb = np.cumsum(np.bincount(b - support[0], minlength=support.size)) / b.size
    bound = _dkw(a.size, ALPHA / 2) + _dkw(b.size, ALPHA / 2)
    assert float(np.abs(ca - cb).max()) <= bound


def test_the_checks_catch_a_two_percent_scale_error() -> None:
    """Power at OpenDP's sample size: a sampler 2% too wide fails (seeded, so deterministic)."""
    wrong = sample_noise(N_OPENDP, NoiseSpec("gaussian", 25.5 * 1.02, discrete=True),
                         NoiseSource.create(17, 0))  # fmt: skip
    with pytest.raises(AssertionError, match="chi-square"):
        _check_against_pmf(wrong, SPECS["gaussian"])
    support, p = _law(SPECS["gaussian"])
    var = float((support.astype(float) ** 2 * p).sum())
    mu4 = float((support.astype(float) ** 4 * p).sum())
    z = (float(np.mean(wrong.astype(float) ** 2)) - var) / math.sqrt((mu4 - var**2) / wrong.size)
    assert z > 3 * Z_LIMIT


# ---------------------------------------------------------------------------------------------
# the scale OpenDP is given, and what the manifest says
# ---------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "sigma2", [Fraction(289, 100), Fraction(2601, 4), Fraction(30725411584, 33951)]
)
def test_gaussian_scale_is_the_smallest_double_at_or_above(sigma2: Fraction) -> None:
    s = odp.gaussian_scale(sigma2)
    assert Fraction(s) ** 2 >= sigma2 > Fraction(math.nextafter(s, 0.0)) ** 2
    exact = odp.release_exact("gaussian", sigma2)
    assert exact >= sigma2 and float(exact / sigma2 - 1) < 5e-16
    assert odp.release_exact("gaussian", exact) == exact  # idempotent: manifests round-trip
    b = odp.laplace_scale(Fraction(33, 10))
    assert Fraction(b) >= Fraction(33, 10) > Fraction(math.nextafter(b, 0.0))


def test_release_runs_name_opendp_and_seeded_runs_name_lossylearn() -> None:
    spec, g = resolve_noise(epsilon=1, delta=1e-5, discrete=True, image_shape=(28, 28, 1))
    d = spec.to_dict()
    assert d["backend"] == "opendp" and f"OpenDP {odp.opendp_version()}" in d["sampler"]
    assert "OpenDP" in g.randomness and "csprng" in g.randomness
    assert float(spec.exact) == pytest.approx(spec.scale**2, rel=1e-8)
    assert g.epsilon == 1.0  # rounding sigma^2 up to OpenDP's double cannot raise epsilon
    assert NoiseSpec.from_dict(d) == spec
    seeded, gs = resolve_noise(epsilon=1, delta=1e-5, discrete=True, image_shape=(28, 28, 1),
                               seeded=True)  # fmt: skip
    assert seeded.backend == "lossylearn" and "OpenDP" not in seeded.sampler
    assert gs.randomness.startswith("seeded")
    float_spec, gf = resolve_noise(psnr=20, image_shape=(28, 28, 1))
    assert float_spec.backend == "lossylearn" and gf.randomness == "csprng (os.urandom)"
    with pytest.raises(PrivacyError, match="cannot be seeded"):
        sample_noise(10, spec, NoiseSource.create(3, 0))
    with pytest.raises(PrivacyError, match="discrete noise only"):
        NoiseSpec("gaussian", 3.0, backend="opendp")


def test_opendp_features_are_left_as_found() -> None:
    import opendp.prelude as dp

    before = set(dp.GLOBAL_FEATURES)
    x = odp.sample("laplace", Fraction(7, 2), 1000)  # a scale no other test has built
    assert x.shape == (1000,) and x.dtype == np.int64
    assert set(dp.GLOBAL_FEATURES) == before


def test_unseeded_discrete_compress_draws_through_opendp(tmp_path) -> None:
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (24, 8, 8, 1), dtype=np.uint8)
    labels = (np.arange(24) % 3).astype(np.int64)
    ds = ImageDataset(name="tiny", train_images=images, train_labels=labels,
                      test_images=images[:2].copy(), test_labels=labels[:2].copy(),
                      classes=("a", "b", "c"), source="test arrays")  # fmt: skip
    m = lossylearn.compress(out=tmp_path / "s", dataset=ds, sigma=20, discrete=True, codec="png",
                            progress=False)  # fmt: skip
    assert m.noise["backend"] == "opendp" and "OpenDP" in m.noise["sampler"]
    assert m.privacy["guarantee"] is True and "OpenDP" in m.privacy["randomness"]
    store = lossylearn.open_store(tmp_path / "s")
    assert store.manifest.noise_spec.backend == "opendp"
