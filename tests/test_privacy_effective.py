"""The effective (post-clipping) noise distortion, estimated from noisy pixels only."""

from __future__ import annotations

import numpy as np
import pytest

from lossylearn.data import load_dataset
from lossylearn.errors import DataError
from lossylearn.privacy import NoiseSource, add_noise, noise_pmf, resolve_noise
from lossylearn.privacy.effective import clean_pixel_law, effective_distortion, noise_channel


def _spec(kind: str, psnr: float, shape=(28, 28, 1), **kw):
    spec, _ = resolve_noise(kind=kind, psnr=psnr, image_shape=shape, seeded=True, **kw)
    return spec


def test_channel_is_the_noise_law_clipped_at_both_ends() -> None:
    spec = _spec("laplace", 22.1)
    k = noise_channel(spec)
    np.testing.assert_allclose(k.sum(axis=1), 1.0, atol=1e-12)
    a = np.arange(-20, 21)
    np.testing.assert_allclose(k[128, 128 + a], noise_pmf(spec, a), rtol=1e-9)
    # a black pixel stays 0 whenever the draw is <= 0
    below = noise_pmf(spec, np.arange(-2000, 1)).sum()
    assert k[0, 0] == pytest.approx(below, rel=1e-9)
    assert k[255, 255] == pytest.approx(below, rel=1e-9)


def test_deconvolution_recovers_a_known_pixel_law() -> None:
    rng = np.random.default_rng(0)
    clean = rng.choice([0, 255], p=[0.8, 0.2], size=(400, 16, 16, 1)).astype(np.uint8)
    spec = _spec("gaussian", 16.0, shape=(16, 16, 1))
    p = clean_pixel_law(add_noise(clean, spec, NoiseSource.create(1, 0)), spec)
    # maximum likelihood smears a little mass onto neighbouring levels; the two modes hold the rest
    assert p[:4].sum() == pytest.approx(0.8, abs=0.01) and p[-4:].sum() == pytest.approx(
        0.2, abs=0.01
    )


@pytest.mark.parametrize(
    ("kind", "psnr"), [("laplace", 8.1), ("laplace", 16.1), ("gaussian", 11.9)]
)
def test_effective_distortion_matches_the_measured_one_on_mnist(kind: str, psnr: float) -> None:
    clean = load_dataset("mnist").train_images[:500]
    spec = _spec(kind, psnr)
    noisy = add_noise(clean, spec, NoiseSource.create(0, 3))
    metric, nominal = spec.matched_target()
    gap = noisy.astype(np.float64) - clean
    true = float(np.abs(gap).mean() if metric == "mae" else (gap**2).mean())
    est = effective_distortion(noisy, spec)
    assert est == pytest.approx(true, rel=0.03)
    assert est < 0.6 * nominal  # clipping on the black background removes close to half


def test_mid_grey_images_keep_the_nominal_noise() -> None:
    clean = np.full((200, 16, 16, 1), 128, dtype=np.uint8)
    spec = _spec("laplace", 22.1, shape=(16, 16, 1))
    noisy = add_noise(clean, spec, NoiseSource.create(2, 0))
    assert effective_distortion(noisy, spec) == pytest.approx(spec.matched_target()[1], rel=0.02)


def test_refusals() -> None:
    spec = _spec("laplace", 16.1, range_handling="wrap")
    with pytest.raises(DataError, match="wrap"):
        effective_distortion(np.zeros((2, 4, 4, 1), np.uint8), spec)
    with pytest.raises(DataError, match="uint8"):
        effective_distortion(np.zeros((2, 4, 4, 1), np.float32), _spec("laplace", 16.1))
