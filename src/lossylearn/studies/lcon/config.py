"""Settings of one LCoN study (:class:`StudyConfig`) and its profiles, written as data tables.

A profile is a stack of layers (:data:`PROFILE_LAYERS`): the profile's base grid, then a layer for
the dataset family (``celeba``), for the noise (``laplace``) and for the codec (``learned``) when
they apply; options given by the caller go on top (``None`` = keep the profile's value).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from typing import Any

from lossylearn.errors import LossylearnError
from lossylearn.pipeline.targets import TargetPolicy
from lossylearn.privacy.streams import BLOCK_SIZES, Stream
from lossylearn.studies.lcon.codec_training import CodecTrainingConfig

__all__ = [
    "LAPLACE_PSNRS",
    "MATCH_NOISE",
    "PAPER_PSNRS",
    "PROFILES",
    "PROFILE_LAYERS",
    "StudyConfig",
    "profile_config",
]

#: PSNR grid of the paper's Fig. 2 (dB, noisy images against clean, from the noise variance).
PAPER_PSNRS: tuple[float, ...] = (8.1, 10.1, 11.9, 14.2, 16.1, 18.6, 22.1)
#: PSNR grid of the paper's Fig. 4 (Laplacian noise, learned MAE codec).
LAPLACE_PSNRS: tuple[float, ...] = (8.1, 11.9, 16.1, 18.6, 22.1)
PROFILES: tuple[str, ...] = ("quick", "paper")
#: Target bases a study may match (``given`` is what the Fig. 3 sweep uses off the matched point).
MATCH_NOISE: tuple[str, ...] = ("nominal", "effective")


@dataclass(frozen=True)
class StudyConfig:
    """Every setting of one LCoN study (a profile fills them; options override single fields)."""

    profile: str
    dataset: str = "mnist"
    data_dir: str | None = None
    attribute: str = "Male"
    image_size: int | None = None
    n_train: int | None = None
    n_test: int | None = None
    psnrs: tuple[float, ...] = PAPER_PSNRS
    noise: str = "gaussian"
    codec: str = "jpeg"
    codec_options: dict[str, Any] = field(default_factory=dict)
    codec_fraction: float = 0.2
    """With ``codec="learned"``: the share of the training pool held out to train the codecs (the
    classifiers never see it, as in the paper's section VI-B)."""
    codec_epochs: int = 8
    codec_finetune_epochs: int = 3
    codec_rounds: int = 6
    match_noise: str = "nominal"
    """The basis of the codec target (:class:`lossylearn.pipeline.TargetPolicy`): ``nominal``
    MSE = sigma^2 / MAE = b; ``effective``: the distortion the noise really adds after clipping,
    estimated by ``compress`` from the very noisy images each store holds."""
    calibrate: bool = True
    seeds: tuple[int, ...] = (0,)
    data_seed: int = 0
    model: str = "auto"
    width: int = 64
    epochs: int = 3
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    hflip: bool = False
    equal_steps: bool = True
    fgsm_eps: tuple[float, ...] = (0.05, 0.1, 0.2)
    pgd_eps: tuple[float, ...] = (0.1,)
    pgd_steps: int = 10
    adv_n_test: int | None = None
    distortion_sweep: bool = True
    sweep_variance: float = 1600.0
    sweep_factors: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0)
    adv_psnr: float | None = None
    device: str = "auto"
    threads: int | None = None
    workers: int = 1
    progress: bool = True

    def __post_init__(self) -> None:
        if self.profile not in PROFILES:
            raise LossylearnError(f"unknown profile {self.profile!r}; known: {', '.join(PROFILES)}")
        if not self.psnrs:
            raise LossylearnError("the noise sweep needs at least one PSNR")
        if any(not math.isfinite(p) or p <= 0 for p in self.psnrs):
            raise LossylearnError(f"PSNRs must be positive dB values, got {list(self.psnrs)}")
        if not self.seeds:
            raise LossylearnError("at least one seed is needed")
        if len(set(self.seeds)) != len(self.seeds):
            raise LossylearnError(f"seeds must be distinct, got {list(self.seeds)}")
        if self.noise not in ("gaussian", "laplace"):
            raise LossylearnError(f"unknown noise {self.noise!r}; known: gaussian, laplace")
        for name in ("n_train", "n_test", "adv_n_test"):
            v = getattr(self, name)
            if v is not None and v < 1:
                raise LossylearnError(f"{name.replace('_', '-')} must be >= 1, got {v}")
        if any(e < 0 or e > 1 for e in (*self.fgsm_eps, *self.pgd_eps)):
            raise LossylearnError(
                "attack epsilons are on the [0, 1] pixel scale and must lie in [0, 1]"
            )
        if len(self.fgsm_eps) > BLOCK_SIZES[Stream.STUDY_LCON_ADV]:
            raise LossylearnError(
                f"at most {BLOCK_SIZES[Stream.STUDY_LCON_ADV]} FGSM epsilons (one noise stream each)"
            )
        if self.sweep_variance <= 0 or any(f <= 0 for f in self.sweep_factors):
            raise LossylearnError(
                "the distortion sweep needs a positive variance and positive factors"
            )
        if self.workers < 1:
            raise LossylearnError(f"workers must be >= 1, got {self.workers}")
        if self.match_noise not in MATCH_NOISE:
            raise LossylearnError(
                f"unknown match-noise {self.match_noise!r}; known: {', '.join(MATCH_NOISE)}"
            )
        if self.codec == "learned":
            if "checkpoint" in self.codec_options:
                raise LossylearnError(
                    "the study trains its own learned codec per noise level on a held-out split; "
                    "drop the checkpoint option"
                )
            if not 0.0 < self.codec_fraction < 1.0:
                raise LossylearnError(
                    f"codec-fraction must lie strictly between 0 and 1, got {self.codec_fraction}"
                )
            self.codec_training()  # validates epochs and rounds

    @property
    def target_policy(self) -> TargetPolicy:
        """The one rule for the codec target at every matched point of the study."""
        return TargetPolicy(self.match_noise)

    def codec_training(self) -> CodecTrainingConfig:
        """How the learned codecs of this study are trained."""
        return CodecTrainingConfig(
            epochs=self.codec_epochs, finetune_epochs=self.codec_finetune_epochs,
            rounds=self.codec_rounds, seed=self.data_seed, device=self.device, progress=self.progress,
        )  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    def identity(self) -> dict[str, Any]:
        """The settings that decide the results (not how fast or verbosely they are computed)."""
        d = self.to_dict()
        for k in ("device", "threads", "workers", "progress"):
            d.pop(k)
        return json.loads(json.dumps(d))


#: (profile, layer) -> settings. ``base`` always applies; ``celeba`` for CelebA, ``laplace`` for
#: Laplacian noise, ``learned`` for the learned codec (missing pairs add nothing).
PROFILE_LAYERS: dict[tuple[str, str], dict[str, Any]] = {
    ("quick", "base"): dict(
        n_train=1000, n_test=500, psnrs=(10.1, 16.1, 22.1), seeds=(0,), epochs=5, batch_size=32,
        fgsm_eps=(0.05, 0.1, 0.2), pgd_eps=(0.1,), pgd_steps=5, adv_n_test=250,
        sweep_factors=(0.25, 1.0, 4.0), threads=1,
    ),
    ("paper", "base"): dict(
        n_train=None, n_test=None, psnrs=PAPER_PSNRS, seeds=(0, 1, 2), epochs=10, batch_size=64,
        fgsm_eps=(0.05, 0.1, 0.15, 0.2, 0.25, 0.3), pgd_eps=(0.1,), pgd_steps=10,
        sweep_factors=(0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0),
    ),
    # Faces: ResNet, flips, and perturbations on the scale used for natural images (k/255).
    ("quick", "celeba"): dict(
        model="resnet18", width=16, image_size=32, hflip=True, batch_size=64, epochs=2,
        fgsm_eps=(1 / 255, 2 / 255, 4 / 255), pgd_eps=(2 / 255,),
    ),
    ("paper", "celeba"): dict(
        model="resnet34", width=64, image_size=64, hflip=True, batch_size=128, epochs=10,
        fgsm_eps=(1 / 255, 2 / 255, 4 / 255, 8 / 255), pgd_eps=(2 / 255,),
    ),
    ("paper", "laplace"): dict(psnrs=LAPLACE_PSNRS),
    # Fig. 4 has no distortion sweep, and with a learned codec every target costs a training; the
    # quick profile trains the codecs briefly with a loose target search.
    ("quick", "learned"): dict(
        distortion_sweep=False, codec_epochs=3, codec_finetune_epochs=1, codec_rounds=3
    ),
    ("paper", "learned"): dict(distortion_sweep=False),
}  # fmt: skip

_TUPLES = ("psnrs", "seeds", "fgsm_eps", "pgd_eps", "sweep_factors")


def profile_config(
    profile: str = "quick", *, dataset: str = "mnist", **overrides: Any
) -> StudyConfig:
    """The configuration of a named profile for ``dataset``, with ``overrides`` (``None`` = keep).

    * ``quick``: CI-sized (1,000 training / 500 test images, PSNR 10.1, 16.1, 22.1 dB, one seed,
      5 epochs of batch 32; Fig. 3 at 0.25x, 1x, 4x the matched distortion).
    * ``paper``: the paper's PSNR grid, 3 seeds, all training and test images, 10 epochs,
      FGSM epsilons 0.05..0.3 (MNIST) and a 7-point Fig. 3 sweep.

    With ``noise="laplace"`` the paper profile uses Fig. 4's PSNRs; with ``codec="learned"`` the
    distortion sweep is off unless asked for (each target trains a codec), and the quick profile
    trains the codecs briefly (3 + 1 epochs, at most 3 lambdas).

    For ``celeba`` the models are ResNets (ResNet-34 at 64x64 for ``paper``, a narrow ResNet-18 at
    32x32 for ``quick``) trained with horizontal flips and attacked with epsilons of k/255.
    """
    if profile not in PROFILES:
        raise LossylearnError(f"unknown profile {profile!r}; known: {', '.join(PROFILES)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    layers = ["base"]
    if dataset.strip().lower() == "celeba":
        layers.append("celeba")
    if given.get("noise") == "laplace":
        layers.append("laplace")
    if given.get("codec") == "learned":
        layers.append("learned")
    settings: dict[str, Any] = {}
    for layer in layers:
        settings.update(PROFILE_LAYERS.get((profile, layer), {}))
    settings.update(given)
    for k in _TUPLES:
        if k in settings:
            settings[k] = tuple(settings[k])
    return StudyConfig(profile=profile, dataset=dataset, **settings)
