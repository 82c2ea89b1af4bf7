"""Learned-codec workflows on a dataset: load a split, optionally noise it, train or evaluate.

``lossylearn codec train`` and ``codec eval`` (:mod:`lossylearn.cli.codec`) only parse options and
call :func:`train_from_dataset` and :func:`evaluate_checkpoint`, which tests call directly. They
live here, not in :mod:`lossylearn.codecs`, because they load datasets (:mod:`lossylearn.data`)
and add noise (:mod:`lossylearn.privacy`): composing data -> noise -> codec is this package's job,
and the codecs stay free of both.

Both run on ``threads`` torch CPU threads, default :data:`DEFAULT_THREADS` (1, chosen by
measurement: see :mod:`lossylearn.codecs.learned.train` and ``benchmarks/codec_speed.py``); the
count is recorded in the checkpoint (each rung's ``info.train.threads``) and in the notes of
``results.json``. Importing this module does not load torch.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lossylearn.data import load_dataset
from lossylearn.errors import CodecError, LossylearnError
from lossylearn.pipeline.targets import TargetPolicy
from lossylearn.privacy import NoiseSource, add_noise, resolve_noise
from lossylearn.privacy.mechanisms import NoiseSpec, matched_metric
from lossylearn.privacy.streams import Stream

if TYPE_CHECKING:  # torch-heavy modules load only when a workflow runs
    from lossylearn.codecs.learned.evaluate import EvalResult

__all__ = [
    "DEFAULT_THREADS",
    "TrainSummary",
    "evaluate_checkpoint",
    "train_from_dataset",
]

DEFAULT_THREADS = 1
"""Default torch CPU threads of both workflows and of ``codec train`` / ``codec eval``
(= ``lossylearn.codecs.learned.train.DEFAULT_THREADS``)."""


@dataclass
class TrainSummary:
    """What :func:`train_from_dataset` did."""

    checkpoint: Path
    rungs: list[dict[str, Any]]
    seconds: float
    message: str
    threads: int | None = None
    """torch CPU threads used for training."""


def _select(images: np.ndarray, limit: int | None) -> np.ndarray:
    if limit is not None:
        if limit < 1:
            raise LossylearnError(f"--limit must be at least 1, got {limit}")
        images = images[:limit]
    return np.ascontiguousarray(images)


def _split_images(dataset: str, data_dir: Path | None, split: str) -> tuple[np.ndarray, str]:
    ds = load_dataset(dataset, data_dir)
    if split not in ("train", "test"):
        raise LossylearnError(f"--split must be train or test, got {split!r}")
    return (ds.train_images if split == "train" else ds.test_images), ds.source


def _noisy(
    images: np.ndarray, noise: str, scale: float | None, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    if scale is None:
        raise LossylearnError(f"--noise {noise} needs --noise-scale (sigma or b, 0-255 units)")
    strength = {"sigma": scale} if noise == "gaussian" else {"b": scale}
    spec, _ = resolve_noise(
        kind=noise, image_shape=tuple(int(v) for v in images.shape[1:]), seeded=True, **strength
    )
    noisy = add_noise(images, spec, NoiseSource.create(seed, Stream.LEARNED_CODEC_TRAIN))
    return noisy, {
        "kind": noise,
        "scale": float(scale),
        "seed": seed,
        "stream": int(Stream.LEARNED_CODEC_TRAIN),
    }


RECIPE_EPOCHS = {"joint": 20, "separate": 10}
"""Default epochs of each recipe. Joint, 20 passes per lambda: the issue-15 MNIST ladder (lambdas
0.002-0.06) trains in about 5 CPU minutes to BD-rate -48.9% against JPEG and -24.2% against WebP
on 2000 official test digits (10 passes: -45.2% / -19.2%)."""
RECIPE_LEARNING_RATES = {"joint": 2e-3, "separate": 1e-3}
"""Default Adam learning rate of each recipe."""


def train_from_dataset(
    *,
    dataset: str,
    out: Path,
    data_dir: Path | None = None,
    split: str = "train",
    limit: int | None = None,
    distortion: str | None = None,
    lmbdas: list[float] | None = None,
    target: float | None = None,
    noise: str = "none",
    noise_scale: float | None = None,
    architecture: str = "factorized",
    preset: str | None = None,
    epochs: int | None = None,
    finetune_epochs: int | None = None,
    batch_size: int = 16,
    lr: float | None = None,
    seed: int = 0,
    device: str = "auto",
    tolerance: float = 0.05,
    max_rounds: int = 6,
    validation_fraction: float = 0.1,
    max_steps: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
    threads: int | None = DEFAULT_THREADS,
    recipe: str = "joint",
) -> TrainSummary:
    """Load a dataset split, optionally add noise, train a checkpoint and save it to ``out``.

    With ``noise`` and neither ``lmbdas`` nor ``target``, the target is the noise's own distortion
    (MSE = sigma^2 for Gaussian, MAE = b for Laplace) and ``distortion`` defaults to match it.
    Training runs on ``threads`` torch CPU threads (``None``: leave torch's setting alone).
    A ladder is trained by ``recipe`` (``joint``: one variable-rate network; ``separate``: a model
    per lambda; see :func:`lossylearn.codecs.learned.fitting.train_codec`). ``epochs`` and ``lr``
    default to the recipe's (:data:`RECIPE_EPOCHS`, :data:`RECIPE_LEARNING_RATES`).
    """
    from lossylearn.codecs.learned.checkpoint import save_checkpoint
    from lossylearn.codecs.learned.fitting import train_codec
    from lossylearn.codecs.learned.models import preset_config
    from lossylearn.codecs.learned.train import CodecTrainConfig

    start = time.perf_counter()
    if noise not in ("none", "gaussian", "laplace"):
        raise LossylearnError(f"unknown noise {noise!r}; known: none, gaussian, laplace")
    if distortion is None:
        distortion = "mse" if noise == "none" else matched_metric(noise)
    if noise != "none" and not lmbdas and target is None:
        if noise_scale is None:
            raise LossylearnError(f"--noise {noise} needs --noise-scale (sigma or b, 0-255 units)")
        own, value = TargetPolicy("nominal").target(NoiseSpec(kind=noise, scale=noise_scale))
        if distortion != own:
            raise LossylearnError(
                f"{noise} noise is matched by {own.upper()} (not {distortion.upper()}); "
                "give --target-distortion or --lmbda to train for another distortion"
            )
        target = value
    if (target is None) == (not lmbdas):
        raise LossylearnError("give either --lmbda (one or more) or --target-distortion")
    images, source = _split_images(dataset, data_dir, split)
    images = _select(images, limit)
    meta: dict[str, Any] = {
        "dataset": dataset,
        "split": split,
        "images": int(len(images)),
        "source": source,
    }
    if noise != "none":
        images, meta["noise"] = _noisy(images, noise, noise_scale, seed)
    if preset is None:
        preset = "mnist" if images.shape[3] == 1 else "rgb64"
    model_config = preset_config(preset, architecture)
    meta["preset"] = preset
    if recipe not in RECIPE_EPOCHS:
        raise LossylearnError(f"unknown recipe {recipe!r}; known: {', '.join(RECIPE_EPOCHS)}")
    config = CodecTrainConfig(
        distortion=distortion,
        epochs=RECIPE_EPOCHS[recipe] if epochs is None else epochs,
        lr=RECIPE_LEARNING_RATES[recipe] if lr is None else lr,
        batch_size=batch_size, seed=seed,
        device=device, max_steps=max_steps, progress=progress, threads=threads,
    )  # fmt: skip
    if out.exists() and (out / "config.json").exists() and not overwrite:
        raise CodecError(
            f"{out} already holds a codec checkpoint; choose another --out or --overwrite"
        )
    ck, fit = train_codec(
        images, model_config=model_config, config=config, lmbdas=lmbdas, target=target,
        validation_fraction=validation_fraction, tolerance=tolerance, max_rounds=max_rounds,
        finetune_epochs=finetune_epochs, meta=meta, recipe=recipe,
    )  # fmt: skip
    path = save_checkpoint(ck, out, overwrite=overwrite)
    rungs = [
        {
            "quality": i,
            "lmbda": r.lmbda,
            "epochs": r.info["train"]["epochs_run"],
            "seconds": round(r.info["train"]["seconds"], 1),
            "train_bpp": r.info["history"][-1]["bpp"] if r.info["history"] else None,
            f"train_{distortion}": r.info["history"][-1][distortion] if r.info["history"] else None,
            **(
                {f"heldout_{distortion}": r.info["validation"][distortion]}
                if "validation" in r.info
                else {}
            ),
        }
        for i, r in enumerate(ck.rungs)
    ]
    message = fit.message if fit is not None else f"trained {len(ck.rungs)} model(s)"
    used = ck.rungs[0].info.get("train", {}).get("threads")
    return TrainSummary(path, rungs, time.perf_counter() - start, message, used)


def evaluate_checkpoint(
    *,
    checkpoint: Path,
    dataset: str,
    out: Path,
    data_dir: Path | None = None,
    split: str = "test",
    limit: int | None = None,
    baselines: tuple[str, ...] = ("jpeg", "webp", "avif"),
    baseline_qualities: tuple[int, ...] | None = None,
    threads: int | None = DEFAULT_THREADS,
) -> EvalResult:
    """Evaluate a checkpoint against baselines on a dataset split; writes results.json and rd.png.

    Runs on ``threads`` torch CPU threads (``None``: leave torch's setting alone); the count is
    recorded in the result's notes.
    """
    import torch

    from lossylearn.codecs.learned.codec import LearnedCodec
    from lossylearn.codecs.learned.evaluate import (
        DEFAULT_BASELINE_QUALITIES,
        evaluate,
        write_evaluation,
    )
    from lossylearn.codecs.learned.train import torch_threads

    with torch_threads(threads):
        codec = LearnedCodec(checkpoint)
        images, _ = _split_images(dataset, data_dir, split)
        images = _select(images, limit)
        result = evaluate(
            codec, images, baselines=baselines,
            baseline_qualities=baseline_qualities or DEFAULT_BASELINE_QUALITIES,
            dataset=f"{dataset} ({split})",
        )  # fmt: skip
        result.notes.append(f"torch threads: {torch.get_num_threads()}")
    write_evaluation(result, out)
    return result
