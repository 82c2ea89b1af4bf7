"""Settings of the privacy study (:class:`PrivacyConfig`) and its two profiles."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, replace
from typing import Any

from lossylearn.errors import LossylearnError
from lossylearn.studies.lcon.config import LAPLACE_PSNRS, PAPER_PSNRS

__all__ = ["PROFILES", "PrivacyConfig", "VARIANTS", "Variant", "privacy_config"]

PROFILES: tuple[str, ...] = ("quick", "paper")


@dataclass(frozen=True)
class Variant:
    """One family of LCoN stores: a noise, a codec and the target's basis."""

    name: str
    noise: str
    codec: str
    match_noise: str


VARIANTS: dict[str, Variant] = {
    v.name: v
    for v in (
        Variant("jpeg-nominal", "gaussian", "jpeg", "nominal"),
        Variant("jpeg-effective", "gaussian", "jpeg", "effective"),
        Variant("learned-nominal", "laplace", "learned", "nominal"),
        Variant("learned-effective", "laplace", "learned", "effective"),
    )
}


@dataclass(frozen=True)
class PrivacyConfig:
    """Every setting of one privacy study. The LCoN runs it makes take the LCoN study's profile of
    the same name, with the settings below on top (no Fig. 3 sweep; one light FGSM point)."""

    profile: str
    variants: tuple[str, ...] = ("jpeg-nominal",)
    psnrs: tuple[float, ...] | None = None
    """Gaussian PSNR grid (None: the LCoN profile's); Laplace variants use Fig. 4's grid."""
    data_dir: str | None = None
    n_train: int | None = None
    n_test: int | None = None
    seeds: tuple[int, ...] = (0,)
    epochs: int | None = None
    pool: int | None = 2000
    """Candidates per audit (the store's sources plus distractors); None: every image there is."""
    queries: int | None = None
    membership_psnrs: tuple[float, ...] = (10.1, 22.1)
    membership_epochs: int = 10
    membership_n: int = 500
    feature_epochs: int = 2
    adv_n_test: int = 100
    threads: int = 1
    workers: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise LossylearnError(f"unknown profile {self.profile!r}; known: {', '.join(PROFILES)}")
        unknown = [v for v in self.variants if v not in VARIANTS]
        if unknown or not self.variants:
            raise LossylearnError(f"unknown variant {unknown}; known: {', '.join(VARIANTS)}")
        if self.pool is not None and self.pool < 2:
            raise LossylearnError(f"--pool must be >= 2, got {self.pool}")

    def to_dict(self) -> dict[str, Any]:
        return json.loads(json.dumps(asdict(self)))

    def grid(self, variant: Variant) -> tuple[float, ...]:
        """The PSNRs of ``variant``'s stores."""
        if variant.noise == "laplace" and self.profile == "paper" and self.psnrs is None:
            return LAPLACE_PSNRS
        if self.psnrs is not None:
            return self.psnrs
        return PAPER_PSNRS if self.profile == "paper" else (10.1, 16.1, 22.1)

    def lcon_config(self, variant: Variant) -> Any:
        """The LCoN study configuration of ``variant``'s run."""
        from lossylearn.studies.lcon import profile_config

        return profile_config(
            self.profile, dataset="mnist", data_dir=self.data_dir, psnrs=self.grid(variant),
            noise=variant.noise, codec=variant.codec, match_noise=variant.match_noise,
            seeds=self.seeds, epochs=self.epochs, n_train=self.n_train, n_test=self.n_test,
            distortion_sweep=False, fgsm_eps=(0.1,), pgd_eps=(0.1,), pgd_steps=3,
            adv_n_test=self.adv_n_test, threads=self.threads, workers=self.workers,
            progress=self.progress,
        )  # fmt: skip


_PROFILES: dict[str, dict[str, Any]] = {
    # embedded MNIST: LCoN quick (1,000 training digits), 3 PSNRs, pool of 2,000
    "quick": dict(variants=("jpeg-nominal",), pool=2000, membership_epochs=10, membership_n=500,
                  feature_epochs=2, adv_n_test=100),
    # the paper's grid on 5,000 training digits (+ the official test set with --data-dir):
    # JPEG at both targets and the learned codec under Laplace noise; every image in the pool
    "paper": dict(variants=("jpeg-nominal", "jpeg-effective", "learned-nominal"), pool=None,
                  membership_psnrs=(8.1, 22.1), membership_epochs=15, membership_n=1000,
                  feature_epochs=3, adv_n_test=500),
}  # fmt: skip


def privacy_config(profile: str = "quick", **overrides: Any) -> PrivacyConfig:
    """The profile's configuration with ``overrides`` (None = keep the profile's value)."""
    if profile not in PROFILES:
        raise LossylearnError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    base = PrivacyConfig(profile=profile, **_PROFILES[profile])
    given = {
        k: (tuple(v) if isinstance(v, list) else v) for k, v in overrides.items() if v is not None
    }
    return replace(base, **given)
