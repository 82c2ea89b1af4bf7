"""Noise laws: pmf, the matched distortion rho_N, H(N), variances, NoiseSpec."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest

from lossylearn.errors import PrivacyError
from lossylearn.privacy import NoiseSpec, noise_entropy_bits, noise_pmf, rho


def plugin_entropy_bits(spec: NoiseSpec, support: np.ndarray) -> float:
    p = noise_pmf(spec, support)
    p = p[p > 0]
    return float(-(p * np.log2(p)).sum())


def wide(scale: float) -> np.ndarray:
    half = int(60 * scale) + 60
    return np.arange(-half, half + 1)


@pytest.mark.parametrize("sigma", [0.6, 1.0, 3.0, 25.5, 400.0])
def test_discrete_gaussian_entropy_is_the_sum_over_its_pmf(sigma: float) -> None:
    spec = NoiseSpec("gaussian", sigma, discrete=True)
    support = wide(sigma)
    p = noise_pmf(spec, support)
    assert abs(p.sum() - 1) < 1e-12
    # the pmf is exp(-a^2 / 2 sigma^2) normalised
    w = np.exp(-(support.astype(float) ** 2) / (2 * spec.sigma2))
    assert np.allclose(p, w / w.sum(), rtol=1e-10, atol=0)
    assert noise_entropy_bits(spec) == pytest.approx(plugin_entropy_bits(spec, support), abs=1e-10)


def test_discrete_gaussian_entropy_approaches_the_differential_entropy() -> None:
    for sigma in (25.5, 100.0):
        spec = NoiseSpec("gaussian", sigma, discrete=True)
        assert noise_entropy_bits(spec) == pytest.approx(
            0.5 * math.log2(2 * math.pi * math.e * sigma**2), abs=1e-9
        )
    small = NoiseSpec("gaussian", 0.5, discrete=True)
    assert noise_entropy_bits(small) < 0.5 * math.log2(2 * math.pi * math.e * 0.25)


@pytest.mark.parametrize(
    ("kind", "scale", "discrete"),
    [("laplace", 10.0, True), ("laplace", 0.3, True), ("laplace", 10.0, False),
     ("laplace", 0.3, False), ("gaussian", 2.0, False), ("gaussian", 25.5, False)],
)  # fmt: skip
def test_closed_form_entropy_and_variance_match_sums(
    kind: str, scale: float, discrete: bool
) -> None:
    spec = NoiseSpec(kind, scale, discrete)  # type: ignore[arg-type]
    support = wide(scale)
    p = noise_pmf(spec, support)
    assert p.sum() == pytest.approx(1.0, abs=1e-12)
    assert noise_entropy_bits(spec) == pytest.approx(plugin_entropy_bits(spec, support), abs=1e-10)
    assert spec.integer_variance == pytest.approx(float((support**2 * p).sum()), rel=1e-10)


def test_discrete_laplace_entropy_closed_form_value() -> None:
    spec = NoiseSpec("laplace", 1.0, discrete=True)
    q = math.exp(-1.0)
    c = (1 - q) / (1 + q)
    expected = (-math.log(c) + 2 * q / (1 - q * q)) / math.log(2)
    assert noise_entropy_bits(spec) == pytest.approx(expected, rel=1e-12)


def test_rho_is_minus_log2_pmf() -> None:
    spec = NoiseSpec("gaussian", 25.5, discrete=True)
    p0 = float(noise_pmf(spec, np.array([0]))[0])
    assert float(rho(spec, np.array([0]))[0]) == pytest.approx(-math.log2(p0), rel=1e-14)
    a = np.arange(-300, 301)
    # difference distortion of a discrete Gaussian: rho(a) - rho(0) = a^2 / (2 sigma^2 ln 2) bits
    assert np.allclose(
        rho(spec, a) - rho(spec, np.array([0])), a**2 / (2 * spec.sigma2 * math.log(2))
    )
    # expected distortion of the noise itself is H(N)
    assert float((noise_pmf(spec, wide(25.5)) * rho(spec, wide(25.5))).sum()) == pytest.approx(
        noise_entropy_bits(spec), rel=1e-12
    )
    # far tails stay finite (log space)
    tiny = NoiseSpec("gaussian", 1.0)
    assert np.isfinite(rho(tiny, np.array([255, -255]))).all()
    lap = NoiseSpec("laplace", 4.0, discrete=True)
    assert np.allclose(rho(lap, a) - rho(lap, np.array([0])), np.abs(a) / (4.0 * math.log(2)))


def test_wrap_uses_the_law_mod_256() -> None:
    for spec in (NoiseSpec("gaussian", 60.0, True, "wrap"), NoiseSpec("laplace", 90.0, False, "wrap"),
                 NoiseSpec("gaussian", 5000.0, False, "wrap")):  # fmt: skip
        r = np.arange(256)
        pw = noise_pmf(spec, r)
        assert pw.sum() == pytest.approx(1.0, abs=1e-12)
        assert np.allclose(noise_pmf(spec, r + 256), pw) and np.allclose(
            noise_pmf(spec, r - 512), pw
        )
        assert noise_entropy_bits(spec) == pytest.approx(plugin_entropy_bits(spec, r), abs=1e-10)
        assert noise_entropy_bits(spec) <= 8.0 + 1e-12
        unwrapped = NoiseSpec(spec.kind, spec.scale, spec.discrete, "clip")
        support = wide(spec.scale)
        folded = np.zeros(256)
        np.add.at(folded, np.mod(support, 256), noise_pmf(unwrapped, support))
        assert np.allclose(pw, folded, rtol=1e-9, atol=1e-15)
        assert noise_entropy_bits(spec) <= noise_entropy_bits(unwrapped)
    huge = NoiseSpec("gaussian", 5000.0, False, "wrap")
    assert noise_entropy_bits(huge) == pytest.approx(8.0, abs=1e-12)


def test_variances() -> None:
    assert NoiseSpec("gaussian", 25.5).variance == 650.25
    assert NoiseSpec("gaussian", 25.5).integer_variance == pytest.approx(650.25 + 1 / 12, rel=1e-12)
    assert NoiseSpec("laplace", 10.0).variance == 200.0
    small = NoiseSpec("gaussian", 0.5, discrete=True)
    assert small.variance < 0.25  # the discrete variance is below sigma^2 for small sigma
    a = np.arange(-20, 21)
    assert small.variance == pytest.approx(float((a**2 * noise_pmf(small, a)).sum()), rel=1e-12)
    dl = NoiseSpec("laplace", 10.0, discrete=True)
    assert dl.variance < 200.0


def test_noise_spec_dict_round_trip_and_targets() -> None:
    spec = NoiseSpec("gaussian", 951.3, discrete=True, range_handling="wrap")
    d = spec.to_dict()
    json.dumps(d)
    for key in (
        "kind",
        "sigma",
        "discrete",
        "range_handling",
        "entropy_bits",
        "sampler",
        "variance",
    ):
        assert key in d
    assert "b" not in d
    assert NoiseSpec.from_dict(d) == spec
    assert Fraction(d["exact"]) == spec.exact
    assert abs(float(spec.exact) / 951.3**2 - 1) < 2e-8
    metric, target = spec.matched_target()
    assert metric == "mse" and target == pytest.approx(951.3**2, rel=1e-8)
    lap = NoiseSpec("laplace", 7.5)
    assert lap.matched_target() == ("mae", 7.5) and "b" in lap.to_dict()
    assert NoiseSpec.from_dict(lap.to_dict()) == lap


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"kind": "uniform", "scale": 1.0}, "unknown noise kind"),
        ({"kind": "gaussian", "scale": -1.0}, "positive"),
        ({"kind": "gaussian", "scale": float("nan")}, "positive"),
        ({"kind": "gaussian", "scale": 1e9}, "supported range"),
        ({"kind": "gaussian", "scale": 1.0, "range_handling": "mirror"}, "unknown range handling"),
        ({"kind": "gaussian", "scale": 1.0, "exact": Fraction(1)}, "discrete"),
        (
            {"kind": "gaussian", "scale": 2.0, "discrete": True, "exact": Fraction(5)},
            "does not match",
        ),
    ],
)
def test_noise_spec_validation(kwargs: dict, message: str) -> None:
    with pytest.raises(PrivacyError, match=message):
        NoiseSpec(**kwargs)
