"""What the user asked for: :class:`NoiseRequest`, resolved once into (NoiseSpec, PrivacyGuarantee).

A request names exactly one noise strength (``sigma`` | ``b`` | ``psnr`` | ``epsilon`` [+ ``delta``])
plus the unit the guarantee protects, the sensitivity, the sampler and the range handling. It is
plain data (it pickles and round-trips through JSON); :meth:`NoiseRequest.resolve` is where it is
validated, through :func:`lossylearn.privacy.calibration.resolve_noise`, the one place noise
options are checked.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from lossylearn.errors import PrivacyError
from lossylearn.privacy.calibration import resolve_noise
from lossylearn.privacy.guarantee import PrivacyGuarantee
from lossylearn.privacy.mechanisms import NoiseSpec


@dataclass(frozen=True)
class NoiseRequest:
    """The noise a run asks for, before calibration (see the module docstring)."""

    kind: str = "gaussian"
    sigma: float | None = None
    b: float | None = None
    psnr: float | None = None
    epsilon: float | None = None
    delta: float | None = None
    sensitivity: float | None = None
    unit: str = "pixel"
    discrete: bool = False
    range_handling: str = "clip"

    def resolve(
        self, image_shape: tuple[int, int, int], *, seeded: bool
    ) -> tuple[NoiseSpec, PrivacyGuarantee]:
        """Calibrate for images of ``image_shape``: the noise to add and the guarantee it gives."""
        return resolve_noise(
            kind=self.kind, sigma=self.sigma, b=self.b, psnr=self.psnr, epsilon=self.epsilon,
            delta=self.delta, sensitivity=self.sensitivity, unit=self.unit,
            image_shape=image_shape, discrete=self.discrete, range_handling=self.range_handling,
            seeded=seeded,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON form (every field, None where not given)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NoiseRequest:
        """Rebuild a request from :meth:`to_dict` output; unknown keys are refused."""
        unknown = sorted(set(d) - set(cls.__dataclass_fields__))
        if unknown:
            raise PrivacyError(f"noise request has unknown fields: {', '.join(unknown)}")
        return cls(**d)
