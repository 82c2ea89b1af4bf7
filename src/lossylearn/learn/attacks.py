"""Adversarial examples in pixel space [0, 1]: FGSM (Goodfellow et al. 2015) and L-inf PGD (Madry et al. 2018).

Both attack the model as it is (in eval mode: batch-norm statistics and dropout fixed), maximise the
cross-entropy of the true labels, and keep the result a valid image (clamped to [0, 1]).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from ..errors import LossylearnError

__all__ = ["fgsm", "pgd", "ATTACKS"]

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
    _check(x, epsilon)
    was_training = model.training
    model.eval()
    try:
        if epsilon == 0:
            return x.detach().clone()
        grad = _input_grad(model, x, y)
        return (x.detach() + epsilon * grad.sign()).clamp_(0.0, 1.0)
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
