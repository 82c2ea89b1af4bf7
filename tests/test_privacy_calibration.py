"""DP calibration and the guarantee: known sigma values, units, the paper's convention, errors."""

from __future__ import annotations

import json
import math
from fractions import Fraction

import numpy as np
import pytest

from lossylearn.errors import PrivacyError
from lossylearn.privacy import (
    NoiseSpec,
    discrete_gaussian_delta,
    discrete_gaussian_epsilon,
    gaussian_epsilon,
    gaussian_sigma,
    noise_pmf,
    paper_epsilon_gaussian,
    resolve_noise,
    zcdp_delta,
    zcdp_epsilon,
)
from lossylearn.privacy.discrete import gaussian_sigma2_fraction
from lossylearn.privacy.opendp_sampler import release_exact

MNIST = (28, 28, 1)


@pytest.mark.parametrize(
    ("epsilon", "ratio"), [(0.5, 7.03), (1.0, 3.73), (2.0, 1.99), (8.0, 0.600)]
)
def test_analytic_gaussian_sigma_over_sensitivity(epsilon: float, ratio: float) -> None:
    assert gaussian_sigma(epsilon, 1e-5, 1.0) == pytest.approx(ratio, abs=0.006)
    # and back: that sigma gives epsilon at delta = 1e-5
    assert gaussian_epsilon(gaussian_sigma(epsilon, 1e-5, 255.0), 255.0, 1e-5) <= epsilon


def test_resolve_epsilon_per_pixel_gaussian() -> None:
    spec, g = resolve_noise(epsilon=1, delta=1e-5, unit="pixel", image_shape=MNIST)
    assert spec.kind == "gaussian" and not spec.discrete
    assert spec.scale == pytest.approx(3.73 * 255, rel=0.01)
    assert g.requested and g.epsilon == 1 and g.delta == 1e-5
    assert g.sensitivity == 255 and g.norm == "L2" and g.unit == "pixel"
    assert g.mechanism == "analytic Gaussian (Balle & Wang 2018), float sampler"
    assert g.per_pixel["epsilon"] == pytest.approx(1.0, rel=1e-6)
    # the whole image is protected far less: L2 sensitivity 255 * 28
    assert g.per_image["sensitivity"] == pytest.approx(255 * 28)
    assert g.per_image["epsilon"] == pytest.approx(gaussian_epsilon(spec.scale, 255 * 28, 1e-5))
    assert g.per_image["epsilon"] > 50


def test_resolve_epsilon_per_image_gaussian() -> None:
    spec, g = resolve_noise(epsilon=1, delta=1e-5, unit="image", image_shape=MNIST)
    assert g.sensitivity == pytest.approx(255 * 28)
    assert spec.scale == pytest.approx(3.7306 * 255 * 28, rel=1e-3)
    assert g.per_pixel["epsilon"] < 0.05


def test_laplace_b_is_sensitivity_over_epsilon() -> None:
    spec, g = resolve_noise(kind="laplace", epsilon=2.0, image_shape=MNIST)
    assert spec.scale == 255 / 2.0
    assert g.delta == 0 and g.norm == "L1" and g.mechanism == "Laplace"
    spec, g = resolve_noise(kind="laplace", epsilon=0.5, unit="image", image_shape=MNIST)
    assert g.sensitivity == 255 * 784 and spec.scale == 255 * 784 / 0.5
    spec, g = resolve_noise(kind="laplace", epsilon=0.7, sensitivity=10, image_shape=MNIST)
    assert spec.scale == 10 / 0.7 and g.sensitivity == 10


def test_discrete_laplace_exact_epsilon_never_exceeds_request() -> None:
    for eps in (0.3, 1.0, 3.7):
        spec, g = resolve_noise(kind="laplace", epsilon=eps, discrete=True, image_shape=MNIST)
        assert g.mechanism == "discrete Laplace"
        assert spec.exact is not None and spec.exact >= Fraction(255) / Fraction(eps)
        assert float(spec.exact) == pytest.approx(255 / eps, rel=1e-8)
        assert g.per_pixel["epsilon"] <= eps
    spec, _ = resolve_noise(kind="laplace", epsilon=1.0, discrete=True, image_shape=MNIST)
    assert spec.exact == 255


def test_psnr_sets_the_nominal_sigma() -> None:
    spec, g = resolve_noise(psnr=20, image_shape=MNIST)
    assert spec.scale == pytest.approx(25.5, rel=1e-12)
    assert not g.requested
    assert g.epsilon == pytest.approx(gaussian_epsilon(25.5, 255, 1e-5))
    lap, _ = resolve_noise(kind="laplace", psnr=20, image_shape=MNIST)
    assert 2 * lap.scale**2 == pytest.approx(25.5**2, rel=1e-12)


def test_given_sigma_reports_its_epsilon_at_default_delta() -> None:
    spec, g = resolve_noise(sigma=255.0, image_shape=MNIST)
    assert g.delta == 1e-5 and not g.requested
    assert g.epsilon == pytest.approx(gaussian_epsilon(255.0, 255.0, 1e-5))
    assert any("delta not given" in n for n in g.notes)
    _, g2 = resolve_noise(sigma=255.0, delta=1e-6, unit="image", image_shape=MNIST)
    assert g2.delta == 1e-6 and g2.epsilon == pytest.approx(gaussian_epsilon(255.0, 255 * 28, 1e-6))


def test_paper_convention_epsilon() -> None:
    # sigma = 255 is sigma = 1 on [0, 1] pixels: eps = sqrt(2 ln(2/delta)) / 1
    _, g = resolve_noise(sigma=255.0, image_shape=MNIST)
    assert g.paper_convention["epsilon"] == pytest.approx(math.sqrt(2 * math.log(2e5)), rel=1e-12)
    assert g.paper_convention["sigma_unit_interval"] == pytest.approx(1.0)
    assert "one pixel" in g.paper_convention["protects"]
    sigma01 = math.sqrt(2 * math.log(2 / 1e-5)) / 0.5  # the paper's sigma for eps = 0.5
    assert paper_epsilon_gaussian(255 * sigma01, 1e-5) == pytest.approx(0.5, rel=1e-12)
    _, gl = resolve_noise(kind="laplace", b=51.0, image_shape=MNIST)
    assert gl.paper_convention["epsilon"] == pytest.approx(5.0)


def brute_force_delta(sigma2: float, epsilon: float, shift: int) -> float:
    """sum_y max(0, P(y) - e^eps P(y - shift)) for the discrete Gaussian, straight from its pmf."""
    spec = NoiseSpec("gaussian", math.sqrt(sigma2), discrete=True, exact=Fraction(sigma2))
    y = np.arange(-int(60 * math.sqrt(sigma2)) - 3 * shift, int(60 * math.sqrt(sigma2)) + 3 * shift)
    return float(
        np.maximum(0, noise_pmf(spec, y) - math.exp(epsilon) * noise_pmf(spec, y - shift)).sum()
    )


@pytest.mark.parametrize(
    ("sigma2", "epsilon", "sens"), [(9.0, 1.0, 4), (2.25, 0.5, 3), (400.0, 0.2, 7)]
)
def test_exact_discrete_gaussian_delta_equals_brute_force(
    sigma2: float, epsilon: float, sens: int
) -> None:
    expected = max(brute_force_delta(sigma2, epsilon, v) for v in range(1, sens + 1))
    assert discrete_gaussian_delta(sigma2, epsilon, sens) == pytest.approx(
        expected, rel=1e-9, abs=1e-15
    )


def test_discrete_gaussian_calibration_is_smallest_and_valid() -> None:
    spec, g = resolve_noise(epsilon=1, delta=1e-5, discrete=True, image_shape=MNIST)
    assert g.mechanism == "discrete Gaussian (Canonne et al. 2020)"
    # a release draws through OpenDP, whose scale is a double: the exact parameter is that double
    assert spec.exact == release_exact("gaussian", gaussian_sigma2_fraction(spec.scale))
    assert discrete_gaussian_delta(spec.sigma2, 1.0, 255) <= 1e-5
    below = float(gaussian_sigma2_fraction(spec.scale * (1 - 1e-6)))
    assert discrete_gaussian_delta(below, 1.0, 255) > 1e-5
    assert spec.scale == pytest.approx(3.7306 * 255, rel=1e-3)  # the discrete sigma is close
    assert g.per_pixel["epsilon"] <= 1.0
    assert discrete_gaussian_epsilon(spec.sigma2, 255, 1e-5) == pytest.approx(1.0, rel=1e-6)
    assert "Thm. 7" in g.per_pixel["accounting"] and "zCDP" in g.per_image["accounting"]


def test_discrete_gaussian_per_image_uses_zcdp() -> None:
    spec, g = resolve_noise(epsilon=1, delta=1e-5, discrete=True, unit="image", image_shape=MNIST)
    rho = (255 * 28) ** 2 / (2 * spec.sigma2)
    assert zcdp_delta(rho, 1.0) <= 1e-5
    assert zcdp_epsilon(rho, 1e-5) == pytest.approx(1.0, rel=1e-6)
    # zCDP is looser than the analytic Gaussian: more noise than the float sampler needs
    assert spec.scale > gaussian_sigma(1.0, 1e-5, 255 * 28)
    # the standard conversion eps <= rho + 2 sqrt(rho ln(1/delta)) bounds it from above
    assert zcdp_epsilon(rho, 1e-5) <= rho + 2 * math.sqrt(rho * math.log(1e5))


def test_guarantee_serialises_and_describes_itself() -> None:
    _, g = resolve_noise(psnr=20, image_shape=MNIST, seeded=True)
    d = g.to_dict()
    json.dumps(d)
    assert d["unit"] == "pixel" and d["per_image"]["unit"] == "image"
    text = g.describe()
    assert 2 <= len(text.splitlines()) <= 4
    assert "per pixel" in text and "labels are not protected" in text
    notes = " ".join(g.notes)
    assert "Mironov 2012" in notes and "labels" in notes and "post-processing" in notes
    assert "seed" in notes and g.randomness.startswith("seeded")
    _, gd = resolve_noise(psnr=20, discrete=True, image_shape=MNIST)
    assert "Mironov" not in " ".join(gd.notes) and gd.randomness.startswith("csprng (OpenDP")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"epsilon": 0.0}, "epsilon must be a positive"),
        ({"epsilon": -1.0}, "epsilon must be a positive"),
        ({"epsilon": 1.0, "delta": 0.0}, "delta must lie strictly between 0 and 1"),
        ({"epsilon": 1.0, "delta": 1.5}, "delta must lie strictly between 0 and 1"),
        ({"kind": "laplace", "epsilon": 1.0, "delta": 1e-5}, "pure epsilon-DP"),
        ({"psnr": 20.0, "sigma": 3.0}, "exactly one"),
        ({"epsilon": 1.0, "psnr": 20.0}, "exactly one"),
        ({}, "exactly one"),
        ({"sigma": -2.0}, "sigma must be a positive"),
        ({"kind": "laplace", "sigma": 2.0}, "for Laplace noise give b"),
        ({"b": 2.0}, "for Gaussian noise give sigma"),
        ({"kind": "poisson", "sigma": 2.0}, "unknown noise kind"),
        ({"sigma": 2.0, "unit": "dataset"}, "unknown privacy unit"),
        ({"sigma": 2.0, "range_handling": "reflect"}, "unknown range handling"),
        ({"sigma": 2.0, "sensitivity": 0.0}, "sensitivity must be a positive"),
        ({"psnr": float("inf")}, "psnr must be finite"),
        ({"sigma": 2.0, "image_shape": (28, 28)}, "image_shape"),
        ({"epsilon": 1.0, "discrete": True, "sensitivity": 0.5}, "at least 1"),
    ],
)
def test_errors_are_one_line_privacy_errors(kwargs: dict, message: str) -> None:
    kwargs = {"image_shape": MNIST, **kwargs}
    with pytest.raises(PrivacyError, match=message) as info:
        resolve_noise(**kwargs)
    assert "\n" not in str(info.value)
