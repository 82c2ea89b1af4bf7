"""Release noise through OpenDP: the exact discrete Gaussian and Laplace of an unseeded run.

An unseeded (release) run with ``--discrete`` draws its integer noise with OpenDP's measurements
``make_gaussian`` / ``make_laplace`` on ``vector_domain(atom_domain(T=i64))``: one call per chunk
(at most :data:`PIECE` values a call) adds noise to a vector of zeros, so the noise is OpenDP's
own. Inside, OpenDP runs the samplers of Canonne, Kamath & Steinke (2020) (``sample_discrete_
gaussian`` / ``sample_discrete_laplace`` in Rust, exact rational arithmetic on big integers) and
takes every random bit from its CSPRNG (OpenSSL's ``RAND_bytes`` in the PyPI wheels, which are
built with ``use-openssl``). Seeded runs keep :mod:`lossylearn.privacy.discrete`: OpenDP has no
seedable generator, by design.

What OpenDP cannot take, and how we meet it:

- **Our exact rational sigma^2.** OpenDP's scale is an f64 and is the standard deviation: it
  samples ``P(x) ∝ exp(-x^2 / (2 s^2))`` for the exact binary rational ``s`` of that double. Our
  rational ``sigma^2 = t c`` is in general no square of a rational. So a release uses ``s`` = the
  smallest double with ``s^2 >= sigma^2`` (:func:`gaussian_scale`; relative excess < 5e-16),
  and its :class:`~lossylearn.privacy.mechanisms.NoiseSpec` records ``s^2`` as its exact
  parameter: the accounting describes exactly the law OpenDP samples. The Laplace's ``b`` is
  rounded up to a double the same way (:func:`laplace_scale`).
- **Speed.** OpenDP samples one value at a time with big-integer rationals and a CSPRNG call per
  few bits: about 1e5 discrete Gaussian values per second per core here, 30 to 50 times slower than
  our vectorised sampler (``benchmarks/noise_throughput.py``). It is the price of an audited
  sampler for a release; ``--workers`` spreads chunks over cores (the calls release the GIL).

OpenDP gates its measurement constructors behind ``enable_features("contrib")`` ("proofs for
correctness have not completed the vetting process"). That is acceptable here because we use the
measurement only as a sampler: the two samplers it calls carry OpenDP's proof documents, our own
tests check their output against the exact pmf, and the privacy statement is computed by
lossylearn's accounting (``privacy/accounting.py``), not by OpenDP's privacy map. Neither
"floating-point" nor "honest-but-curious" is needed (integer domain, no user-supplied bounds).
The feature is switched on only while the measurement is built and restored afterwards, so a
caller's own OpenDP settings are left as they were.
"""

from __future__ import annotations

import importlib.metadata
import math
from fractions import Fraction
from functools import lru_cache
from typing import Any

import numpy as np

from lossylearn.errors import PrivacyError

__all__ = [
    "PIECE",
    "gaussian_scale",
    "laplace_scale",
    "opendp_version",
    "randomness",
    "release_exact",
    "sample",
    "sampler_line",
]

PIECE = 1 << 20
"""Values per OpenDP call: bounds the Python list OpenDP hands back (about 36 bytes a value)."""


def opendp_version() -> str:
    """The installed OpenDP version; PrivacyError when it is missing."""
    try:
        return importlib.metadata.version("opendp")
    except importlib.metadata.PackageNotFoundError:
        raise PrivacyError(
            "an unseeded --discrete run draws its noise through OpenDP, which is not installed; "
            "pip install opendp (see constraints.txt), or pass --seed for a reproducible run"
        ) from None


def _version_line() -> str:
    try:
        return f"OpenDP {opendp_version()}"
    except PrivacyError:
        return "OpenDP (not installed here)"


def _next_up(x: float) -> float:
    return math.nextafter(x, math.inf)


def gaussian_scale(sigma2: Fraction) -> float:
    """The smallest double ``s`` with ``s^2 >= sigma2`` (exact comparison)."""
    if sigma2 <= 0:
        raise PrivacyError(f"discrete Gaussian needs sigma^2 > 0, got {sigma2}")
    s = math.sqrt(float(sigma2))
    while s > 0 and Fraction(math.nextafter(s, 0.0)) ** 2 >= sigma2:
        s = math.nextafter(s, 0.0)
    while Fraction(s) ** 2 < sigma2:
        s = _next_up(s)
    return s


def laplace_scale(b: Fraction) -> float:
    """The smallest double ``>= b`` (exact comparison)."""
    if b <= 0:
        raise PrivacyError(f"discrete Laplace needs b > 0, got {b}")
    s = float(b)
    while s > 0 and Fraction(math.nextafter(s, 0.0)) >= b:
        s = math.nextafter(s, 0.0)
    while Fraction(s) < b:
        s = _next_up(s)
    return s


def release_exact(kind: str, exact: Fraction) -> Fraction:
    """The exact parameter OpenDP samples for a requested one: ``s^2`` (Gaussian) or ``s``
    (Laplace), ``s`` the double of :func:`gaussian_scale` / :func:`laplace_scale`. Idempotent."""
    if kind == "gaussian":
        return Fraction(gaussian_scale(exact)) ** 2
    return Fraction(laplace_scale(exact))


def _scale(kind: str, exact: Fraction) -> float:
    return gaussian_scale(exact) if kind == "gaussian" else laplace_scale(exact)


def sampler_line(kind: str, exact: Fraction) -> str:
    """The manifest's one-line name of the OpenDP sampler, its version and exact parameter."""
    s = _scale(kind, exact)
    if kind == "gaussian":
        return (
            f"exact discrete Gaussian drawn by {_version_line()} (measurements.make_gaussian "
            "on vector_domain(atom_domain(i64)): Canonne-Kamath-Steinke 2020 in Rust, OpenDP's "
            f"CSPRNG), scale sigma = {s!r}, sigma^2 = {Fraction(s) ** 2} exactly"
        )
    return (
        f"exact discrete Laplace drawn by {_version_line()} (measurements.make_laplace on "
        "vector_domain(atom_domain(i64)): Canonne-Kamath-Steinke 2020 in Rust, OpenDP's CSPRNG), "
        f"b = {s!r} = {Fraction(s)} exactly"
    )


def randomness() -> str:
    """The privacy section's ``randomness`` for noise drawn through OpenDP; PrivacyError when
    OpenDP is missing (so a release run stops before it starts)."""
    return f"csprng (OpenDP {opendp_version()}: OpenSSL RAND_bytes, inside its Rust samplers)"


@lru_cache(maxsize=8)
def _measurement(kind: str, scale: float) -> Any:
    """OpenDP's noise measurement on int64 vectors (built once per process and scale)."""
    opendp_version()
    import opendp.prelude as dp  # lazy: loading OpenDP's library takes about a second

    had = "contrib" in dp.GLOBAL_FEATURES
    dp.enable_features("contrib")  # why this is acceptable: see the module docstring
    try:
        domain = dp.vector_domain(dp.atom_domain(T="i64"))
        if kind == "gaussian":
            return dp.m.make_gaussian(domain, dp.l2_distance(T="i64"), scale=scale)
        return dp.m.make_laplace(domain, dp.l1_distance(T="i64"), scale=scale)
    finally:
        if not had:
            dp.disable_features("contrib")


def sample(kind: str, exact: Fraction, n: int) -> np.ndarray:
    """``n`` draws (int64) of OpenDP's discrete Gaussian (``exact`` = sigma^2) or Laplace
    (``exact`` = b), at the double scale :func:`release_exact` records."""
    if kind not in ("gaussian", "laplace"):
        raise PrivacyError(f"OpenDP sampler: unknown noise kind {kind!r}")
    measurement = _measurement(kind, _scale(kind, exact))
    out = np.empty(int(n), dtype=np.int64)
    for start in range(0, out.size, PIECE):
        stop = min(out.size, start + PIECE)
        out[start:stop] = measurement(np.zeros(stop - start, dtype=np.int64))
    return out
