"""Evaluation of trained classifiers: accuracy on uint8 or float test images, and adversarial test sets."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import LossylearnError
from .attacks import ATTACKS, fgsm_many, pgd
from .devices import resolve_device
from .tensors import channels_last, to_float_batch

__all__ = [
    "Accuracy",
    "predict",
    "accuracy",
    "adversarial_images",
    "fgsm_images",
    "float_to_uint8",
]


@dataclass(frozen=True)
class Accuracy:
    """Accuracy of one model on one test set (``epsilon`` for adversarial sets, else 0)."""

    test: str
    accuracy: float
    n_test: int
    epsilon: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


def _as_float(batch: torch.Tensor) -> torch.Tensor:
    """uint8 NHWC -> float NCHW in [0, 1]; float NCHW passes through."""
    if batch.dtype == torch.uint8:
        return channels_last(to_float_batch(batch))
    return channels_last(batch.float())


def _as_tensor(images: np.ndarray | torch.Tensor) -> torch.Tensor:
    if isinstance(images, np.ndarray):
        if images.dtype != np.uint8 or images.ndim != 4:
            raise LossylearnError("test images must be uint8 (N, H, W, C) or float (N, C, H, W)")
        return torch.from_numpy(np.ascontiguousarray(images))
    if images.ndim != 4:
        raise LossylearnError("test images must be 4-dimensional")
    return images


@torch.no_grad()
def predict(
    model: nn.Module,
    images: np.ndarray | torch.Tensor,
    *,
    batch_size: int = 512,
    device: str = "auto",
) -> np.ndarray:
    """Predicted class per image (model in eval mode); uint8 NHWC or float NCHW in [0, 1]."""
    dev = resolve_device(device)
    x = _as_tensor(images)
    was_training = model.training
    model.eval()
    out: list[torch.Tensor] = []
    try:
        for i in range(0, len(x), batch_size):
            xb = _as_float(x[i : i + batch_size].to(dev))
            out.append(model(xb).argmax(1).cpu())
    finally:
        model.train(was_training)
    return torch.cat(out).numpy() if out else np.zeros(0, dtype=np.int64)


def accuracy(
    model: nn.Module,
    images: np.ndarray | torch.Tensor,
    labels: np.ndarray,
    *,
    batch_size: int = 512,
    device: str = "auto",
) -> float:
    """Fraction of images whose predicted class equals the label."""
    labs = np.asarray(labels, dtype=np.int64)
    if len(labs) != len(images):
        raise LossylearnError(f"{len(images)} test images but {len(labs)} labels")
    if len(labs) == 0:
        raise LossylearnError("cannot evaluate on an empty test set")
    pred = predict(model, images, batch_size=batch_size, device=device)
    return float((pred == labs).mean())


def adversarial_images(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    *,
    attack: str,
    epsilon: float,
    batch_size: int = 256,
    device: str = "auto",
    seed: int = 0,
    pgd_steps: int = 10,
) -> torch.Tensor:
    """Adversarial versions of uint8 test images against ``model``: float (N, C, H, W) in [0, 1], on CPU.

    ``attack`` is ``fgsm`` or ``pgd`` (L-inf, ``pgd_steps`` steps of 2.5*epsilon/steps from a random
    start seeded by ``seed``); ``epsilon`` is on the [0, 1] pixel scale.
    """
    if attack not in ATTACKS:
        raise LossylearnError(f"unknown attack {attack!r}; known: {', '.join(ATTACKS)}")
    if attack == "fgsm":
        return fgsm_images(model, images, labels, (epsilon,), batch_size=batch_size, device=device)[0]
    gen = torch.Generator().manual_seed(seed)
    out: list[torch.Tensor] = []
    for xb, yb in _batches(images, labels, batch_size, device):
        out.append(pgd(model, xb, yb, epsilon, steps=pgd_steps, generator=gen).cpu())
    return torch.cat(out)


def fgsm_images(
    model: nn.Module,
    images: np.ndarray,
    labels: np.ndarray,
    epsilons: tuple[float, ...] | list[float],
    *,
    batch_size: int = 256,
    device: str = "auto",
) -> list[torch.Tensor]:
    """FGSM versions of uint8 test images at each of ``epsilons`` (one list entry per epsilon,
    float (N, C, H, W) in [0, 1] on CPU), from one input gradient per batch."""
    per_eps: list[list[torch.Tensor]] = [[] for _ in epsilons]
    for xb, yb in _batches(images, labels, batch_size, device):
        for acc, adv in zip(per_eps, fgsm_many(model, xb, yb, epsilons), strict=True):
            acc.append(adv.cpu())
    return [torch.cat(parts) for parts in per_eps]


def _batches(
    images: np.ndarray, labels: np.ndarray, batch_size: int, device: str
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    dev = resolve_device(device)
    x = _as_tensor(images)
    y = torch.from_numpy(np.asarray(labels, dtype=np.int64))
    for i in range(0, len(x), batch_size):
        yield _as_float(x[i : i + batch_size].to(dev)), y[i : i + batch_size].to(dev)


def float_to_uint8(x: torch.Tensor) -> np.ndarray:
    """float (N, C, H, W) in [0, 1] -> uint8 (N, H, W, C), rounding to the nearest level."""
    arr = (x.detach().cpu().clamp(0, 1) * 255.0).round().to(torch.uint8)
    return arr.permute(0, 2, 3, 1).contiguous().numpy()
