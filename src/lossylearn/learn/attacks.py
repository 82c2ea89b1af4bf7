"""Adversarial examples in pixel space [0, 1]: FGSM (Goodfellow et al. 2015) and L-inf PGD (Madry et al. 2018).

Both attack the model as it is (in eval mode: batch-norm statistics and dropout fixed), maximise the
cross-entropy of the true labels, and keep the result a valid image (clamped to [0, 1]).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import LossylearnError

__all__ = ["fgsm", "fgsm_many", "pgd", "ATTACKS"]

ATTACKS: tuple[str, ...] = ("fgsm", "pgd")


def _input_grad(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    x = x.detach().clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y)
    (grad,) = torch.autograd.grad(loss, x)
    return grad


def _check(x: torch.Tensor, epsilon: float) -> None:
    if epsilon < 0:
        raise LossylearnError(f"attack epsilon must be >= 0, got {epsilon}")
    if not torch.is_floating_point(x):
        raise LossylearnError("attacks take float images in [0, 1]")


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilon: float) -> torch.Tensor:
    """x_adv = clamp(x + epsilon * sign(grad_x CE(model(x), y)), 0, 1)."""
    return fgsm_many(model, x, y, (epsilon,))[0]


def fgsm_many(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, epsilons: Sequence[float]
) -> list[torch.Tensor]:
    """:func:`fgsm` at each of ``epsilons`` from ONE gradient: the sign of the input gradient at
    ``x`` does not depend on epsilon, so a sweep of k epsilons costs one backward pass, not k."""
    for eps in epsilons:
        _check(x, eps)
    was_training = model.training
    model.eval()
    try:
        x0 = x.detach()
        sign = _input_grad(model, x, y).sign() if any(e > 0 for e in epsilons) else None
        return [
            x0.clone() if eps == 0 or sign is None else (x0 + eps * sign).clamp_(0.0, 1.0)
            for eps in epsilons
        ]
    finally:
        model.train(was_training)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    epsilon: float,
    *,
    alpha: float | None = None,
    steps: int = 10,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """L-inf projected gradient descent: ``steps`` signed-gradient steps of size ``alpha``, each
    projected back onto the epsilon-ball around ``x`` and onto [0, 1].

    ``alpha`` defaults to ``2.5 * epsilon / steps``. With ``random_start`` the start point is drawn
    uniformly from the epsilon-ball using ``generator`` (a CPU generator; required then, so that the
    attack is reproducible).
    """
    _check(x, epsilon)
    if steps < 1:
        raise LossylearnError(f"PGD needs >= 1 step, got {steps}")
    step = 2.5 * epsilon / steps if alpha is None else alpha
    was_training = model.training
    model.eval()
    try:
        x0 = x.detach()
        if epsilon == 0:
            return x0.clone()
        if random_start:
            if generator is None:
                raise LossylearnError(
                    "PGD with a random start needs a torch.Generator for its seed"
                )
            u = torch.rand(x0.shape, generator=generator, dtype=x0.dtype).to(x0.device)
            adv = (x0 + (2 * u - 1) * epsilon).clamp(0.0, 1.0)
        else:
            adv = x0.clone()
        for _ in range(steps):
            grad = _input_grad(model, adv, y)
            adv = adv.detach() + step * grad.sign()
            delta = (adv - x0).clamp(-epsilon, epsilon)
            adv = (x0 + delta).clamp(0.0, 1.0)
        return adv.detach()
    finally:
        model.train(was_training)
