"""``lossylearn codec train`` and ``lossylearn codec eval`` (mounted by the main CLI as ``codec``).

The commands only parse options; :func:`train_from_dataset` and :func:`evaluate_checkpoint` do the
work and are what tests call.

Both run on ``--threads`` torch CPU threads, default :data:`DEFAULT_THREADS` (1, chosen by
measurement: see :mod:`lossylearn.codecs.learned.train` and ``benchmarks/codec_speed.py``); the
count is printed, recorded in the checkpoint (each rung's ``info.train.threads``) and in
the notes of ``results.json``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import numpy as np
import typer

from lossylearn.errors import CodecError, LossylearnError

if TYPE_CHECKING:  # torch-heavy modules load only when a command runs
    from lossylearn.codecs.learned.evaluate import EvalResult

__all__ = ["app", "evaluate_checkpoint", "train_from_dataset", "TrainSummary"]

DEFAULT_THREADS = 1
"""Default ``--threads`` of ``codec train`` and ``codec eval`` (= ``train.DEFAULT_THREADS``)."""

NOISE_STREAM = 7001
"""NoiseSource stream used for the noisy copies that codecs are trained on."""

app = typer.Typer(
    help="Train and evaluate the learned (neural) image codec.",
    no_args_is_help=True,
    add_completion=False,
)


class Distortion(StrEnum):
    mse = "mse"
    mae = "mae"


class Architecture(StrEnum):
    factorized = "factorized"
    hyperprior = "hyperprior"


class Noise(StrEnum):
    none = "none"
    gaussian = "gaussian"
    laplace = "laplace"


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
    from lossylearn.data import load_dataset

    ds = load_dataset(dataset, data_dir)
    if split not in ("train", "test"):
        raise LossylearnError(f"--split must be train or test, got {split!r}")
    return (ds.train_images if split == "train" else ds.test_images), ds.source


def _noisy(
    images: np.ndarray, noise: str, scale: float | None, seed: int
) -> tuple[np.ndarray, dict[str, Any]]:
    from lossylearn.privacy import NoiseSource, add_noise, resolve_noise

    if scale is None:
        raise LossylearnError(f"--noise {noise} needs --noise-scale (sigma or b, 0-255 units)")
    strength = {"sigma": scale} if noise == "gaussian" else {"b": scale}
    spec, _ = resolve_noise(
        kind=noise, image_shape=tuple(int(v) for v in images.shape[1:]), seeded=True, **strength
    )
    noisy = add_noise(images, spec, NoiseSource.create(seed, NOISE_STREAM))
    return noisy, {"kind": noise, "scale": float(scale), "seed": seed, "stream": NOISE_STREAM}


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
    epochs: int = 10,
    finetune_epochs: int | None = None,
    batch_size: int = 16,
    lr: float = 1e-3,
    seed: int = 0,
    device: str = "auto",
    tolerance: float = 0.05,
    max_rounds: int = 6,
    validation_fraction: float = 0.1,
    max_steps: int | None = None,
    overwrite: bool = False,
    progress: bool = False,
    threads: int | None = DEFAULT_THREADS,
) -> TrainSummary:
    """Load a dataset split, optionally add noise, train a checkpoint and save it to ``out``.

    With ``noise`` and neither ``lmbdas`` nor ``target``, the target is the noise's own distortion
    (MSE = sigma^2 for Gaussian, MAE = b for Laplace) and ``distortion`` defaults to match it.
    Training runs on ``threads`` torch CPU threads (``None``: leave torch's setting alone).
    """
    from lossylearn.codecs.learned.checkpoint import save_checkpoint
    from lossylearn.codecs.learned.models import preset_config
    from lossylearn.codecs.learned.train import CodecTrainConfig as TrainConfig
    from lossylearn.codecs.learned.train import train_codec

    start = time.perf_counter()
    if noise not in ("none", "gaussian", "laplace"):
        raise LossylearnError(f"unknown noise {noise!r}; known: none, gaussian, laplace")
    if distortion is None:
        distortion = "mae" if noise == "laplace" else "mse"
    if noise != "none" and not lmbdas and target is None:
        if noise_scale is None:
            raise LossylearnError(f"--noise {noise} needs --noise-scale (sigma or b, 0-255 units)")
        own, value = ("mse", noise_scale**2) if noise == "gaussian" else ("mae", noise_scale)
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
    config = TrainConfig(
        distortion=distortion, epochs=epochs, batch_size=batch_size, lr=lr, seed=seed,
        device=device, max_steps=max_steps, progress=progress, threads=threads,
    )  # fmt: skip
    if out.exists() and (out / "config.json").exists() and not overwrite:
        raise CodecError(
            f"{out} already holds a codec checkpoint; choose another --out or --overwrite"
        )
    ck, fit = train_codec(
        images, model_config=model_config, config=config, lmbdas=lmbdas, target=target,
        validation_fraction=validation_fraction, tolerance=tolerance, max_rounds=max_rounds,
        finetune_epochs=finetune_epochs, meta=meta,
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


def _fail(err: LossylearnError) -> typer.Exit:
    typer.echo(f"error: {err}", err=True)
    return typer.Exit(code=2)


def _threads(threads: int) -> int:
    if threads < 1:
        raise LossylearnError(f"--threads must be at least 1, got {threads}")
    return threads


@app.command("train")
def train_cmd(
    dataset: Annotated[
        str, typer.Option(help="Dataset name: mnist, fashion-mnist, celeba, folder.")
    ],
    out: Annotated[
        Path, typer.Option(help="Checkpoint folder to write (config.json + weights.pt).")
    ],
    data_dir: Annotated[
        Path | None, typer.Option(help="Dataset folder (mnist: embedded 5k without it).")
    ] = None,
    split: Annotated[
        str, typer.Option(help="Which split trains the codec: train or test.")
    ] = "train",
    limit: Annotated[
        int | None, typer.Option(help="Use only the first N images of the split.")
    ] = None,
    distortion: Annotated[
        Distortion | None,
        typer.Option(help="mse or mae (default: mae for Laplace noise, else mse)."),
    ] = None,
    lmbda: Annotated[
        list[float] | None, typer.Option(help="Rate-distortion trade-off; repeat for a ladder.")
    ] = None,
    target_distortion: Annotated[
        float | None, typer.Option(help="Search lambda to reach this MSE/MAE (0-255 scale).")
    ] = None,
    noise: Annotated[
        Noise, typer.Option(help="Train on noisy copies: gaussian (sigma) or laplace (b).")
    ] = Noise.none,
    noise_scale: Annotated[
        float | None, typer.Option(help="sigma or b of the noise, 0-255 units.")
    ] = None,
    architecture: Annotated[
        Architecture, typer.Option(help="factorized (2017) or hyperprior (2018).")
    ] = Architecture.factorized,
    preset: Annotated[
        str | None, typer.Option(help="Model size: mnist (28x28 grey) or rgb64 (64x64 RGB).")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Epochs for the first model.")] = 10,
    finetune_epochs: Annotated[
        int | None, typer.Option(help="Warm-start further models for this many epochs.")
    ] = None,
    batch_size: Annotated[int, typer.Option(help="Images per step.")] = 16,
    lr: Annotated[float, typer.Option(help="Adam learning rate.")] = 1e-3,
    seed: Annotated[int, typer.Option(help="Seed for initialization, batches and noise.")] = 0,
    device: Annotated[str, typer.Option(help="auto (CUDA when present), cpu or cuda.")] = "auto",
    threads: Annotated[
        int,
        typer.Option(
            help="torch CPU threads (default 1: measured fastest, and never stalls when another "
            "process shares the cores; see benchmarks/codec_speed.py)."
        ),
    ] = DEFAULT_THREADS,
    tolerance: Annotated[
        float, typer.Option(help="Relative tolerance of --target-distortion.")
    ] = 0.05,
    max_rounds: Annotated[
        int, typer.Option(help="Lambda search rounds for --target-distortion.")
    ] = 6,
    max_steps: Annotated[
        int | None, typer.Option(help="Stop each model after this many steps.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an existing checkpoint in --out.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Train a learned codec (one lambda, a lambda ladder, or a target distortion)."""
    try:
        summary = train_from_dataset(
            dataset=dataset, out=out, data_dir=data_dir, split=split, limit=limit,
            distortion=distortion.value if distortion else None, lmbdas=lmbda or None,
            target=target_distortion, noise=noise.value, noise_scale=noise_scale,
            architecture=architecture.value, preset=preset, epochs=epochs,
            finetune_epochs=finetune_epochs, batch_size=batch_size, lr=lr, seed=seed,
            device=device, tolerance=tolerance, max_rounds=max_rounds, max_steps=max_steps,
            overwrite=overwrite, progress=progress, threads=_threads(threads),
        )  # fmt: skip
    except LossylearnError as err:
        raise _fail(err) from None
    for r in summary.rungs:
        typer.echo(
            "  "
            + "  ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()
            )
        )
    typer.echo(
        f"{summary.message}; wrote {summary.checkpoint} in {summary.seconds:.0f} s "
        f"on {summary.threads} torch thread(s)"
    )


@app.command("eval")
def eval_cmd(
    checkpoint: Annotated[Path, typer.Option(help="Checkpoint folder written by 'codec train'.")],
    dataset: Annotated[str, typer.Option(help="Dataset name (same kinds of images as training).")],
    out: Annotated[Path, typer.Option(help="Folder for results.json and rd.png.")],
    data_dir: Annotated[Path | None, typer.Option(help="Dataset folder.")] = None,
    split: Annotated[str, typer.Option(help="Split to evaluate on.")] = "test",
    limit: Annotated[int | None, typer.Option(help="Use only the first N images.")] = None,
    baselines: Annotated[
        str, typer.Option(help="Comma-separated codecs to compare with.")
    ] = "jpeg,webp,avif",
    baseline_qualities: Annotated[
        str | None, typer.Option(help="Comma-separated qualities for the baselines.")
    ] = None,
    threads: Annotated[
        int, typer.Option(help="torch CPU threads (default 1, measured fastest).")
    ] = DEFAULT_THREADS,
) -> None:
    """Rate-distortion of the learned codec vs JPEG/WebP/AVIF: results.json, BD-rates, rd.png."""
    try:
        n_threads = _threads(threads)
        names = tuple(b.strip() for b in baselines.split(",") if b.strip())
        try:
            quals = (
                tuple(int(q) for q in baseline_qualities.split(",")) if baseline_qualities else None
            )
        except ValueError:
            raise LossylearnError(
                f"--baseline-qualities must be integers, got {baseline_qualities!r}"
            ) from None
        result = evaluate_checkpoint(
            checkpoint=checkpoint, dataset=dataset, out=out, data_dir=data_dir, split=split,
            limit=limit, baselines=names, baseline_qualities=quals, threads=n_threads,
        )  # fmt: skip
    except LossylearnError as err:
        raise _fail(err) from None
    for r in result.rows:
        if r.codec == "learned":
            typer.echo(
                f"  learned q{r.quality} lambda={r.lmbda:.4g}: {r.bpp:.3f} bpp "
                f"(estimate {r.bpp_estimated:.3f}), PSNR {r.psnr:.2f} dB, MAE {r.mae:.2f}"
            )
    for name, v in result.bd_rate.items():
        typer.echo(
            f"  BD-rate vs {name}: " + (f"{v:+.1f}%" if v is not None else "n/a (no overlap)")
        )
    typer.echo(f"wrote {out / 'results.json'} and {out / 'rd.png'} ({n_threads} torch thread(s))")
