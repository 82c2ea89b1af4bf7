"""k-ary randomized response on labels, and its composition with the image mechanism.

With ``k`` classes and ``epsilon_L``, each label is kept with probability
``p = e^eps / (e^eps + k - 1)`` and otherwise replaced by one of the other ``k - 1`` labels, chosen
uniformly: every output has probability ratio at most ``e^eps`` between any two inputs, so the
release is (epsilon_L, 0)-DP per label (Warner 1965; Kairouz, Oh & Viswanath 2014). A record
(image, label) released by the image mechanism (eps_I, delta) and this one is, by basic
composition, (eps_I + eps_L, delta)-DP per record.

The coins come from :class:`lossylearn.privacy.source.NoiseSource` (CSPRNG without a seed): the
keep decision compares a uniform (0, 1) float of 52 random bits with ``p``; the replacement is an
exact uniform integer below ``k - 1``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from lossylearn.errors import PrivacyError
from lossylearn.privacy.source import NoiseSource

__all__ = ["keep_probability", "randomized_response", "record_guarantee", "rr_transition"]


def _check(epsilon: float, k: int) -> None:
    if not (epsilon > 0 and math.isfinite(epsilon)):
        raise PrivacyError(f"--label-epsilon must be a positive finite number, got {epsilon}")
    if k < 2:
        raise PrivacyError(f"randomized response needs at least 2 classes, got {k}")


def keep_probability(epsilon: float, k: int) -> float:
    """Probability that k-ary randomized response keeps the true label."""
    _check(epsilon, k)
    return 1.0 / (1.0 + (k - 1) * math.exp(-epsilon))


def rr_transition(epsilon: float, k: int) -> np.ndarray:
    """The (k, k) matrix ``T[true, released]`` of randomized response."""
    p = keep_probability(epsilon, k)
    t = np.full((k, k), (1.0 - p) / (k - 1))
    np.fill_diagonal(t, p)
    return t


def randomized_response(
    labels: np.ndarray, k: int, epsilon: float, source: NoiseSource
) -> np.ndarray:
    """Released labels (int64) of k-ary randomized response."""
    _check(epsilon, k)
    y = np.asarray(labels, dtype=np.int64)
    if y.ndim != 1 or (y.size and (y.min() < 0 or y.max() >= k)):
        raise PrivacyError(f"labels must be a 1-D array of classes 0..{k - 1}")
    keep = source.uniform_open(y.size) < keep_probability(epsilon, k)
    other = source.below(k - 1, size=y.size).astype(np.int64)
    other = other + (other >= y)  # uniform over the k - 1 labels that are not the true one
    return np.where(keep, y, other)


def record_guarantee(image: dict[str, Any], label_epsilon: float | None, k: int) -> dict[str, Any]:
    """The ``labels`` and ``per_record`` part of a store's privacy statement.

    Labels in the clear: no per-record guarantee, said in words. Labels through randomized
    response: the basic composition of the image guarantee and the label's.
    """
    if label_epsilon is None:
        return {
            "labels": {"mechanism": "none: labels are stored in the clear"},
            "per_record": None,
            "per_record_statement": (
                "No per-record guarantee: the labels are stored in the clear, so the guarantee "
                "covers the image only. Use --label-epsilon for a record guarantee."
            ),
        }
    eps = float(image["epsilon"]) + float(label_epsilon)
    return {
        "labels": {
            "mechanism": f"{k}-ary randomized response (pure DP)",
            "epsilon": float(label_epsilon),
            "delta": 0.0,
            "keep_probability": keep_probability(label_epsilon, k),
            "classes": k,
        },
        "per_record": {
            "epsilon": eps,
            "delta": float(image["delta"]),
            "unit": "record (image and its label)",
            "composition": "basic composition: epsilon_image + epsilon_label, delta_image",
        },
        "per_record_statement": (
            f"({eps:.4g}, {float(image['delta']):.3g})-DP per record (image and label): the image "
            f"mechanism's ({float(image['epsilon']):.4g}, {float(image['delta']):.3g}) composed "
            f"with {k}-ary randomized response at epsilon {float(label_epsilon):.4g}."
        ),
    }
