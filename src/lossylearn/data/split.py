"""Deterministic stratified splitting and capping of index sets."""

from __future__ import annotations

import numpy as np

from lossylearn.errors import LossylearnError

__all__ = ["stratified_split", "check_limit", "cap"]


def stratified_split(
    labels: np.ndarray, test_fraction: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray]:
    """Split indices of ``labels`` into (train, test), stratified by class, in shuffled order.

    Each class with ``n`` members puts ``n * test_fraction`` (rounded half up) of them in test, clipped to
    ``[1, n - 1]`` when ``n >= 2`` (a single-member class goes to train). Which members go to test
    and the order of each side are drawn from ``rng``, so the first ``k`` of either side are a
    uniformly random subset of it (class-mixed).
    """
    if not 0.0 < test_fraction < 1.0:
        raise LossylearnError(f"test_fraction must be in (0, 1), got {test_fraction}")
    labels = np.asarray(labels)
    perm = rng.permutation(labels.shape[0])
    classes, counts = np.unique(labels, return_counts=True)
    quota = {}
    for c, n in zip(classes.tolist(), counts.tolist(), strict=True):
        k = int(np.floor(n * test_fraction + 0.5))  # round half up
        quota[c] = min(max(k, 1), n - 1) if n >= 2 else 0
    is_test = np.zeros(perm.shape[0], dtype=bool)
    for pos, idx in enumerate(perm):
        c = labels[idx].item()
        if quota[c] > 0:
            is_test[pos] = True
            quota[c] -= 1
    train, test = perm[~is_test], perm[is_test]
    # Re-shuffle each side: in ``perm`` order, the first train entries would over-represent the
    # classes whose test quota happened to fill first.
    return train[rng.permutation(train.shape[0])], test[rng.permutation(test.shape[0])]


def check_limit(limit: int | None) -> int | None:
    """Validate a per-split cap: ``None`` (no cap) or a positive int."""
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int | np.integer) or limit < 1:
        raise LossylearnError(f"limit must be a positive integer or None, got {limit!r}")
    return int(limit)


def cap(indices: np.ndarray, limit: int | None) -> np.ndarray:
    """The first ``limit`` entries of ``indices`` (all of them when ``limit`` is None)."""
    return indices if limit is None else indices[:limit]
