"""A differential-privacy statement for one noised release: :class:`PrivacyGuarantee`.

It names what it protects (one pixel or one whole image, with the sensitivity and its norm), the
figure for the other unit, and the epsilon the LCoN paper's convention would state for the same
noise; :func:`lossylearn.privacy.calibration.resolve_noise` builds it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal

from lossylearn.errors import PrivacyError

__all__ = ["PrivacyGuarantee"]


@dataclass(frozen=True)
class PrivacyGuarantee:
    """A differential-privacy statement for one noised release, naming its unit and sensitivity."""

    mechanism: str
    epsilon: float
    delta: float
    sensitivity: float
    norm: Literal["L1", "L2"]
    unit: Literal["pixel", "image"]
    requested: bool
    per_pixel: dict[str, Any]
    per_image: dict[str, Any]
    paper_convention: dict[str, Any]
    notes: tuple[str, ...] = field(default_factory=tuple)
    randomness: str = "csprng (os.urandom)"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return {
            "mechanism": self.mechanism,
            "epsilon": self.epsilon,
            "delta": self.delta,
            "sensitivity": self.sensitivity,
            "norm": self.norm,
            "unit": self.unit,
            "requested": self.requested,
            "per_pixel": dict(self.per_pixel),
            "per_image": dict(self.per_image),
            "paper_convention": dict(self.paper_convention),
            "notes": list(self.notes),
            "randomness": self.randomness,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> PrivacyGuarantee:
        """Rebuild a guarantee from :meth:`to_dict` output (extra keys such as ``statement`` are
        ignored); PrivacyError if a field is missing or malformed."""
        try:
            return cls(
                mechanism=str(d["mechanism"]), epsilon=float(d["epsilon"]), delta=float(d["delta"]),
                sensitivity=float(d["sensitivity"]), norm=d["norm"], unit=d["unit"],
                requested=bool(d["requested"]), per_pixel=dict(d["per_pixel"]),
                per_image=dict(d["per_image"]), paper_convention=dict(d["paper_convention"]),
                notes=tuple(d.get("notes", ())), randomness=str(d["randomness"]),
            )  # fmt: skip
        except (KeyError, TypeError, ValueError) as exc:
            raise PrivacyError(
                f"privacy section is missing or has a malformed field: {exc}"
            ) from None

    def describe(self) -> str:
        """A few human lines: the guarantee, the other unit, the paper's figure, the caveats."""
        other = self.per_image if self.unit == "pixel" else self.per_pixel
        lines = [
            f"({_fmt(self.epsilon)}, {_fmt(self.delta)})-DP per {self.unit} "
            f"({self.norm} sensitivity {_fmt(self.sensitivity)} on the 0-255 scale), "
            f"{self.mechanism}; randomness: {self.randomness}.",
            f"per {other['unit']}: epsilon = {_fmt(other['epsilon'])} at delta = "
            f"{_fmt(other['delta'])}; the LCoN paper's convention would state epsilon = "
            f"{_fmt(self.paper_convention['epsilon'])} (one pixel only).",
        ]
        caveats = ["labels are not protected"]
        if "float sampler" in self.mechanism or self.mechanism == "Laplace":
            caveats.append("float sampler (Mironov 2012): prefer --discrete")
        if self.randomness.startswith("seeded"):
            caveats.append("seeded noise is reproducible by anyone with the seed")
        lines.append("; ".join(caveats) + ".")
        return "\n".join(lines)


def _fmt(x: float) -> str:
    if x == 0 or not math.isfinite(x):
        return str(x)
    return f"{x:.4g}"
