"""Training loop for the classifiers: seeded, optional Rich progress, CPU threads, CUDA when present.

Images enter as uint8 arrays (N, H, W, C) (what stores and datasets hold) and are turned into float
tensors in [0, 1] one batch at a time, so a large dataset never needs a float copy in memory.
All randomness (initial weights, shuffling, dropout, flips, shifts) comes from
``ClassifierTrainConfig.seed``: shuffling and augmentation draw from an explicit generator, the
weights and dropout from torch's global state inside :func:`~.devices.seeded`, which restores it
afterwards. The thread count is restored too.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from ..errors import LossylearnError
from ..progress import progress_bars
from .devices import resolve_device, seeded, torch_threads
from .models import ModelConfig, build_model
from .tensors import channels_last, check_images, random_shift, to_float_batch

__all__ = ["ClassifierTrainConfig", "TrainResult", "train_classifier"]


@dataclass(frozen=True)
class ClassifierTrainConfig:
    """Hyper-parameters and execution settings of one classifier training run."""

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
    shift: int = 0
    """Translate each training image by a random offset of up to this many pixels (zero fill)."""
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
        if self.shift < 0:
            raise LossylearnError(f"shift must be >= 0 pixels, got {self.shift}")

    def to_dict(self) -> dict[str, object]:
        """JSON-ready form."""
        return asdict(self)

    def steps_per_epoch(self, n_images: int) -> int:
        """Optimizer steps of one pass over ``n_images`` (the last batch may be smaller)."""
        return (n_images + self.batch_size - 1) // self.batch_size

    def total_steps(self, n_images: int) -> int:
        """Optimizer steps of a whole run on ``n_images``."""
        return (
            self.steps if self.steps is not None else self.epochs * self.steps_per_epoch(n_images)
        )


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


def _check_inputs(
    images: np.ndarray, labels: np.ndarray, model_config: ModelConfig, cfg: ClassifierTrainConfig
) -> tuple[np.ndarray, np.ndarray]:
    imgs = check_images(images)
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
    if cfg.shift >= min(h, w):
        raise LossylearnError(f"shift must be smaller than the images ({h}x{w}), got {cfg.shift}")
    return imgs, labs


def train_classifier(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    model_config: ModelConfig,
    config: ClassifierTrainConfig | None = None,
    description: str = "training",
    on_step: Callable[[], None] | None = None,
) -> TrainResult:
    """Train a fresh classifier of ``model_config`` on uint8 images and integer labels.

    Uses cross-entropy, Adam (or SGD with momentum 0.9 and a cosine schedule), optional random
    horizontal flips and shifts, and the device and CPU thread count in ``config``. Runs
    ``config.epochs`` passes, or exactly ``config.steps`` optimizer steps when that is set.
    ``on_step`` is called after every optimizer step (e.g. to advance a caller's progress bar).
    The model is returned in eval mode.
    """
    cfg = config or ClassifierTrainConfig()
    imgs, labs = _check_inputs(images, labels, model_config, cfg)
    device = resolve_device(cfg.device)
    with torch_threads(cfg.threads), seeded(cfg.seed, device):
        model = build_model(model_config).to(device, memory_format=torch.channels_last)
        gen = torch.Generator().manual_seed(cfg.seed + 1)
        x_all = torch.from_numpy(np.ascontiguousarray(imgs))
        y_all = torch.from_numpy(labs)
        if device.type == "cuda":
            x_all, y_all = x_all.to(device), y_all.to(device)
        n = len(x_all)
        steps_per_epoch = cfg.steps_per_epoch(n)
        total_steps = cfg.total_steps(n)
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
        done = 0
        images_seen = 0
        correct_t = torch.zeros((), dtype=torch.long, device=device)
        with progress_bars(cfg.progress, transient=True) as bars:
            advance = bars(description, total_steps)
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
                    xb = random_shift(xb, cfg.shift, gen)
                    logits = model(channels_last(xb))
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
                    # reading the loss syncs a GPU: not every step
                    advance(float(loss.detach()) if cfg.progress and done % 25 == 1 else None)
                    if on_step is not None:
                        on_step()
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
