"""Training loop for the classifiers: seeded, optional Rich progress, CPU threads, CUDA when present.

Images enter as uint8 arrays (N, H, W, C) (what stores and datasets hold) and are turned into float
tensors in [0, 1] one batch at a time, so a large dataset never needs a float copy in memory.
All randomness (initial weights, shuffling, dropout, flips) comes from ``TrainConfig.seed``; the
global torch RNG state is restored afterwards.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from ..errors import LossylearnError
from .models import ModelConfig, build_model

__all__ = [
    "TrainConfig",
    "TrainResult",
    "resolve_device",
    "to_float_batch",
    "images_to_tensor",
    "torch_threads",
    "train_classifier",
]


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters and execution settings of one training run."""

    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    weight_decay: float = 0.0
    optimizer: str = "adam"
    seed: int = 0
    threads: int | None = None
    device: str = "auto"
    progress: bool = True
    hflip: bool = False
    steps: int | None = None
    """If set, train for exactly this many optimizer steps (as many passes as that takes) instead of
    ``epochs`` passes: the way to give training sets of different sizes the same compute."""

    def __post_init__(self) -> None:
        if self.steps is not None and self.steps < 1:
            raise LossylearnError(f"steps must be >= 1, got {self.steps}")
        if self.epochs < 1:
            raise LossylearnError(f"epochs must be >= 1, got {self.epochs}")
        if self.batch_size < 1:
            raise LossylearnError(f"batch size must be >= 1, got {self.batch_size}")
        if not self.lr > 0:
            raise LossylearnError(f"learning rate must be positive, got {self.lr}")
        if self.optimizer not in ("adam", "sgd"):
            raise LossylearnError(f"unknown optimizer {self.optimizer!r}; known: adam, sgd")
        if self.threads is not None and self.threads < 1:
            raise LossylearnError(f"threads must be >= 1, got {self.threads}")


@dataclass
class TrainResult:
    """A trained model and what happened while training it."""

    model: nn.Module
    config: ModelConfig
    n_train: int
    epoch_losses: list[float] = field(default_factory=list)
    train_accuracy: float = 0.0
    seconds: float = 0.0
    images_per_second: float = 0.0
    device: str = "cpu"


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when present, else the CPU; ``cuda`` without a GPU is a user error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise LossylearnError("device 'cuda' requested but no CUDA GPU is available")
    try:
        return torch.device(device)
    except RuntimeError as exc:
        raise LossylearnError(f"unknown device {device!r}") from exc


def to_float_batch(batch: torch.Tensor) -> torch.Tensor:
    """uint8 (N, H, W, C) -> float32 (N, C, H, W) in [0, 1] on the batch's own device."""
    return batch.permute(0, 3, 1, 2).float().div_(255.0).contiguous()


def images_to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 (N, H, W, C) array -> float32 (N, C, H, W) tensor in [0, 1]."""
    arr = _check_images(images)
    return to_float_batch(torch.from_numpy(np.ascontiguousarray(arr)))


@contextlib.contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op CPU thread count (``None`` leaves it alone)."""
    if n is None:
        yield
        return
    old = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(old)


def _check_images(images: np.ndarray) -> np.ndarray:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        raise LossylearnError("images must be a uint8 array shaped (N, H, W, C)")
    return images


def _progress(enabled: bool, description: str, total: int):  # type: ignore[no-untyped-def]
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("loss {task.fields[loss]:.3f}"),
        TimeElapsedColumn(),
        disable=not enabled,
        transient=True,
    )
    task = progress.add_task(description, total=total, loss=float("nan"))
    return progress, task


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    model_config: ModelConfig,
    config: TrainConfig | None = None,
    description: str = "training",
) -> TrainResult:
    """Train a fresh classifier of ``model_config`` on uint8 images and integer labels.

    Uses cross-entropy, Adam (or SGD with momentum 0.9 and a cosine schedule), optional random
    horizontal flips, and the device and CPU thread count in ``config``. Runs ``config.epochs``
    passes, or exactly ``config.steps`` optimizer steps when that is set.
    """
    cfg = config or TrainConfig()
    imgs = _check_images(images)
    labs = np.asarray(labels, dtype=np.int64)
    if len(imgs) != len(labs):
        raise LossylearnError(f"{len(imgs)} images but {len(labs)} labels")
    if len(imgs) == 0:
        raise LossylearnError("cannot train on an empty training set")
    if labs.min() < 0 or labs.max() >= model_config.num_classes:
        raise LossylearnError(
            f"labels must lie in [0, {model_config.num_classes - 1}], got [{labs.min()}, {labs.max()}]"
        )
    h, w, c = imgs.shape[1:]
    if (h, w) != tuple(model_config.image_size) or c != model_config.in_channels:
        raise LossylearnError(
            f"images are {h}x{w}x{c} but the model expects "
            f"{model_config.image_size[0]}x{model_config.image_size[1]}x{model_config.in_channels}"
        )
    device = resolve_device(cfg.device)
    fork_devices = [device.index or 0] if device.type == "cuda" else []
    with torch_threads(cfg.threads), torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(cfg.seed)
        model = build_model(model_config).to(device)
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        x_all = torch.from_numpy(np.ascontiguousarray(imgs))
        y_all = torch.from_numpy(labs)
        if device.type == "cuda":
            x_all, y_all = x_all.to(device), y_all.to(device)
        n = len(x_all)
        steps_per_epoch = (n + cfg.batch_size - 1) // cfg.batch_size
        total_steps = cfg.steps if cfg.steps is not None else cfg.epochs * steps_per_epoch
        n_epochs = (total_steps + steps_per_epoch - 1) // steps_per_epoch
        if cfg.optimizer == "adam":
            opt: torch.optim.Optimizer = torch.optim.Adam(
                model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay
            )
            sched = None
        else:
            opt = torch.optim.SGD(
                model.parameters(), lr=cfg.lr, momentum=0.9, weight_decay=cfg.weight_decay
            )
            sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=total_steps)
        loss_fn = nn.CrossEntropyLoss()
        losses: list[float] = []
        seen = 0
        start = time.perf_counter()
        progress, task = _progress(cfg.progress, description, total_steps)
        done = 0
        images_seen = 0
        correct_t = torch.zeros((), dtype=torch.long, device=device)
        with progress:
            for epoch in range(n_epochs):
                model.train()
                order = torch.randperm(n, generator=gen)
                if device.type == "cuda":
                    order = order.to(device)
                total = torch.zeros((), device=device)
                last_epoch = epoch == n_epochs - 1
                seen_epoch = 0
                for s in range(min(steps_per_epoch, total_steps - done)):
                    idx = order[s * cfg.batch_size : (s + 1) * cfg.batch_size]
                    xb = to_float_batch(x_all[idx].to(device, non_blocking=True))
                    yb = y_all[idx].to(device, non_blocking=True)
                    if cfg.hflip:
                        flip = torch.rand(len(idx), generator=gen) < 0.5
                        flip = flip.to(device)
                        xb = torch.where(flip[:, None, None, None], xb.flip(3), xb)
                    logits = model(xb)
                    loss = loss_fn(logits, yb)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    opt.step()
                    if sched is not None:
                        sched.step()
                    done += 1
                    seen_epoch += len(idx)
                    total += loss.detach() * len(idx)
                    if last_epoch:
                        correct_t += (logits.detach().argmax(1) == yb).sum()
                        seen += len(idx)
                    if (
                        cfg.progress and done % 25 == 1
                    ):  # reading the loss syncs a GPU: not every step
                        progress.update(task, advance=1, loss=float(loss.detach()))
                    else:
                        progress.update(task, advance=1)
                losses.append(float(total) / seen_epoch)
                images_seen += seen_epoch
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = time.perf_counter() - start
        correct = int(correct_t)
    model.eval()
    return TrainResult(
        model=model,
        config=model_config,
        n_train=n,
        epoch_losses=losses,
        train_accuracy=correct / max(seen, 1),
        seconds=seconds,
        images_per_second=images_seen / max(seconds, 1e-9),
        device=str(device),
    )
