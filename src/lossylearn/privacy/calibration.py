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
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, Literal, cast

from lossylearn.errors import PrivacyError
from lossylearn.imaging import rms_at_psnr
from lossylearn.privacy import accounting, discrete
from lossylearn.privacy.guarantee import PrivacyGuarantee
from lossylearn.privacy.mechanisms import (
    KINDS,
    RANGE_HANDLING,
    NoiseSpec,
    randomness,
    sampler_backend,
)

UNITS = ("pixel", "image")
PIXEL_RANGE = 255.0

MIRONOV_NOTE = (
    "float sampler: floating-point Gaussian/Laplace samples can leak through their low-order bits "
    "(Mironov 2012), so the guarantee is that of the ideal real-valued mechanism; use "
    "discrete=True (--discrete) for an exact integer sampler"
)


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
        if sigma <= accounting.EXACT_DISCRETE_MAX_SIGMA:  # else account (and calibrate) by zCDP
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
# request parsing
# ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Request:
    """A validated noise request."""

    gaussian: bool
    unit: str
    n: int
    scale: float | None  # sigma or b when given directly
    psnr: float | None
    epsilon: float | None
    delta: float  # 0 for Laplace
    sensitivity: float  # for the chosen unit
    custom_sensitivity: bool
    discrete: bool


def _parse(
    kind: str, sigma: float | None, b: float | None, psnr: float | None, epsilon: float | None,
    delta: float | None, sensitivity: float | None, unit: str, image_shape: tuple[int, ...],
    discrete: bool, range_handling: str, notes: list[str],
) -> _Request:  # fmt: skip
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
        raise PrivacyError(
            "give exactly one noise strength: sigma (gaussian) or b (laplace), psnr, or epsilon "
            f"(got {' and '.join(given) if given else 'none'})"
        )
    scale = _positive("sigma", sigma) if gaussian else _positive("b", b)
    eps = _positive("epsilon", epsilon)
    psnr_v = None
    if psnr is not None:
        try:
            psnr_v = float(psnr)
        except (TypeError, ValueError):
            raise PrivacyError(f"psnr must be a number of dB, got {psnr!r}") from None
        if not math.isfinite(psnr_v):
            raise PrivacyError(f"psnr must be finite, got {psnr}")
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
    if sensitivity is not None:
        sens = _positive("sensitivity", sensitivity)
        assert sens is not None
    else:
        sens = _default_sensitivity(unit, gaussian, n)
    if discrete and unit == "pixel" and sens < 1:
        raise PrivacyError(
            "discrete noise needs a sensitivity of at least 1 (pixel values are integers)"
        )
    return _Request(
        gaussian=gaussian, unit=unit, n=n, scale=scale, psnr=psnr_v, epsilon=eps, delta=delta_v,
        sensitivity=sens, custom_sensitivity=sensitivity is not None, discrete=discrete,
    )  # fmt: skip


def _default_sensitivity(unit: str, gaussian: bool, n: int) -> float:
    """255 per pixel; per image 255 sqrt(n) (L2, Gaussian) or 255 n (L1, Laplace)."""
    if unit == "pixel":
        return PIXEL_RANGE
    return PIXEL_RANGE * math.sqrt(n) if gaussian else PIXEL_RANGE * n


def _scale(req: _Request, notes: list[str]) -> tuple[float, Fraction | None]:
    """The noise scale (and the exact rational for discrete calibrations) for a request."""
    if req.scale is not None:
        return req.scale, None
    if req.psnr is not None:
        nominal = rms_at_psnr(req.psnr, PIXEL_RANGE)
        scale = nominal if req.gaussian else nominal / math.sqrt(2.0)
        laplace = f"; Laplace b = sigma / sqrt(2) = {scale:.6g} (noise MSE 2 b^2 = sigma^2)"
        notes.append(
            f"psnr {req.psnr:g} dB -> nominal sigma = 255 * 10^(-psnr/20) = {nominal:.6g}"
            + ("" if req.gaussian else laplace)
            + "; clipping to [0, 255] makes the measured PSNR of noisy images differ"
        )
        return scale, None
    assert req.epsilon is not None
    if req.gaussian:
        return _calibrate_gaussian(req.epsilon, req.delta, req.sensitivity, req.unit, req.discrete)
    if req.discrete:
        exact = _laplace_b_at_least(Fraction(req.sensitivity) / Fraction(req.epsilon))
        return float(exact), exact
    return req.sensitivity / req.epsilon, None


def _notes(req: _Request, spec: NoiseSpec, main: dict[str, Any], per_image: dict[str, Any],
           seeded: bool, notes: list[str]) -> tuple[str, ...]:  # fmt: skip
    if req.unit == "pixel":
        unit_note = (
            f"protects one pixel of one image: neighbouring datasets differ in a single pixel "
            f"value by up to {req.sensitivity:g} (0-255 scale); a whole image is protected only "
            f"at the per-image epsilon {per_image['epsilon']:.4g}"
        )
    else:
        unit_note = (
            f"protects one whole image of {req.n} values ({main['norm']} sensitivity "
            f"{req.sensitivity:.6g}); a person who contributes k images is protected at k times "
            "epsilon (composition)"
        )
    out = [unit_note, *notes, "labels are stored unchanged and are not protected"]
    out.append(MIRONOV_NOTE if not req.discrete else f"exact integer sampler; {spec.sampler}")
    out.append(
        "rounding and clipping to [0, 255] (or wrapping mod 256) are post-processing, and so is "
        "the codec and everything after it: they cannot weaken the guarantee"
    )
    if seeded:
        out.append(
            "seeded randomness: anyone with the seed can regenerate and subtract the noise; "
            "for a real release use the CSPRNG (no seed)"
        )
    return tuple(out)


def _mechanism(gaussian: bool, discrete_: bool) -> str:
    if gaussian:
        if discrete_:
            return "discrete Gaussian (Canonne et al. 2020)"
        return "analytic Gaussian (Balle & Wang 2018), float sampler"
    return "discrete Laplace" if discrete_ else "Laplace"


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
      (float sampler), smallest sigma by the exact discrete-Gaussian delta (discrete, per pixel)
      or by zCDP (discrete, per image); Laplace -> b = sensitivity / epsilon (delta absent or 0).
    - default sensitivity: 255 per pixel; per image 255 sqrt(H W C) (Gaussian, L2) or
      255 H W C (Laplace, L1).
    - given sigma/b/psnr, the reported epsilon is that noise's at ``delta`` (default 1e-5).
    Every user mistake raises a one-line :class:`PrivacyError`.
    """
    notes: list[str] = []
    req = _parse(kind, sigma, b, psnr, epsilon, delta, sensitivity, unit, image_shape, discrete,
                 range_handling, notes)  # fmt: skip
    scale, exact = _scale(req, notes)
    drawn_from = randomness(discrete, seeded)  # an unseeded --discrete run needs OpenDP: fail early
    spec = NoiseSpec(
        kind=cast(Literal["gaussian", "laplace"], kind),
        scale=scale,
        discrete=discrete,
        range_handling=cast(Literal["clip", "wrap"], range_handling),
        exact=exact,
        backend=sampler_backend(discrete, seeded),
    )
    per_pixel = _figure(
        spec, "pixel", _default_sensitivity("pixel", req.gaussian, req.n), req.delta
    )
    per_image = _figure(
        spec, "image", _default_sensitivity("image", req.gaussian, req.n), req.delta
    )
    if req.custom_sensitivity:
        main = _figure(spec, unit, req.sensitivity, req.delta)
    else:
        main = per_pixel if unit == "pixel" else per_image
    eps_out = float(main["epsilon"])
    if req.epsilon is not None:
        if eps_out > req.epsilon * (1.0 + 1e-9):
            raise PrivacyError(  # a calibration bug, never a user error; refuse to under-protect
                f"calibrated noise gives epsilon {eps_out} above the requested {req.epsilon}"
            )
        eps_out = req.epsilon
    guarantee = PrivacyGuarantee(
        mechanism=_mechanism(req.gaussian, discrete),
        epsilon=eps_out,
        delta=req.delta,
        sensitivity=req.sensitivity,
        norm=main["norm"],
        unit=cast(Literal["pixel", "image"], unit),
        requested=req.epsilon is not None,
        per_pixel=per_pixel,
        per_image=per_image,
        paper_convention=_paper_convention(
            spec, req.delta if req.gaussian else accounting.DEFAULT_DELTA
        ),
        notes=_notes(req, spec, main, per_image, seeded, notes),
        randomness=drawn_from,
    )
    return spec, guarantee
