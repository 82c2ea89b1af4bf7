"""Noise mechanisms, the noise-matched distortion, and differential-privacy calibration.

- :mod:`~lossylearn.privacy.mechanisms`: :class:`NoiseSpec`, :func:`add_noise`, :func:`sample_noise`
- :mod:`~lossylearn.privacy.source`: :class:`NoiseSource` (CSPRNG or seeded per ``(seed, stream)``)
- :mod:`~lossylearn.privacy.discrete`: exact discrete Gaussian / Laplace samplers (CKS 2020)
- :mod:`~lossylearn.privacy.laws`: the integer noise laws (pmf, variance, entropy)
- :mod:`~lossylearn.privacy.entropy`: ``rho_N(a) = -log2 P(N = a)`` and ``H(N)`` in bits
- :mod:`~lossylearn.privacy.accounting`: analytic / exact discrete / zCDP / Laplace accounting
- :mod:`~lossylearn.privacy.calibration`: :func:`resolve_noise`, noise from a request
- :mod:`~lossylearn.privacy.guarantee`: :class:`PrivacyGuarantee`, the statement it gives
"""

from lossylearn.privacy.accounting import (
    DEFAULT_DELTA,
    discrete_gaussian_delta,
    discrete_gaussian_epsilon,
    gaussian_epsilon,
    gaussian_sigma,
    laplace_epsilon,
    paper_epsilon_gaussian,
    zcdp_delta,
    zcdp_epsilon,
)
from lossylearn.privacy.calibration import resolve_noise
from lossylearn.privacy.discrete import (
    gaussian_sigma2_fraction,
    laplace_b_fraction,
    sample_discrete_gaussian,
    sample_discrete_laplace,
)
from lossylearn.privacy.entropy import noise_entropy_bits, noise_pmf, rho
from lossylearn.privacy.guarantee import PrivacyGuarantee
from lossylearn.privacy.mechanisms import NoiseSpec, add_noise, sample_noise
from lossylearn.privacy.source import NoiseSource

__all__ = [
    "DEFAULT_DELTA",
    "NoiseSource",
    "NoiseSpec",
    "PrivacyGuarantee",
    "add_noise",
    "discrete_gaussian_delta",
    "discrete_gaussian_epsilon",
    "gaussian_epsilon",
    "gaussian_sigma",
    "gaussian_sigma2_fraction",
    "laplace_b_fraction",
    "laplace_epsilon",
    "noise_entropy_bits",
    "noise_pmf",
    "paper_epsilon_gaussian",
    "resolve_noise",
    "rho",
    "sample_discrete_gaussian",
    "sample_discrete_laplace",
    "sample_noise",
    "zcdp_delta",
    "zcdp_epsilon",
]
