"""The LCoN study's learned codec: one checkpoint per noise level, trained on a held-out split.

The paper's section VI-B pairs Laplacian noise with a neural compressor trained for MAE on a part of
the data that the classifiers never see. :func:`matched_checkpoint` does that for one setting: it
noises the codec split (its own noise stream), searches the rate-distortion lambda until the
held-out distortion to the noisy images equals the matched one (MSE = sigma^2 or MAE = b, or a
multiple of it for Fig. 3), and saves the model as a checkpoint folder. A checkpoint already in
place for the same target and training settings is reused, so an interrupted study resumes.
"""

from __future__ import annotations

import math
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lossylearn.errors import CodecError, LossylearnError

__all__ = ["CodecTrainingConfig", "matched_checkpoint"]


@dataclass(frozen=True)
class CodecTrainingConfig:
    """How the study trains its learned codecs (``lossylearn codec train`` exposes the same knobs)."""

    epochs: int = 8
    """Epochs of the first model of a target search."""
    finetune_epochs: int = 3
    """Epochs of every later round, warm-started from the nearest lambda tried."""
    rounds: int = 6
    """Most lambdas tried per target."""
    tolerance: float = 0.05
    """Relative distance to the target that ends the search."""
    seed: int = 0
    device: str = "auto"
    progress: bool = True

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.finetune_epochs < 1 or self.rounds < 1:
            raise LossylearnError("codec epochs, finetune epochs and rounds must be at least 1")
        if not 0.0 < self.tolerance < 1.0:
            raise LossylearnError(f"codec tolerance must lie in (0, 1), got {self.tolerance}")

    def identity(self) -> dict[str, Any]:
        """The settings that decide the trained weights."""
        d = asdict(self)
        d.pop("progress")
        d.pop("device")
        return d


def _reusable(path: Path, metric: str, target: float, settings: dict[str, Any]) -> bool:
    from lossylearn.codecs.learned.checkpoint import read_config

    try:
        meta = read_config(path).get("meta", {})
    except CodecError:
        return False
    tgt = meta.get("target", {})
    return (
        tgt.get("distortion") == metric
        and math.isclose(float(tgt.get("value", float("nan"))), target, rel_tol=1e-9)
        and meta.get("study_codec_training") == settings
    )


def matched_checkpoint(
    noisy: np.ndarray,
    *,
    metric: str,
    target: float,
    path: Path,
    config: CodecTrainingConfig,
    meta: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Train (or reuse) a checkpoint at ``path`` whose ``metric`` to ``noisy`` is ``target``.

    ``noisy`` are the noisy uint8 images of the codec split (never the classifiers' images).
    Returns a record for results.json: the lambda found, the held-out distortion, whether the
    target was met within the tolerance, every round's (lambda, distortion, estimated bpp), the
    number of training images and the seconds spent (0 when reused).
    """
    from lossylearn.codecs.learned.checkpoint import read_config, save_checkpoint
    from lossylearn.codecs.learned.fitting import train_codec
    from lossylearn.codecs.learned.train import CodecTrainConfig as TrainConfig

    settings = config.identity()
    started = time.perf_counter()
    reused = _reusable(path, metric, target, settings)
    if not reused:
        shutil.rmtree(path, ignore_errors=True)
        ck, _ = train_codec(
            noisy,
            config=TrainConfig(
                distortion=metric, epochs=config.epochs, seed=config.seed,
                device=config.device, progress=config.progress,
            ),
            target=float(target),
            tolerance=config.tolerance,
            max_rounds=config.rounds,
            finetune_epochs=config.finetune_epochs,
            meta={**(meta or {}), "study_codec_training": settings},
        )  # fmt: skip
        save_checkpoint(ck, path, overwrite=True)
    tgt = read_config(path)["meta"]["target"]
    best = min(tgt["trace"], key=lambda r: abs(r[metric] - target), default={})
    return {
        "path": str(path),
        "metric": metric,
        "target": float(target),
        "lmbda": float(tgt["lmbda"]),
        "held_out_distortion": float(best.get(metric, float("nan"))),
        "held_out_bpp_estimated": float(best.get("bpp_estimated", float("nan"))),
        "reached": bool(tgt["reached"]),
        "message": str(tgt["message"]),
        "rounds": tgt["trace"],
        "train_images": int(len(noisy)) - int(tgt["validation_images"]),
        "validation_images": int(tgt["validation_images"]),
        "reused": reused,
        "seconds": 0.0 if reused else round(time.perf_counter() - started, 2),
    }
