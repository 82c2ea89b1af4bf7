"""Profiles of ``study private``: the epsilon grid, methods, label modes, seeds and budgets."""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from lossylearn.errors import LossylearnError
from lossylearn.records import Record
from lossylearn.universal.train import PROFILES as TRAIN_PROFILES
from lossylearn.universal.train import TrainProfile

__all__ = ["METHODS", "PROFILES", "StudyProfile", "get_profile"]

METHODS = ("latent-lcon", "latent-noisy", "pixel-lcon")


@dataclass(frozen=True)
class StudyProfile(Record):
    """One study run (``math.inf`` in ``epsilons`` is the no-noise point)."""

    name: str
    epsilons: tuple[float, ...]
    methods: tuple[str, ...]
    seeds: tuple[int, ...]
    decoders: tuple[str, ...]
    """Decoders the latent methods are read through (``robust`` is trained and added for it)."""
    label_share: float
    """With randomized-response labels, the share of the total epsilon spent on the label."""
    rr_epsilons: tuple[float, ...]
    """Total per-record epsilons at which the randomized-response rows are run."""
    clip_quantile: str
    """The clip norm C: this quantile of the public latents' norms (``q50`` = median)."""
    classifier_epochs: int
    train: TrainProfile
    classifiers: tuple[str, ...] = ("image", "latent")
    image_seeds: int | None = None
    """The LeNet-on-decoded-records rows of the latent methods run for the first N seeds only
    (None: all); pixel-lcon, whose only learner is LeNet, runs for every seed."""
    """``image``: LeNet on decoded records; ``latent``: nearest class mean of the stored latents."""
    delta: float = 1e-5
    test_limit: int | None = None
    private_limit: int | None = None
    """Use only the first N private digits (tests); None: all of them."""
    robust_epsilon: float = 8.0
    robust_epochs: int = 8
    """Only used when ``decoders`` names ``robust`` (then trained and added to the checkpoint)."""

    def __post_init__(self) -> None:
        unknown = [m for m in self.methods if m not in METHODS]
        if unknown:
            raise LossylearnError(f"unknown methods {unknown}; known: {', '.join(METHODS)}")
        if not 0 < self.label_share < 1:
            raise LossylearnError(f"label_share must lie in (0, 1), got {self.label_share}")
        if any(not e > 0 for e in self.epsilons):
            raise LossylearnError("epsilons must be positive (inf for no noise)")

    def to_dict(self) -> dict[str, object]:
        """JSON form (inf written as null)."""
        d = super().to_dict()
        d["epsilons"] = [None if math.isinf(e) else e for e in self.epsilons]
        return d


PROFILES: dict[str, StudyProfile] = {
    "quick": StudyProfile(
        "quick", epsilons=(4.0, 16.0, math.inf), methods=METHODS, seeds=(0,), decoders=("mse",),
        label_share=0.5, rr_epsilons=(16.0,), clip_quantile="q50", classifier_epochs=2,
        train=replace(TRAIN_PROFILES["quick"], epochs=6, classifier_epochs=2), test_limit=2000,
    ),
    "paper": StudyProfile(
        "paper", epsilons=(1.0, 2.0, 4.0, 8.0, 16.0, 32.0, math.inf), methods=METHODS,
        seeds=(0, 1, 2), decoders=("mse",), label_share=0.5,
        rr_epsilons=(1.0, 2.0, 4.0, 8.0, 16.0, 32.0), clip_quantile="q50", classifier_epochs=3,
        train=replace(TRAIN_PROFILES["paper"], w1_epochs=0), image_seeds=1,
    ),
}  # fmt: skip


def get_profile(name: str) -> StudyProfile:
    """The named profile, or a one-line error."""
    if name not in PROFILES:
        raise LossylearnError(f"unknown profile {name!r}; choose one of {', '.join(PROFILES)}")
    return PROFILES[name]
