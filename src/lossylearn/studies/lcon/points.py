"""Stage 2 of the LCoN study: the stores it makes (:func:`plan_points` -> list of :class:`Point`)
and the codec target each one matches (:func:`point_policy`).

Every target goes through :class:`lossylearn.pipeline.TargetPolicy`, the one rule of LCoN
(MSE = sigma^2 for Gaussian noise, MAE = b for Laplacian, ``nominal`` or ``effective``):

* a noise-sweep store (Fig. 2) and the matched store of the distortion sweep (Fig. 3) pass the
  study's policy to ``compress``, which decides the number itself; with ``effective`` it is
  estimated from the very noisy images the store holds, and the manifest says
  ``target_basis: "effective"``;
* the other Fig. 3 stores need ``factor x matched`` before they are made: the matched distortion
  is the one the matched store's manifest records (all stores of the sweep hold the same noisy
  images: same data, noise and seed), passed as a ``given`` target. When the factors leave out 1
  and the target is effective, the matched store is still made first (an anchor, not trained on);
  with ``nominal`` the number needs no images (sigma^2 or b).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from lossylearn.errors import LossylearnError
from lossylearn.imaging import psnr_db
from lossylearn.pipeline.targets import TargetPolicy
from lossylearn.privacy.mechanisms import NoiseSpec
from lossylearn.privacy.request import NoiseRequest
from lossylearn.studies.lcon.config import StudyConfig

__all__ = ["Point", "noise_spec", "plan_points", "point_policy", "psnr_of_variance"]


@dataclass(frozen=True)
class Point:
    """One store of the study: its noise and how its codec target relates to the matched one."""

    sweep: str
    """``noise`` (Fig. 2: one store per noise level) or ``distortion`` (Fig. 3: fixed noise)."""
    name: str
    """The store's folder under ``out/stores`` (and its learned codec's under ``out/codecs``)."""
    psnr: float
    """Nominal PSNR of the noisy images, from the noise variance (the rows' x axis)."""
    noise: NoiseRequest
    factor: float | None = None
    """Fig. 3: the codec target as a multiple of the matched distortion; None: the noise sweep."""
    train: bool = True
    """False for the sweep's anchor: made only to fix the matched distortion, no model trains on it."""

    @property
    def matched(self) -> bool:
        """Whether the store's target is the policy's own (not a multiple of it)."""
        return self.factor is None or self.factor == 1.0


def psnr_of_variance(variance: float) -> float:
    """PSNR (dB) of noise of ``variance`` on the 0-255 scale."""
    return float(psnr_db(variance))


def _sweep_request(config: StudyConfig) -> NoiseRequest:
    v = config.sweep_variance
    if config.noise == "gaussian":
        return NoiseRequest(kind="gaussian", sigma=math.sqrt(v))
    return NoiseRequest(kind="laplace", b=math.sqrt(v / 2.0))


def plan_points(config: StudyConfig) -> list[Point]:
    """Every store of the study, in the order they are made: the noise sweep, then the distortion
    sweep (when on) with its matched store first."""
    points = [
        Point("noise", f"noise-psnr{p:g}", float(p), NoiseRequest(kind=config.noise, psnr=float(p)))
        for p in config.psnrs
    ]
    if not config.distortion_sweep:
        return points
    request = _sweep_request(config)
    psnr = round(psnr_of_variance(config.sweep_variance), 2)
    distinct = list(dict.fromkeys(float(f) for f in config.sweep_factors))
    factors = sorted(distinct, key=lambda f: (f != 1.0, distinct.index(f)))
    if 1.0 not in factors and config.target_policy.needs_noisy_images:
        points.append(Point("distortion", "distortion-x1", psnr, request, 1.0, train=False))
    points += [Point("distortion", f"distortion-x{f:g}", psnr, request, f) for f in factors]
    return points


def noise_spec(point: Point, shape: tuple[int, int, int]) -> NoiseSpec:
    """The noise of ``point`` for images of ``shape`` (seeded, like every study store)."""
    spec, _ = point.noise.resolve(shape, seeded=True)
    return spec


def point_policy(point: Point, config: StudyConfig, matched: float | None) -> TargetPolicy:
    """The target ``compress`` matches for ``point``: the study's policy at a matched point, else
    ``factor x matched`` as a given target (``matched``: the target the sweep's matched store
    recorded, or the nominal one, which needs no images)."""
    if point.matched:
        return config.target_policy
    if point.factor is None or matched is None:
        raise LossylearnError(f"{point.name}: a swept target needs the matched distortion first")
    return TargetPolicy("given", float(point.factor) * float(matched))
