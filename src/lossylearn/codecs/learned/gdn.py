"""Generalized divisive normalization (Balle, Laparra, Simoncelli 2016).

``GDN``:  y_i = x_i / sqrt(beta_i + sum_j gamma_ij x_j^2)
``IGDN``: y_i = x_i * sqrt(beta_i + sum_j gamma_ij x_j^2)   (the approximate inverse, used in g_s)

``beta`` and ``gamma`` must stay non-negative (``beta`` strictly positive). They are stored through
the reparametrization of the paper: the raw parameter ``p`` maps to ``max(p, bound)^2 - pedestal``,
and the lower bound lets gradients through whenever they push ``p`` back above the bound, so a
parameter that hits the bound can leave it again.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["GDN", "IGDN", "LowerBound", "NonNegative", "lower_bound"]

_PEDESTAL = 2.0**-36  # (2^-18)^2, as in the paper's reparametrization


class _LowerBoundFunction(torch.autograd.Function):
    """max(x, bound) whose gradient also flows when it points away from the bound."""

    @staticmethod
    def forward(ctx, x: Tensor, bound: Tensor) -> Tensor:  # type: ignore[override]
        ctx.save_for_backward(x, bound)
        return torch.max(x, bound)

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor, None]:  # type: ignore[override]
        x, bound = ctx.saved_tensors
        # Descent moves x by -grad: let the gradient through where x is above the bound, or where
        # the step would raise x (grad < 0).
        passes = (x >= bound) | (grad < 0)
        return grad * passes.to(grad.dtype), None


def lower_bound(x: Tensor, bound: float | Tensor) -> Tensor:
    """``max(x, bound)`` with the straight-through gradient described in the module docstring."""
    b = torch.as_tensor(bound, dtype=x.dtype, device=x.device)
    return _LowerBoundFunction.apply(x, b)


class LowerBound(nn.Module):
    """Module form of :func:`lower_bound` with a fixed bound."""

    def __init__(self, bound: float) -> None:
        super().__init__()
        self.register_buffer("bound", torch.tensor(float(bound)))

    def forward(self, x: Tensor) -> Tensor:
        return lower_bound(x, self.bound)


class NonNegative(nn.Module):
    """Maps a raw parameter to a value >= ``minimum`` (see the module docstring)."""

    def __init__(self, minimum: float = 0.0) -> None:
        super().__init__()
        self.minimum = float(minimum)
        self.bound = (self.minimum + _PEDESTAL) ** 0.5

    def init(self, value: Tensor) -> Tensor:
        """The raw parameter that represents ``value``."""
        return torch.sqrt(torch.clamp(value + _PEDESTAL, min=_PEDESTAL))

    def forward(self, raw: Tensor) -> Tensor:
        return lower_bound(raw, self.bound) ** 2 - _PEDESTAL


class GDN(nn.Module):
    """GDN over the channel dimension of (B, C, H, W) tensors; ``inverse=True`` gives IGDN."""

    def __init__(
        self,
        channels: int,
        *,
        inverse: bool = False,
        beta_min: float = 1e-6,
        gamma_init: float = 0.1,
    ) -> None:
        super().__init__()
        if channels <= 0:
            raise ValueError(f"GDN needs a positive channel count, got {channels}")
        self.channels = int(channels)
        self.inverse = bool(inverse)
        self.beta_reparam = NonNegative(minimum=beta_min)
        self.gamma_reparam = NonNegative(minimum=0.0)
        self.beta = nn.Parameter(self.beta_reparam.init(torch.ones(channels)))
        self.gamma = nn.Parameter(self.gamma_reparam.init(gamma_init * torch.eye(channels)))

    def forward(self, x: Tensor) -> Tensor:
        beta = self.beta_reparam(self.beta).to(x.dtype)
        gamma = self.gamma_reparam(self.gamma).to(x.dtype)
        norm = F.conv2d(x * x, gamma[:, :, None, None], beta)
        return x * torch.sqrt(norm) if self.inverse else x * torch.rsqrt(norm)

    def extra_repr(self) -> str:
        return f"{self.channels}, inverse={self.inverse}"


class IGDN(GDN):
    """The inverse GDN used in the synthesis transform."""

    def __init__(self, channels: int, *, beta_min: float = 1e-6, gamma_init: float = 0.1) -> None:
        super().__init__(channels, inverse=True, beta_min=beta_min, gamma_init=gamma_init)
