"""lossylearn's BD-rate against the ``bjontegaard`` package on the same curves (issue 16).

We report PCHIP on (PSNR, log rate), integrated exactly: the package's ``pchip`` method. The test
checks that the two agree to float precision on real JPEG and WebP curves measured here,
and records how far the package's other interpolations (Akima; ``cubic``, Bjontegaard's original
one-polynomial fit) land from it.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest

from lossylearn.codecs import get_codec
from lossylearn.codecs.learned.evaluate import bd_rate, codec_rows
from lossylearn.data import load_dataset

bjontegaard = pytest.importorskip("bjontegaard")

QUALITIES = (5, 10, 20, 30, 50, 70, 90)


def _package(anchor, test, method: str) -> float:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the package warns below 75% relative overlap
        return float(
            bjontegaard.bd_rate(
                [r for r, _ in anchor], [p for _, p in anchor],
                [r for r, _ in test], [p for _, p in test],
                method=method, require_matching_points=False,
            )
        )  # fmt: skip


@pytest.fixture(scope="module")
def curves() -> dict[str, list[tuple[float, float]]]:
    """(bpp, PSNR) of JPEG and WebP on 24 embedded MNIST test digits, from real bytes."""
    images = load_dataset("mnist").test_images[:24]
    return {
        name: [(row.bpp, row.psnr) for row in codec_rows(get_codec(name), images, QUALITIES)]
        for name in ("jpeg", "webp")
    }


def test_ours_is_the_packages_pchip_on_measured_curves(curves) -> None:
    for anchor, test in (("jpeg", "webp"), ("webp", "jpeg")):
        ours, span = bd_rate(curves[anchor], curves[test])
        assert ours is not None and span is not None
        assert ours == pytest.approx(_package(curves[anchor], curves[test], "pchip"), abs=1e-9)
        # the other interpolations differ: here by 0.1-0.4 (Akima) and 0.8-1.9 (cubic) points
        for method in ("akima", "cubic"):
            other = _package(curves[anchor], curves[test], method)
            assert 0 < abs(other - ours) < 3.0, (method, other, ours)
    assert bd_rate(curves["jpeg"], curves["webp"])[0] < -20  # WebP needs far fewer bits here


def test_all_methods_agree_where_log_rate_is_linear_in_psnr() -> None:
    psnr = np.arange(20.0, 41.0, 4.0)
    anchor = [(0.05 * math.exp(p / 8.0), float(p)) for p in psnr]
    test = [(0.5 * r, p) for r, p in anchor]
    ours, _ = bd_rate(anchor, test)
    assert ours == pytest.approx(-50.0, abs=1e-9)
    for method in ("pchip", "akima", "cubic"):
        assert _package(anchor, test, method) == pytest.approx(-50.0, abs=1e-6)


def test_dominated_points_are_dropped_where_the_package_refuses_them() -> None:
    anchor = [(1.0, 30.0), (2.0, 33.0), (3.0, 35.0), (4.0, 37.0)]
    test = [(0.8, 30.0), (1.5, 33.0), (2.5, 34.0), (3.5, 37.0)]
    dominated = [*test, (4.0, 36.5)]  # more bits, less PSNR: not on the rate-distortion curve
    assert bd_rate(anchor, dominated) == bd_rate(anchor, test)
    assert bd_rate(anchor, test)[0] == pytest.approx(_package(anchor, test, "pchip"), abs=1e-9)
    with pytest.raises(ValueError, match="strictly increasing"):
        _package(anchor, dominated, "pchip")
