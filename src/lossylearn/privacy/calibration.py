"""Turn a user's noise request (sigma/b, PSNR, or a privacy target) into a noise and a guarantee.

The guarantee always names what it protects:

- ``unit="pixel"``: neighbouring datasets differ in one pixel of one image (by up to the
  sensitivity, 255 by default). This is the LCoN paper's per-pixel local-DP claim.
- ``unit="image"``: neighbouring datasets differ in one whole image: the L2 sensitivity of a
  full-range image of n pixels is ``255 sqrt(n)`` (Gaussian), its L1 sensitivity ``255 n``
  (Laplace). Far more noise is needed for the same epsilon.

Both per-pixel and per-image figures are reported whatever was asked, together with the epsilon
the paper's convention (``sigma^2 = 2 ln(2/delta)/eps^2``, sensitivity 1 on [0, 1] pixels) would
state for the same noise.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any, Literal, cast

from lossylearn.errors import PrivacyError
from lossylearn.privacy import accounting, discrete
from lossylearn.privacy.mechanisms import KINDS, RANGE_HANDLING, NoiseSpec

UNITS = ("pixel", "image")
PIXEL_RANGE = 255.0

MIRONOV_NOTE = (
    "float sampler: floating-point Gaussian/Laplace samples can leak through their low-order bits "
    "(Mironov 2012), so the guarantee is that of the ideal real-valued mechanism; use "
    "discrete=True (--discrete) for an exact integer sampler"
)


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


# ---------------------------------------------------------------------------------------------
# validation helpers
# ---------------------------------------------------------------------------------------------
def _positive(name: str, value: float | None) -> float | None:
    if value is None:
        return None
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise PrivacyError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(v) or v <= 0:
        raise PrivacyError(f"{name} must be a positive finite number, got {value}")
    return v


def _image_pixels(image_shape: tuple[int, ...]) -> int:
    try:
        dims = tuple(int(d) for d in image_shape)
    except (TypeError, ValueError):
        raise PrivacyError(f"image_shape must be (H, W, C), got {image_shape!r}") from None
    if len(dims) != 3 or min(dims) < 1:
        raise PrivacyError(
            f"image_shape must be (H, W, C) with positive sizes, got {image_shape!r}"
        )
    return dims[0] * dims[1] * dims[2]


# ---------------------------------------------------------------------------------------------
# one unit's figure for a given noise
# ---------------------------------------------------------------------------------------------
def _figure(spec: NoiseSpec, unit: str, sensitivity: float, delta: float) -> dict[str, Any]:
    """Epsilon of ``spec`` for ``unit`` at ``delta`` (Laplace: pure DP, delta 0)."""
    if spec.kind == "laplace":
        return {
            "unit": unit,
            "epsilon": accounting.laplace_epsilon(spec.b, sensitivity),
            "delta": 0.0,
            "sensitivity": sensitivity,
            "norm": "L1",
            "accounting": "pure DP: epsilon = L1 sensitivity / b",
        }
    if not spec.discrete:
        eps = accounting.gaussian_epsilon(spec.scale, sensitivity, delta)
        how = "analytic Gaussian (Balle & Wang 2018) via dp_accounting"
    elif unit == "pixel" and spec.scale <= accounting.EXACT_DISCRETE_MAX_SIGMA:
        eps = accounting.discrete_gaussian_epsilon(spec.sigma2, sensitivity, delta)
        how = "exact discrete-Gaussian delta (Canonne et al. 2020, Thm. 7), max over integer shifts"
    else:
        rho = sensitivity**2 / (2.0 * spec.sigma2)
        eps = accounting.zcdp_epsilon(rho, delta)
        how = (
            f"discrete Gaussian is rho-zCDP with rho = {rho:.6g} (Canonne et al. 2020), "
            "converted by their Prop. 12"
        )
    return {
        "unit": unit,
        "epsilon": eps,
        "delta": delta,
        "sensitivity": sensitivity,
        "norm": "L2",
        "accounting": how,
    }


def _paper_convention(spec: NoiseSpec, delta: float) -> dict[str, Any]:
    if spec.kind == "gaussian":
        eps = accounting.paper_epsilon_gaussian(spec.scale, delta)
        return {
            "formula": "sigma^2 = 2 ln(2/delta) / epsilon^2, sensitivity 1, pixels in [0, 1]",
            "sigma_unit_interval": spec.scale / PIXEL_RANGE,
            "epsilon": eps,
            "delta": delta,
            "protects": "one pixel of one image only (the paper's per-pixel local DP, Sec. V-C)",
            "caveat": (
                "this classic bound is proven only for epsilon < 1"
                if eps >= 1.0
                else "classic Gaussian-mechanism bound; the analytic one is tighter"
            ),
        }
    return {
        "formula": "b = 1 / epsilon, sensitivity 1, pixels in [0, 1]",
        "b_unit_interval": spec.scale / PIXEL_RANGE,
        "epsilon": PIXEL_RANGE / spec.scale,
        "delta": 0.0,
        "protects": "one pixel of one image only (the paper's per-pixel local DP, Sec. V-C)",
        "caveat": "pure DP for one pixel; a whole image needs the L1 sensitivity 255 n",
    }


# ---------------------------------------------------------------------------------------------
# calibration from a privacy target
# ---------------------------------------------------------------------------------------------
def _calibrate_gaussian(
    epsilon: float, delta: float, sensitivity: float, unit: str, discrete_: bool
) -> tuple[float, Fraction | None]:
    """Smallest sigma for (epsilon, delta); for discrete noise also its exact sigma^2."""
    if not discrete_:
        return accounting.gaussian_sigma(epsilon, delta, sensitivity), None
    start = accounting.gaussian_sigma(epsilon, delta, sensitivity)
    if unit == "pixel" and start <= accounting.EXACT_DISCRETE_MAX_SIGMA:

        def exact_delta(s: float) -> float:
            s2 = float(discrete.gaussian_sigma2_fraction(s))
            return accounting.discrete_gaussian_delta(s2, epsilon, sensitivity)

        sigma = accounting.discrete_gaussian_sigma(epsilon, delta, sensitivity, exact_delta)
        return sigma, discrete.gaussian_sigma2_fraction(sigma)

    def zcdp_delta(s: float) -> float:
        s2 = float(discrete.gaussian_sigma2_fraction(s))
        return accounting.zcdp_delta(sensitivity**2 / (2.0 * s2), epsilon)

    sigma = accounting.discrete_gaussian_sigma(epsilon, delta, sensitivity, zcdp_delta)
    return sigma, discrete.gaussian_sigma2_fraction(sigma)


def _laplace_b_at_least(target: Fraction) -> Fraction:
    """The smallest rational ``t/s >= target`` with the sampler's denominator bound."""
    s = max(1, (1 << 31) // (math.ceil(target) + 1))
    t = -((-target.numerator * s) // target.denominator)  # ceil(target * s)
    return Fraction(t, s)


# ---------------------------------------------------------------------------------------------
# the public entry point
# ---------------------------------------------------------------------------------------------
def resolve_noise(
    *,
    kind: str = "gaussian",
    sigma: float | None = None,
    b: float | None = None,
    psnr: float | None = None,
    epsilon: float | None = None,
    delta: float | None = None,
    sensitivity: float | None = None,
    unit: str = "pixel",
    image_shape: tuple[int, int, int],
    discrete: bool = False,
    range_handling: str = "clip",
    seeded: bool = False,
) -> tuple[NoiseSpec, PrivacyGuarantee]:
    """Resolve exactly one noise strength (sigma | b, psnr, or epsilon [+ delta]) for images of
    ``image_shape`` = (H, W, C) into a :class:`NoiseSpec` and its :class:`PrivacyGuarantee`.

    - ``psnr``: nominal sigma = 255 10^(-psnr/20); for Laplace, b = sigma / sqrt(2) so that the
      noise MSE 2 b^2 equals sigma^2 (clipping makes the measured PSNR differ).
    - ``epsilon`` (+ ``delta``, default 1e-5 for Gaussian): Gaussian -> analytic Gaussian sigma
      (float sampler), exact discrete-Gaussian delta (discrete, per pixel) or zCDP (discrete,
      per image); Laplace -> b = sensitivity / epsilon (delta must be absent or 0).
    - default sensitivity: 255 per pixel; per image 255 sqrt(H W C) (Gaussian, L2) or
      255 H W C (Laplace, L1).
    - given sigma/b/psnr, the reported epsilon is that noise's at ``delta`` (default 1e-5).
    """
    if kind not in KINDS:
        raise PrivacyError(f"unknown noise kind {kind!r}; known: {', '.join(KINDS)}")
    if unit not in UNITS:
        raise PrivacyError(f"unknown privacy unit {unit!r}; known: {', '.join(UNITS)}")
    if range_handling not in RANGE_HANDLING:
        raise PrivacyError(
            f"unknown range handling {range_handling!r}; known: {', '.join(RANGE_HANDLING)}"
        )
    n = _image_pixels(image_shape)
    gaussian = kind == "gaussian"
    if sigma is not None and not gaussian:
        raise PrivacyError("sigma sets Gaussian noise; for Laplace noise give b")
    if b is not None and gaussian:
        raise PrivacyError("b sets Laplace noise; for Gaussian noise give sigma")
    given = [name for name, v in (("sigma", sigma), ("b", b), ("psnr", psnr), ("epsilon", epsilon))
             if v is not None]  # fmt: skip
    if len(given) != 1:
        what = "none" if not given else " and ".join(given)
        raise PrivacyError(
            f"give exactly one noise strength: sigma (gaussian) or b (laplace), psnr, or epsilon "
            f"(got {what})"
        )
    sigma_v = _positive("sigma", sigma)
    b_v = _positive("b", b)
    eps_v = _positive("epsilon", epsilon)
    if psnr is not None:
        try:
            psnr_v = float(psnr)
        except (TypeError, ValueError):
            raise PrivacyError(f"psnr must be a number of dB, got {psnr!r}") from None
        if not math.isfinite(psnr_v):
            raise PrivacyError(f"psnr must be finite, got {psnr}")

    notes: list[str] = []
    if gaussian:
        if delta is None:
            delta_v = accounting.DEFAULT_DELTA
            notes.append(f"delta not given: reported at delta = {accounting.DEFAULT_DELTA:g}")
        else:
            try:
                delta_v = float(delta)
            except (TypeError, ValueError):
                raise PrivacyError(f"delta must be a number, got {delta!r}") from None
            if not 0.0 < delta_v < 1.0:
                raise PrivacyError(f"delta must lie strictly between 0 and 1, got {delta}")
    else:
        if delta is not None and delta != 0:
            raise PrivacyError(
                f"Laplace noise gives pure epsilon-DP (delta = 0); leave delta unset, got {delta}"
            )
        delta_v = 0.0

    pixel_sens = PIXEL_RANGE
    image_sens = PIXEL_RANGE * math.sqrt(n) if gaussian else PIXEL_RANGE * n
    if sensitivity is not None:
        sens = _positive("sensitivity", sensitivity)
        assert sens is not None
    else:
        sens = pixel_sens if unit == "pixel" else image_sens
    if discrete and unit == "pixel" and sens < 1:
        raise PrivacyError(
            "discrete noise needs a sensitivity of at least 1 (pixel values are integers)"
        )

    exact: Fraction | None = None
    requested = eps_v is not None
    if sigma_v is not None or b_v is not None:
        scale = sigma_v if sigma_v is not None else b_v
    elif psnr is not None:
        nominal = PIXEL_RANGE * 10.0 ** (-psnr_v / 20.0)
        scale = nominal if gaussian else nominal / math.sqrt(2.0)
        notes.append(
            f"psnr {psnr_v:g} dB -> nominal sigma = 255 * 10^(-psnr/20) = {nominal:.6g}"
            + (
                ""
                if gaussian
                else f"; Laplace b = sigma / sqrt(2) = {scale:.6g} (MSE 2 b^2 = sigma^2)"
            )
            + "; clipping to [0, 255] makes the measured PSNR of noisy images differ"
        )
    else:
        assert eps_v is not None
        if gaussian:
            scale, exact = _calibrate_gaussian(eps_v, delta_v, sens, unit, discrete)
        elif discrete:
            exact = _laplace_b_at_least(Fraction(sens) / Fraction(eps_v))
            scale = float(exact)
        else:
            scale = sens / eps_v
    assert scale is not None
    spec = NoiseSpec(
        kind=cast(Literal["gaussian", "laplace"], kind),
        scale=scale,
        discrete=discrete,
        range_handling=cast(Literal["clip", "wrap"], range_handling),
        exact=exact,
    )

    figure_delta = delta_v if gaussian else 0.0
    per_pixel = _figure(spec, "pixel", pixel_sens, figure_delta)
    per_image = _figure(spec, "image", image_sens, figure_delta)
    if sensitivity is None:
        main = per_pixel if unit == "pixel" else per_image
    else:
        main = _figure(spec, unit, sens, figure_delta)
    eps_out = float(main["epsilon"])
    if requested:
        assert eps_v is not None
        if eps_out > eps_v * (1.0 + 1e-9):
            raise PrivacyError(  # a calibration bug, never a user error; refuse to under-protect
                f"calibrated noise gives epsilon {eps_out} above the requested {eps_v}"
            )
        eps_out = eps_v

    if gaussian and discrete:
        mechanism = "discrete Gaussian (Canonne et al. 2020)"
    elif gaussian:
        mechanism = "analytic Gaussian (Balle & Wang 2018), float sampler"
    else:
        mechanism = "discrete Laplace" if discrete else "Laplace"

    if unit == "pixel":
        notes.insert(0, (
            f"protects one pixel of one image: neighbouring datasets differ in a single pixel "
            f"value by up to {sens:g} (0-255 scale); a whole image is protected only at the "
            f"per-image epsilon {per_image['epsilon']:.4g}"
        ))  # fmt: skip
    else:
        notes.insert(0, (
            f"protects one whole image of {n} values ({main['norm']} sensitivity {sens:.6g}); "
            "a person who contributes k images is protected at k times epsilon (composition)"
        ))  # fmt: skip
    notes.append("labels are stored unchanged and are not protected")
    if not discrete:
        notes.append(MIRONOV_NOTE)
    else:
        notes.append(f"exact integer sampler; {spec.sampler}")
    notes.append(
        "rounding and clipping to [0, 255] (or wrapping mod 256) are post-processing, and so is "
        "the codec and everything after it: they cannot weaken the guarantee"
    )
    if seeded:
        notes.append(
            "seeded randomness: anyone with the seed can regenerate and subtract the noise; "
            "for a real release use the CSPRNG (no seed)"
        )
    randomness = (
        "seeded (numpy PCG64 via SeedSequence(seed, stream)), not for deployment"
        if seeded
        else "csprng (os.urandom)"
    )
    guarantee = PrivacyGuarantee(
        mechanism=mechanism,
        epsilon=eps_out,
        delta=figure_delta,
        sensitivity=sens,
        norm=main["norm"],
        unit=unit,  # type: ignore[arg-type]
        requested=requested,
        per_pixel=per_pixel,
        per_image=per_image,
        paper_convention=_paper_convention(
            spec, figure_delta if gaussian else accounting.DEFAULT_DELTA
        ),
        notes=tuple(notes),
        randomness=randomness,
    )
    return spec, guarantee
