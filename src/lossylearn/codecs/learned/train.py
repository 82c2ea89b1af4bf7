"""Training the learned codec: one lambda, a lambda ladder, or a lambda that hits a distortion.

Loss per batch: ``lmbda * D + bpp`` with ``D`` the MSE or MAE on the 0-255 scale (between the input
and the reconstruction from rounded latents) and ``bpp`` the estimated bits per pixel (noisy
latents). A second Adam fits the entropy bottleneck's quantiles (the aux loss) at every step; after the last
epoch the quantiles are solved exactly (bisection on the monotone CDFs) and the integer tables are
built (the CDF update).

Matching a target distortion and the ``train_codec`` entry point live in
:mod:`lossylearn.codecs.learned.fitting`.

Threads: training runs on :data:`DEFAULT_THREADS` (1) torch CPU threads unless
``CodecTrainConfig.threads`` says otherwise (``None``: leave torch's setting alone); the count used
is recorded in each rung's ``info["train"]["threads"]``. The count and torch's random state are
restored afterwards (:func:`lossylearn.learn.torch_threads`, :func:`lossylearn.learn.seeded`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np
import torch
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from lossylearn.codecs.learned.checkpoint import DISTORTIONS, Rung
from lossylearn.codecs.learned.coding import CompressionModel, EntropyParameters
from lossylearn.codecs.learned.models import ModelConfig, build_codec_model
from lossylearn.codecs.metrics import image_distortion
from lossylearn.errors import CodecError
from lossylearn.imaging import mean_psnr_db
from lossylearn.learn.devices import resolve_device, seeded, torch_threads

__all__ = [
    "DEFAULT_THREADS",
    "RungMetrics",
    "CodecTrainConfig",
    "measure",
    "progress_bar",
    "train_ladder",
    "torch_threads",
    "train_rung",
]

DEFAULT_THREADS = 1
"""torch CPU threads for training and evaluating the learned codec unless asked otherwise.

Chosen by measurement (``benchmarks/codec_speed.py``, issue 10) on a shared 2-core machine: the
models are small, so a second OpenMP thread mostly waits at barriers, and its workers spin while
waiting. A training step of the ``mnist`` preset took 0.03 s on 1 thread against 0.025-1.4 s on 2
(faster only when a core happened to be free), and beside one busy process 0.065-0.073 s on 1
thread against 0.7-2.4 s on 2 (0.10-0.15 s on 2 with ``OMP_WAIT_POLICY=PASSIVE``). ``codec train
--limit 512 --epochs 2``: 5 s on 1 thread, 18 s on 2; beside a busy process 10 s against 57 s.
One thread is at worst a little slower and never collapses; ask for more with ``threads`` /
``--threads`` on a large machine that nothing else uses.
"""


def training_distortion(x_hat: torch.Tensor, x: torch.Tensor, kind: str) -> torch.Tensor:
    """MSE or MAE (0-255 scale) of the reconstruction, free where decoding's clamp to [0, 1]
    makes an overshoot harmless: below 0 where the pixel is black, above 1 where it is white.

    Without it the loss charges the synthesis for overshooting a black background, which costs
    nothing once decoded; a full clamp would also stop the gradient of a stroke pixel stuck below
    0. Measured on MNIST (the issue-15 ladder, 2000 official test digits, the earlier 4x4-latent
    preset, a full clamp): BD-rate against JPEG -28.2% without, -31.9% with, same training."""
    free = ((x_hat < 0.0) & (x <= 0.0)) | ((x_hat > 1.0) & (x >= 1.0))
    diff = torch.where(free, torch.zeros_like(x_hat), x_hat - x)
    return diff.pow(2).mean() * 255.0**2 if kind == "mse" else diff.abs().mean() * 255.0


@dataclass(frozen=True)
class CodecTrainConfig:
    """How to train one rung."""

    distortion: str = "mse"
    epochs: int = 10
    batch_size: int = 16
    lr: float = 1e-3
    aux_lr: float = 1e-3
    final_lr_fraction: float = 0.2
    """The last fraction of steps runs at lr / 10."""
    grad_clip: float = 1.0
    seed: int = 0
    device: str = "auto"
    max_steps: int | None = None
    """Stop after this many steps in all (for tests and quick checks)."""
    progress: bool = False
    threads: int | None = DEFAULT_THREADS
    """torch CPU threads while training (``None``: leave torch's setting alone)."""

    def __post_init__(self) -> None:
        if self.distortion not in DISTORTIONS:
            raise CodecError(
                f"unknown distortion {self.distortion!r}; known: {', '.join(DISTORTIONS)}"
            )
        if self.epochs < 1 or self.batch_size < 1:
            raise CodecError("epochs and batch size must be at least 1")
        if not (self.lr > 0 and self.aux_lr > 0):
            raise CodecError("learning rates must be positive")
        if self.max_steps is not None and self.max_steps < 1:
            raise CodecError("max_steps must be at least 1")
        if self.threads is not None and (
            isinstance(self.threads, bool) or not isinstance(self.threads, int) or self.threads < 1
        ):
            raise CodecError(f"threads must be an integer >= 1, got {self.threads!r}")


@dataclass(frozen=True)
class RungMetrics:
    """What a trained rung gives on a set of images (reconstructions rounded to uint8)."""

    bpp_estimated: float
    mse: float
    mae: float
    psnr: float
    """Mean over images of 10 log10(255^2 / MSE), per-image MSE floored at 1e-3."""
    n_images: int

    def distortion(self, kind: str) -> float:
        return self.mse if kind == "mse" else self.mae


def _check_images(images: np.ndarray, cfg: ModelConfig) -> np.ndarray:
    arr = np.asarray(images)
    if (
        arr.dtype != np.uint8
        or arr.ndim != 4
        or arr.shape[0] < 1
        or arr.shape[-1] != cfg.in_channels
    ):
        raise CodecError(
            f"training needs uint8 images (N, H, W, {cfg.in_channels}), got {arr.dtype} {arr.shape}"
        )
    return arr


@contextmanager
def progress_bar(enabled: bool, label: str, total: int) -> Iterator[tuple[Progress, Any]]:
    """A Rich bar of ``total`` steps with a status field: yields (progress, task)."""
    progress = Progress(
        TextColumn(label), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[status]}"),
        TimeRemainingColumn(), disable=not enabled, transient=False,
    )  # fmt: skip
    with progress:
        yield progress, progress.add_task("train", total=total, status="")


def measure(rung: Rung, images: np.ndarray, *, batch: int = 512) -> RungMetrics:
    """Estimated bpp and the distortion of the uint8 reconstructions that decoding would give."""
    cm = CompressionModel(rung.model, rung.entropy)
    bits, mse, mae = [], [], []
    for s in range(0, len(images), batch):
        part = images[s : s + batch]
        rec = cm.reconstruct(part)
        bits.append(cm.estimate_bits(part))
        mse.append(image_distortion(part, rec, "mse"))
        mae.append(image_distortion(part, rec, "mae"))
    pixels = images.shape[1] * images.shape[2]
    mse_a, mae_a = np.concatenate(mse), np.concatenate(mae)
    return RungMetrics(
        bpp_estimated=float(np.concatenate(bits).mean() / pixels),
        mse=float(mse_a.mean()),
        mae=float(mae_a.mean()),
        psnr=mean_psnr_db(mse_a),
        n_images=len(images),
    )


def train_rung(
    images: np.ndarray,
    model_config: ModelConfig,
    lmbda: float,
    config: CodecTrainConfig,
    *,
    init_state: dict[str, torch.Tensor] | None = None,
    epochs: int | None = None,
    label: str = "",
) -> Rung:
    """Train one model on uint8 ``images`` (N, H, W, C) and build its entropy tables."""
    with torch_threads(config.threads):
        return _train_rung(
            images, model_config, lmbda, config, init_state=init_state, epochs=epochs, label=label
        )


def _train_rung(
    images: np.ndarray,
    model_config: ModelConfig,
    lmbda: float,
    config: CodecTrainConfig,
    *,
    init_state: dict[str, torch.Tensor] | None,
    epochs: int | None,
    label: str,
) -> Rung:
    images = _check_images(images, model_config)
    if not (lmbda > 0 and math.isfinite(lmbda)):
        raise CodecError(f"lambda must be a positive number, got {lmbda}")
    n_epochs = int(epochs if epochs is not None else config.epochs)
    dev = resolve_device(config.device)
    with seeded(config.seed):
        model = build_codec_model(model_config)
    if init_state is not None:
        model.load_state_dict(init_state)
    model.to(dev).train()
    aux_params = [model.entropy_bottleneck.quantiles]
    main_params = [p for n, p in model.named_parameters() if not n.endswith("quantiles")]
    opt = torch.optim.Adam(main_params, lr=config.lr)
    aux_opt = torch.optim.Adam(aux_params, lr=config.aux_lr)
    data = torch.from_numpy(np.ascontiguousarray(images)).to(dev)
    n = data.shape[0]
    pixels = images.shape[1] * images.shape[2]
    steps_per_epoch = math.ceil(n / config.batch_size)
    total_steps = n_epochs * steps_per_epoch
    if config.max_steps is not None:
        total_steps = min(total_steps, config.max_steps)
    decay_at = int(total_steps * (1.0 - config.final_lr_fraction))
    rng = np.random.default_rng([config.seed, int(round(lmbda * 1e9)) % (2**32)])
    gen = torch.Generator(device=dev).manual_seed(config.seed)
    history: list[dict[str, float]] = []
    step = 0
    start = time.perf_counter()
    progress = Progress(
        TextColumn(f"train {label}lambda={lmbda:.4g}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("{task.fields[status]}"),
        TimeRemainingColumn(),
        disable=not config.progress,
        transient=False,
    )
    with progress:
        task = progress.add_task("train", total=total_steps, status="")
        for epoch in range(n_epochs):
            if step >= total_steps:
                break
            t0 = time.perf_counter()
            order = torch.from_numpy(rng.permutation(n)).to(dev)
            sums = np.zeros(4)
            count = 0
            for s in range(0, n, config.batch_size):
                if step >= total_steps:
                    break
                if step == decay_at:
                    for g in opt.param_groups:
                        g["lr"] = config.lr / 10.0
                x = data[order[s : s + config.batch_size]].permute(0, 3, 1, 2).float() / 255.0
                out = model(x, generator=gen)
                bpp = out.bits().mean() / pixels
                dist = training_distortion(out.x_hat, x, config.distortion)
                loss = lmbda * dist + bpp
                opt.zero_grad()
                loss.backward()
                if config.grad_clip > 0:
                    torch.nn.utils.clip_grad_norm_(main_params, config.grad_clip)
                opt.step()
                aux = model.aux_loss()
                aux_opt.zero_grad()
                aux.backward()
                aux_opt.step()
                sums += [loss.item(), bpp.item(), dist.item(), aux.item()]
                count += 1
                step += 1
                progress.update(
                    task,
                    advance=1,
                    status=f"bpp {bpp.item():.3f} {config.distortion} {dist.item():.1f}",
                )
            mean = sums / max(count, 1)
            history.append(
                {
                    "epoch": epoch + 1,
                    "steps": count,
                    "loss": float(mean[0]),
                    "bpp": float(mean[1]),
                    config.distortion: float(mean[2]),
                    "aux_loss": float(mean[3]),
                    "seconds": time.perf_counter() - t0,
                }
            )
    model.cpu().eval()
    aux_final = model.entropy_bottleneck.solve_quantiles()
    entropy = EntropyParameters.build(model)
    seconds = time.perf_counter() - start
    info = {
        "train": {
            **asdict(replace(config, progress=False)),
            "epochs_run": len(history),
            "steps": step,
            "images": int(n),
            "device": str(dev),
            "threads": torch.get_num_threads(),
            "seconds": seconds,
            "aux_loss_final": aux_final,
            "warm_start": init_state is not None,
        },
        "history": history,
    }
    return Rung(float(lmbda), model, entropy, info)


def train_ladder(
    images: np.ndarray,
    model_config: ModelConfig,
    lmbdas: Sequence[float],
    config: CodecTrainConfig,
    *,
    finetune_epochs: int | None = None,
    validation: np.ndarray | None = None,
) -> list[Rung]:
    """Train one rung per lambda. With ``finetune_epochs``, the largest lambda is trained for
    ``config.epochs`` and each smaller one fine-tuned from its neighbour for ``finetune_epochs``."""
    if not lmbdas:
        raise CodecError("give at least one lambda")
    with torch_threads(config.threads):
        return _train_ladder(images, model_config, lmbdas, config, finetune_epochs, validation)


def _train_ladder(
    images: np.ndarray,
    model_config: ModelConfig,
    lmbdas: Sequence[float],
    config: CodecTrainConfig,
    finetune_epochs: int | None,
    validation: np.ndarray | None,
) -> list[Rung]:
    rungs: list[Rung] = []
    prev: dict[str, torch.Tensor] | None = None
    ordered = sorted((float(v) for v in lmbdas), reverse=True)
    for i, lam in enumerate(ordered):
        warm = finetune_epochs is not None and prev is not None
        rung = train_rung(
            images,
            model_config,
            lam,
            config,
            init_state=prev if warm else None,
            epochs=finetune_epochs if warm else None,
            label=f"{i + 1}/{len(ordered)} ",
        )
        if validation is not None:
            rung.info["validation"] = asdict(measure(rung, validation))
        rungs.append(rung)
        prev = rung.model.state_dict()
    return sorted(rungs, key=lambda r: r.lmbda)
