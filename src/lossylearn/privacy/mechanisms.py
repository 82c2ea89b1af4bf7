"""Noise mechanisms on 8-bit images: the noise specification, sampling, and adding noise.

Images are uint8 arrays (any shape, typically (N, H, W, C)) on the 0..255 scale, and noise
scales are in the same pixel units. Two samplers per kind:

- float (``discrete=False``): float64 Gaussian/Laplace noise ``n``; the noisy pixel is
  ``rint(x + n)`` (round half to even), a post-processing of the real-valued mechanism;
- exact discrete (``discrete=True``): integer noise from the exact samplers of Canonne, Kamath &
  Steinke (2020); the noisy pixel is ``x + n``. ``backend`` says whose: ``"lossylearn"``
  (:mod:`lossylearn.privacy.discrete`, vectorised, seeded or from ``os.urandom``) or ``"opendp"``
  (:mod:`lossylearn.privacy.opendp_sampler`, OpenDP's audited samplers and CSPRNG: what an
  unseeded run uses, see :func:`sampler_backend`).

Then ``range_handling`` maps the integer back to 0..255: ``"clip"`` (default) or ``"wrap"``
(mod 256, the LCoN paper's mod-Q noise model). Both are post-processing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import Any, Literal

import numpy as np

from lossylearn.errors import DataError, PrivacyError
from lossylearn.privacy import discrete, laws, opendp_sampler
from lossylearn.privacy.source import NoiseSource

KINDS = ("gaussian", "laplace")
RANGE_HANDLING = ("clip", "wrap")
BACKENDS = ("lossylearn", "opendp")
MIN_SCALE = 0.01
MAX_SCALE = 1.0e8
_EXACT_TOLERANCE = 1e-6


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise PrivacyError(f"unknown {name} {value!r}; known: {', '.join(choices)}")


@dataclass(frozen=True)
class NoiseSpec:
    """What noise to add: kind, scale (sigma or b, 0-255 pixel units), sampler, range handling.

    ``exact`` is the exact rational parameter a discrete sampler uses (sigma^2 for the Gaussian,
    b for the Laplace); it is derived from ``scale`` when omitted (relative error <= ~1.5e-8,
    see :mod:`lossylearn.privacy.discrete`) and must be None for float samplers. With
    ``backend="opendp"`` it is rounded up to what OpenDP samples: ``s^2`` (``s`` a double) for the
    Gaussian, a double for the Laplace (relative change < 5e-16, see
    :mod:`lossylearn.privacy.opendp_sampler`), so it stays the exact law drawn.
    """

    kind: Literal["gaussian", "laplace"]
    scale: float
    discrete: bool = False
    range_handling: Literal["clip", "wrap"] = "clip"
    exact: Fraction | None = None
    backend: Literal["lossylearn", "opendp"] = "lossylearn"

    def __post_init__(self) -> None:
        _check_choice("noise kind", self.kind, KINDS)
        _check_choice("range handling", self.range_handling, RANGE_HANDLING)
        if not isinstance(self.discrete, (bool, np.bool_)):
            raise PrivacyError(f"discrete must be True or False, got {self.discrete!r}")
        name = "sigma" if self.kind == "gaussian" else "b"
        try:
            scale = float(self.scale)
        except (TypeError, ValueError):
            raise PrivacyError(f"{name} must be a number, got {self.scale!r}") from None
        if not math.isfinite(scale) or scale <= 0:
            raise PrivacyError(f"{name} must be a positive finite number, got {self.scale}")
        if not MIN_SCALE <= scale <= MAX_SCALE:
            raise PrivacyError(
                f"{name} = {scale:g} is outside the supported range [{MIN_SCALE:g}, {MAX_SCALE:g}] "
                "(pixel units, 0-255 scale)"
            )
        object.__setattr__(self, "scale", scale)
        object.__setattr__(self, "discrete", bool(self.discrete))
        _check_choice("sampler backend", self.backend, BACKENDS)
        if not self.discrete:
            if self.exact is not None:
                raise PrivacyError("an exact rational parameter only applies to discrete samplers")
            if self.backend != "lossylearn":
                raise PrivacyError("the OpenDP backend draws discrete noise only (--discrete)")
            return
        target = scale**2 if self.kind == "gaussian" else scale
        if self.exact is None:
            if self.backend == "opendp":  # the double scale itself: exactly what OpenDP draws
                exact = Fraction(scale) ** 2 if self.kind == "gaussian" else Fraction(scale)
            else:
                exact = (
                    discrete.gaussian_sigma2_fraction(scale)
                    if self.kind == "gaussian"
                    else discrete.laplace_b_fraction(scale)
                )
            object.__setattr__(self, "exact", exact)
        else:
            exact = Fraction(self.exact)
            if abs(float(exact) / target - 1.0) > _EXACT_TOLERANCE:
                raise PrivacyError(
                    f"exact parameter {exact} does not match {name} = {scale:g} "
                    f"(expected about {target:g})"
                )
            if self.backend == "opendp":
                object.__setattr__(self, "exact", opendp_sampler.release_exact(self.kind, exact))
                return
            try:
                if self.kind == "gaussian":
                    discrete.check_gaussian_fraction(exact)
                else:
                    discrete.check_laplace_fraction(exact)
            except ValueError as err:
                raise PrivacyError(str(err)) from None
            object.__setattr__(self, "exact", exact)

    # -- the integer noise law -------------------------------------------------------------
    @cached_property
    def law(self) -> laws.IntegerLaw:
        """The law of the integer noise added to pixels (before clipping/wrapping)."""
        if self.kind == "gaussian":
            family = "discrete_gaussian" if self.discrete else "rounded_gaussian"
            param = float(self.exact) if self.discrete else self.scale**2  # type: ignore[arg-type]
        else:
            family = "discrete_laplace" if self.discrete else "rounded_laplace"
            param = float(self.exact) if self.discrete else self.scale  # type: ignore[arg-type]
        return laws.IntegerLaw(family, param)

    def change_probability(self) -> float:
        """Probability that the integer noise added to a pixel is not 0 (before clipping):
        the share of pixels this noise can change at all. Near 0 the release is the clean data."""
        p0 = float(np.exp(laws.log_pmf(self.law, np.zeros(1, dtype=np.int64)))[0])
        return max(0.0, 1.0 - p0)

    @property
    def sigma2(self) -> float:
        """The Gaussian's sigma^2 actually sampled (the exact rational for discrete)."""
        if self.kind != "gaussian":
            raise PrivacyError("sigma^2 is defined for Gaussian noise only")
        return self.law.param

    @property
    def b(self) -> float:
        """The Laplace scale actually sampled (the exact rational for discrete)."""
        if self.kind != "laplace":
            raise PrivacyError("b is defined for Laplace noise only")
        return self.law.param

    @property
    def variance(self) -> float:
        """Variance of the noise as sampled: sigma^2 / 2 b^2 (float), the exact discrete one else.

        The discrete Gaussian's variance is slightly below sigma^2 for small sigma (equal to
        float precision from sigma ~ 3 on); the discrete Laplace's is ``2q/(1-q)^2``,
        ``q = exp(-1/b)``, slightly below ``2 b^2``.
        """
        if self.discrete:
            return laws.variance(self.law)
        return self.scale**2 if self.kind == "gaussian" else 2.0 * self.scale**2

    @property
    def integer_variance(self) -> float:
        """Variance of the integer noise reaching the pixels (rounded, before clipping)."""
        return laws.variance(self.law)

    @property
    def entropy_bits(self) -> float:
        """H(N) in bits of the integer noise (mod 256 under ``wrap``); clipping is ignored."""
        modulus = 256 if self.range_handling == "wrap" else None
        return laws.entropy_nats(self.law, modulus) / math.log(2.0)

    @property
    def sampler(self) -> str:
        """One line naming the sampler (and its library version) and the exact parameter."""
        if self.discrete and self.backend == "opendp":
            assert self.exact is not None
            return opendp_sampler.sampler_line(self.kind, self.exact)
        if self.kind == "gaussian" and self.discrete:
            return (
                "exact discrete Gaussian (Canonne-Kamath-Steinke 2020, Alg. 1-3), "
                f"sigma^2 = {self.exact} exactly"
            )
        if self.discrete:
            return (
                "exact discrete Laplace (Canonne-Kamath-Steinke 2020, Alg. 1-2), "
                f"b = {self.exact} exactly"
            )
        name = "Gaussian" if self.kind == "gaussian" else "Laplace"
        return f"float64 {name} noise added to the pixels, rounded half to even"

    def describe_scale(self) -> str:
        """``"gaussian sigma 0.01"``-style short name of the noise and its strength."""
        name = "sigma" if self.kind == "gaussian" else "b"
        return f"{'discrete ' if self.discrete else ''}{self.kind} {name} {self.scale:g}"

    @property
    def matched_metric(self) -> str:
        """The distortion a codec matched to this noise measures: see :func:`matched_metric`."""
        return matched_metric(self.kind)

    def matched_target(self) -> tuple[str, float]:
        """The codec distortion matched to this noise: ("mse", sigma^2) or ("mae", b).

        For discrete samplers the exact rational parameter is used (equal to ``scale`` to ~1e-8).
        """
        if self.kind == "gaussian":
            return matched_metric(self.kind), self.sigma2
        return matched_metric(self.kind), self.b

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready description (``sigma`` or ``b`` key by kind)."""
        metric, target = self.matched_target()
        return {
            "kind": self.kind,
            ("sigma" if self.kind == "gaussian" else "b"): self.scale,
            "discrete": self.discrete,
            "range_handling": self.range_handling,
            "exact": None if self.exact is None else str(self.exact),
            "entropy_bits": self.entropy_bits,
            "entropy_note": (
                "H(N) of the integer noise"
                + (" mod 256" if self.range_handling == "wrap" else ", clipping ignored")
            ),
            "sampler": self.sampler,
            "backend": self.backend,
            "variance": self.variance,
            "integer_variance": self.integer_variance,
            "matched_metric": metric,
            "matched_target": target,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NoiseSpec:
        """Rebuild a spec from :meth:`to_dict` output."""
        kind = d.get("kind")
        key = "sigma" if kind == "gaussian" else "b"
        if key not in d:
            raise PrivacyError(f"noise description lacks {key!r}")
        exact = d.get("exact")
        return cls(
            kind=kind,  # type: ignore[arg-type]
            scale=float(d[key]),
            discrete=bool(d.get("discrete", False)),
            range_handling=d.get("range_handling", "clip"),
            exact=None if exact is None else Fraction(exact),
            backend=d.get("backend", "lossylearn"),
        )


def sampler_backend(discrete_: bool, seeded: bool) -> Literal["lossylearn", "opendp"]:
    """Whose sampler a run uses: OpenDP for unseeded (release) discrete noise, lossylearn's
    otherwise (seeded runs must be reproducible; OpenDP has no seeded generator)."""
    return "opendp" if discrete_ and not seeded else "lossylearn"


def randomness(discrete_: bool, seeded: bool) -> str:
    """The privacy section's ``randomness``: where the noise's random bits come from."""
    if seeded:
        return "seeded (numpy PCG64 via SeedSequence(seed, stream)), not for deployment"
    if sampler_backend(discrete_, seeded) == "opendp":
        return opendp_sampler.randomness()
    return "csprng (os.urandom)"


def sample_noise(shape: tuple[int, ...] | int, spec: NoiseSpec, source: NoiseSource) -> np.ndarray:
    """Raw noise of ``shape``: float64 for float samplers, int64 for the exact discrete ones.

    ``backend="opendp"`` draws from OpenDP's own CSPRNG and needs a secure ``source`` (which it
    does not read); a seeded source is refused rather than silently ignored.
    """
    shape = (int(shape),) if np.ndim(shape) == 0 else tuple(int(s) for s in shape)  # type: ignore[arg-type]
    n = int(np.prod(shape, dtype=np.int64))
    if spec.discrete:
        assert spec.exact is not None
        if spec.backend == "opendp":
            if not source.secure:
                raise PrivacyError(
                    "OpenDP draws release noise from its own CSPRNG and cannot be seeded; a seeded "
                    "run uses lossylearn's sampler (backend='lossylearn')"
                )
            flat = opendp_sampler.sample(spec.kind, spec.exact, n)
        elif spec.kind == "gaussian":
            flat = discrete.sample_discrete_gaussian(source, n, spec.exact)
        else:
            flat = discrete.sample_discrete_laplace(source, n, spec.exact)
    elif spec.kind == "gaussian":
        flat = source.normal(spec.scale, n)
    else:
        flat = source.laplace(spec.scale, n)
    return flat.reshape(shape)


def add_noise(images: np.ndarray, spec: NoiseSpec, source: NoiseSource) -> np.ndarray:
    """Noisy copy of uint8 ``images`` (same shape, uint8): add, round, then clip or wrap."""
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        got = images.dtype if isinstance(images, np.ndarray) else type(images).__name__
        raise DataError(f"add_noise expects a uint8 numpy array of pixels, got {got}")
    noise = sample_noise(images.shape, spec, source)
    if spec.discrete:
        z = images.astype(np.int64) + noise
    else:
        z = np.rint(images.astype(np.float64) + noise)
    if spec.range_handling == "clip":
        return np.clip(z, 0, 255).astype(np.uint8)
    return np.mod(z, 256).astype(np.uint8)


def matched_metric(kind: str) -> str:
    """LCoN's rule, the one place it is written: Gaussian noise is matched in MSE (= sigma^2),
    Laplacian noise in MAE (= b)."""
    _check_choice("noise kind", kind, KINDS)
    return "mse" if kind == "gaussian" else "mae"
