"""The codec's target distortion: one policy for ``compress`` and every study.

The rule of LCoN is the noise's own distortion: MSE = sigma^2 for Gaussian noise, MAE = b for
Laplacian (:meth:`lossylearn.privacy.NoiseSpec.matched_target`). A :class:`TargetPolicy` says which
version of it a run matches:

- ``nominal``: the rule as stated (the paper);
- ``effective``: the distortion the noise really adds after clipping to 0..255, estimated from the
  noisy images that are stored (deconvolution through the known noise channel; no clean data, so
  no privacy cost: post-processing of the release);
- ``given``: a number the user chose.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lossylearn.errors import LossylearnError
from lossylearn.privacy.mechanisms import NoiseSpec

TARGET_BASES = ("nominal", "effective", "given")


@dataclass(frozen=True)
class TargetPolicy:
    """Which distortion the codec is matched to (see the module docstring)."""

    basis: str = "nominal"
    value: float | None = None
    """The distortion for ``given`` (MSE for Gaussian noise, MAE for Laplace; 0-255 scale)."""

    def __post_init__(self) -> None:
        if self.basis not in TARGET_BASES:
            raise LossylearnError(
                f"unknown target basis {self.basis!r}; choose one of {', '.join(TARGET_BASES)}"
            )
        if self.basis == "given":
            v = self.value
            if v is None or isinstance(v, bool) or not isinstance(v, int | float):
                raise LossylearnError(f"a given target needs a number, got {v!r}")
            if not math.isfinite(v) or v < 0:
                raise LossylearnError(f"--target-distortion must be a finite number >= 0, got {v}")
        elif self.value is not None:
            raise LossylearnError(f"a {self.basis} target takes no value (got {self.value})")

    @property
    def needs_noisy_images(self) -> bool:
        """Whether :meth:`target` must see the stored noisy images."""
        return self.basis == "effective"

    def target(self, spec: NoiseSpec, noisy: np.ndarray | None = None) -> tuple[str, float]:
        """(metric, distortion) the codec must match for noise ``spec``; ``noisy`` are the very
        noisy images that will be stored (needed by ``effective`` only)."""
        metric, nominal = spec.matched_target()
        if self.basis == "given":
            return metric, float(self.value)  # type: ignore[arg-type]
        if self.basis == "nominal":
            return metric, float(nominal)
        if noisy is None:
            raise LossylearnError("the effective target is estimated from the noisy images")
        from lossylearn.privacy.effective import effective_distortion

        return metric, float(effective_distortion(noisy, spec, metric))
