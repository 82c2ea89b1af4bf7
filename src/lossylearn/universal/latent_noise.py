"""The per-image mechanism in the latent: clip, add calibrated Gaussian noise, quantize to match.

One image ``x`` becomes a latent ``y = f(x)`` (the public encoder, in [-1, 1]^d). The release is

    y_c = y * min(1, C / ||y||_2)                  clip to the L2 ball of radius C
    z   = y_c + N(0, sigma^2 I_d)                  Gaussian mechanism
    k   = Q(z)                                     matched dithered quantizer (post-processing)

**Sensitivity.** Neighbouring datasets differ by *replacing* one image (replace-one). Whatever the
two images are, their clipped latents both lie in the ball of radius C, so
``||y_c - y_c'||_2 <= 2C``: the L2 sensitivity is 2C for *any* input (the encoder's output is never
trusted to be bounded by itself). Under add/remove-one the same release would have sensitivity C;
we state the replace-one figure, the stronger unit.

**Calibration.** sigma is the smallest standard deviation of the analytic Gaussian mechanism
(Balle & Wang 2018) for (epsilon, delta) at sensitivity 2C, computed by dp-accounting through
:func:`lossylearn.privacy.accounting.gaussian_sigma`; one release per image, no composition across
images (each image is its own record).

**Matched quantization (LCoN in the latent).** A subtractive-dither uniform quantizer of step
``Delta`` has error uniform on [-Delta/2, Delta/2): MSE ``Delta^2 / 12`` per dimension. The matched
step is ``Delta = sqrt(12) sigma`` (quantization MSE = the noise variance per dimension), on levels
``c_k = -R + k Delta`` that cover ``[-R, R]`` with ``R >= min(1, C) + COVER_SIGMAS sigma``;
``L = ceil(2 R_0 / Delta) + 1`` levels, ``R = Delta (L - 1) / 2``. Values beyond ``R`` are clamped
to the end levels (post-processing: no privacy cost). The stored indices and their bitstream follow
the URDC contract (:mod:`lossylearn.studies.urdc.quantizer`) on latents scaled by ``1 / R``, so
the step there, ``2 / (L - 1)``, is exactly ``Delta / R``.

**Randomness.** The noise comes from :class:`lossylearn.privacy.source.NoiseSource`: the OS's
CSPRNG (inverse CDF of 52 random bits) without a seed, a seeded generator (and then no guarantee)
with one. The dither is public shared randomness (its seed is stored), independent of the data
and of the noise, so publishing it costs no privacy.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from lossylearn.errors import PrivacyError
from lossylearn.privacy import accounting
from lossylearn.privacy.source import NoiseSource

__all__ = [
    "COVER_SIGMAS",
    "LatentMechanism",
    "MatchedGrid",
    "clip_l2",
    "matched_grid",
]

COVER_SIGMAS = 2.0
"""The matched grid covers the clipped range plus this many noise standard deviations."""
MAX_LEVELS = 65535


def clip_l2(latents: np.ndarray, clip_norm: float) -> np.ndarray:
    """Each row scaled to L2 norm at most ``clip_norm`` (rows already inside are unchanged)."""
    y = np.asarray(latents, dtype=np.float64)
    if y.ndim != 2:
        raise PrivacyError(f"latents must be a 2-D array (N, d), got shape {y.shape}")
    if not np.all(np.isfinite(y)):
        raise PrivacyError("latents hold a non-finite value")
    if not (clip_norm > 0 and math.isfinite(clip_norm)):
        raise PrivacyError(f"the clip norm must be a positive finite number, got {clip_norm}")
    norms = np.linalg.norm(y, axis=1, keepdims=True)
    scale = np.minimum(1.0, clip_norm / np.maximum(norms, 1e-300))
    return y * scale


@dataclass(frozen=True)
class LatentMechanism:
    """The Gaussian mechanism on clipped latents, calibrated per image (see the module docstring)."""

    epsilon: float
    delta: float
    clip_norm: float
    latent_dim: int

    def __post_init__(self) -> None:
        if not (self.epsilon > 0 and math.isfinite(self.epsilon)):
            raise PrivacyError(f"--epsilon must be a positive finite number, got {self.epsilon}")
        if not 0 < self.delta < 1:
            raise PrivacyError(f"--delta must lie in (0, 1), got {self.delta}")
        if not (self.clip_norm > 0 and math.isfinite(self.clip_norm)):
            raise PrivacyError(
                f"--clip-norm must be a positive finite number, got {self.clip_norm}"
            )
        if self.latent_dim < 1:
            raise PrivacyError(f"latent_dim must be >= 1, got {self.latent_dim}")

    @property
    def sensitivity(self) -> float:
        """L2 sensitivity of the clipped latent under replace-one: 2C."""
        return 2.0 * self.clip_norm

    @property
    def sigma(self) -> float:
        """Analytic-Gaussian sigma for (epsilon, delta) at sensitivity 2C (dp-accounting)."""
        return accounting.gaussian_sigma(self.epsilon, self.delta, self.sensitivity)

    def release(self, latents: np.ndarray, source: NoiseSource) -> np.ndarray:
        """Clipped latents plus the calibrated noise, float64 (N, d)."""
        clipped = clip_l2(latents, self.clip_norm)
        if clipped.shape[1] != self.latent_dim:
            raise PrivacyError(
                f"latents have {clipped.shape[1]} dims, the mechanism {self.latent_dim}"
            )
        noise = source.normal(self.sigma, clipped.size).reshape(clipped.shape)
        return clipped + noise

    def guarantee(self, *, seeded: bool, randomness: str) -> dict[str, Any]:
        """The manifest's statement of the image-only guarantee (JSON-ready)."""
        achieved = accounting.gaussian_epsilon(self.sigma, self.sensitivity, self.delta)
        return {
            "mechanism": "Gaussian mechanism on the clipped latent (analytic Gaussian, Balle & "
            "Wang 2018, via dp-accounting), float sampler",
            "epsilon": self.epsilon,
            "epsilon_at_sigma": achieved,
            "delta": self.delta,
            "sigma": self.sigma,
            "sensitivity": self.sensitivity,
            "norm": "L2",
            "clip_norm": self.clip_norm,
            "latent_dim": self.latent_dim,
            "unit": "image",
            "neighbouring": "replace-one image (sensitivity 2C; add/remove-one would be C)",
            "space": "latent",
            "accounting": "one release per image: the analytic Gaussian mechanism's exact "
            "(epsilon, delta) at sigma / sensitivity, dp_accounting.get_sigma_gaussian",
            "randomness": randomness,
            "seeded": seeded,
        }


@dataclass(frozen=True)
class MatchedGrid:
    """A uniform grid of ``levels`` values on ``[-radius, radius]`` with step ``step``."""

    levels: int
    radius: float
    step: float

    @property
    def distortion(self) -> float:
        """MSE per dimension of subtractive-dither quantization: step^2 / 12."""
        return self.step**2 / 12.0

    def to_dict(self) -> dict[str, float | int]:
        """JSON form."""
        return {"levels": self.levels, "radius": self.radius, "step": self.step}


def matched_grid(sigma: float, clip_norm: float) -> MatchedGrid:
    """The grid whose quantization MSE per dimension is sigma^2 (step sqrt(12) sigma)."""
    if not (sigma > 0 and math.isfinite(sigma)):
        raise PrivacyError(f"sigma must be a positive finite number, got {sigma}")
    step = math.sqrt(12.0) * sigma
    reach = min(1.0, clip_norm) + COVER_SIGMAS * sigma
    levels = max(2, int(math.ceil(2.0 * reach / step)) + 1)
    if levels > MAX_LEVELS:
        raise PrivacyError(
            f"the matched grid would need {levels} levels (sigma {sigma:.3g} is tiny); use a larger "
            "epsilon gap or the checkpoint's own quantizer (no latent noise)"
        )
    return MatchedGrid(levels=levels, radius=step * (levels - 1) / 2.0, step=step)
