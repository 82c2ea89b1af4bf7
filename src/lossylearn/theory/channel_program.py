"""Least mutual information over test channels: the problem and the measures it is stated in.

The problem: minimise ``I(X; Y)`` over channels ``W(y|x)`` on finite alphabets subject to

- expected-cost constraints ``E c_k(X, Y) <= b_k`` (distortions),
- total-variation constraints ``TV(M_t q, r_t) <= P_t`` on linear images of the output law
  ``q = p W`` (``M_t`` = identity for one reconstruction, a marginalisation for a tuple),
- conditional-entropy constraints ``H(S | M_u Y) <= C_u`` for labels ``S`` with ``S - X - Y``.

:mod:`~lossylearn.theory.channel_solver` solves it; :mod:`~lossylearn.theory.channel_dual`
certifies the solution of a convex program (one without conditional-entropy constraints).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from lossylearn.theory.info import FloatArray

__all__ = [
    "ChannelProgram",
    "CostConstraint",
    "EntropyConstraint",
    "TVConstraint",
    "conditional_entropy_nats",
    "mutual_information_nats",
    "total_variation_of",
    "violation",
]


@dataclass(frozen=True)
class CostConstraint:
    """``E cost(X, Y) <= bound`` for an (n, m) cost matrix."""

    cost: FloatArray
    bound: float


@dataclass(frozen=True)
class TVConstraint:
    """``TV(mapping @ q, reference) <= bound`` for a (k, m) 0/1 mapping of the output law ``q``."""

    mapping: FloatArray
    reference: FloatArray
    bound: float


@dataclass(frozen=True)
class EntropyConstraint:
    """``H(S | mapping(Y)) <= bound`` (nats) for a label law ``p_s_given_x`` (n, |S|)."""

    p_s_given_x: FloatArray
    mapping: FloatArray
    bound: float


@dataclass(frozen=True)
class ChannelProgram:
    """A least-mutual-information problem over channels from ``p_x`` to ``n_outputs`` symbols."""

    p_x: FloatArray
    n_outputs: int
    costs: Sequence[CostConstraint] = field(default_factory=tuple)
    tvs: Sequence[TVConstraint] = field(default_factory=tuple)
    entropies: Sequence[EntropyConstraint] = field(default_factory=tuple)

    @property
    def convex(self) -> bool:
        """Whether the program is convex (no conditional-entropy constraint)."""
        return not self.entropies


def mutual_information_nats(p: FloatArray, channel: FloatArray) -> float:
    """``I(X;Y)`` in nats for source ``p`` and channel ``W[x, y]``."""
    q = p @ channel
    joint = p[:, None] * channel
    mask = joint > 0
    ratio = channel[mask] / np.broadcast_to(q, channel.shape)[mask]
    return float(max((joint[mask] * np.log(ratio)).sum(), 0.0))


def conditional_entropy_nats(
    p: FloatArray, channel: FloatArray, p_s_given_x: FloatArray, mapping: FloatArray
) -> float:
    """``H(S | mapping(Y))`` in nats for ``S - X - Y``."""
    joint = (p[:, None] * p_s_given_x).T @ channel @ mapping.T
    col = joint.sum(axis=0, keepdims=True)
    mask = joint > 0
    cond = joint[mask] / np.broadcast_to(col, joint.shape)[mask]
    return float(-(joint[mask] * np.log(cond)).sum())


def total_variation_of(q: FloatArray, con: TVConstraint) -> float:
    """``TV(mapping @ q, reference)``."""
    return float(0.5 * np.abs(con.mapping @ q - con.reference).sum())


def violation(program: ChannelProgram, channel: FloatArray) -> float:
    """Largest amount by which ``channel`` breaks a constraint of ``program`` (0 if feasible)."""
    p = program.p_x
    q = p @ channel
    worst = 0.0
    for con in program.costs:
        used = np.where(channel > 0, con.cost, 0.0)
        worst = max(worst, float(p @ (channel * used).sum(axis=1)) - con.bound)
    for tv in program.tvs:
        worst = max(worst, total_variation_of(q, tv) - tv.bound)
    for ent in program.entropies:
        worst = max(
            worst, conditional_entropy_nats(p, channel, ent.p_s_given_x, ent.mapping) - ent.bound
        )
    return max(worst, 0.0)
