"""Rate functions and the LCoN theorem on finite alphabets (numpy/scipy).

- ``rd``: ``R(D)`` with certified bounds, the slope search for a target ``D``, curves; its
  Lagrangian is minimised in ``lagrangian`` (mix-SQP by default, Blahut-Arimoto steps on request).
- ``constrained``: ``R(D, P)`` (total-variation perception) and ``R(D, C)`` (label constraint).
- ``closed_forms``: Gaussian and binary closed forms used as oracles.
- ``universal``: ``R(Theta)`` and the rate penalty ``A(Theta)`` of one representation for many targets.
- ``sources`` / ``lcon``: stationary sources, mod-Q noise, and checks of the LCoN theorem,
  Corollary V.1, the storage rate (13) and the leakage bound (16).

Rates of finite sources are in bits; Gaussian closed forms are in nats.
"""

from __future__ import annotations

from lossylearn.theory.closed_forms import (
    binary_rd,
    binary_rdc,
    binary_rdp,
    gaussian_rd,
    gaussian_rdc,
    gaussian_rdp,
    gaussian_rdp_distortion,
    gaussian_universal_rdp,
)
from lossylearn.theory.constrained import (
    ConstrainedPoint,
    least_distortion_under_perception,
    rate_distortion_classification,
    rate_distortion_perception,
    solve_rate_distortion_classification,
    solve_rate_distortion_perception,
)
from lossylearn.theory.lcon import (
    CorollaryRow,
    LConRow,
    corollary_check,
    lcon_check,
    leakage_ceiling,
    privacy_leakage_bound,
    storage_rate,
)
from lossylearn.theory.rd import (
    RDCurve,
    RDPoint,
    distortion_range,
    rate_distortion,
    rate_distortion_at_slope,
    rate_distortion_curve,
    solve_rate_distortion,
)
from lossylearn.theory.sources import (
    FiniteSource,
    iid_source,
    markov_source,
    noise_distortion,
    random_source,
    symmetric_noise,
    wrapped_laplace_noise,
)
from lossylearn.theory.universal import UniversalResult, rate_penalty, universal_rdc, universal_rdp

__all__ = [
    "ConstrainedPoint",
    "CorollaryRow",
    "FiniteSource",
    "LConRow",
    "RDCurve",
    "RDPoint",
    "UniversalResult",
    "binary_rd",
    "binary_rdc",
    "binary_rdp",
    "corollary_check",
    "distortion_range",
    "gaussian_rd",
    "gaussian_rdc",
    "gaussian_rdp",
    "gaussian_rdp_distortion",
    "gaussian_universal_rdp",
    "iid_source",
    "lcon_check",
    "leakage_ceiling",
    "least_distortion_under_perception",
    "markov_source",
    "noise_distortion",
    "privacy_leakage_bound",
    "random_source",
    "rate_distortion",
    "rate_distortion_at_slope",
    "rate_distortion_classification",
    "rate_distortion_curve",
    "rate_distortion_perception",
    "rate_penalty",
    "solve_rate_distortion",
    "solve_rate_distortion_classification",
    "solve_rate_distortion_perception",
    "storage_rate",
    "symmetric_noise",
    "universal_rdc",
    "universal_rdp",
    "wrapped_laplace_noise",
]
