"""The entropy bottleneck of Balle et al. (2018, appendix 6.1): a learned density per channel.

Each channel ``c`` has a cumulative function ``F_c(x) = sigmoid(f_K(...f_1(x)))`` built from small
monotone layers (softplus-positive matrices, biases and tanh "factors"). The probability of the
integer bin around ``x`` is ``F_c(x + 1/2) - F_c(x - 1/2)``.

Training: the rate term uses ``y + u`` with ``u ~ U(-1/2, 1/2)``; the decoder sees the rounded value
``round(y - m) + m`` (``m`` the channel median) through a straight-through gradient. Three learned
quantiles per channel (the ``tail_mass / 2`` tails and the median) are fitted by :meth:`aux_loss`,
a separate objective that only moves the quantiles. After training, :meth:`build_tables` turns the
densities into integer tables between the tail quantiles (the CDF update).
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from lossylearn.codecs.learned.gdn import lower_bound
from lossylearn.codecs.learned.tables import (
    PRECISION,
    CategoricalTables,
    quantize_pmf,
    stack_tables,
)

__all__ = ["EntropyBottleneck", "LIKELIHOOD_BOUND", "ste_round", "uniform_noise"]

LIKELIHOOD_BOUND = 1e-9
_MAX_TABLE = 4096  # widest range of integer values one channel may cover


def ste_round(x: Tensor, offset: Tensor | float = 0.0) -> Tensor:
    """``round(x - offset) + offset`` in the forward pass, identity gradient."""
    return x + (torch.round(x - offset) + offset - x).detach()


def uniform_noise(x: Tensor, generator: torch.Generator | None) -> Tensor:
    """``U(-1/2, 1/2)`` noise shaped like ``x``, drawn from ``generator``."""
    u = torch.rand(x.shape, generator=generator, dtype=x.dtype, device=x.device)
    return u - 0.5


class EntropyBottleneck(nn.Module):
    """Factorized (per-channel, i.i.d. over positions) learned prior for a latent tensor."""

    def __init__(
        self,
        channels: int,
        *,
        filters: tuple[int, ...] = (3, 3, 3),
        init_scale: float = 10.0,
        tail_mass: float = 1e-9,
    ) -> None:
        super().__init__()
        self.channels = int(channels)
        self.filters = tuple(int(f) for f in filters)
        self.tail_mass = float(tail_mass)
        dims = (1, *self.filters, 1)
        scale = init_scale ** (1.0 / (len(self.filters) + 1))
        self.matrices = nn.ParameterList()
        self.biases = nn.ParameterList()
        self.factors = nn.ParameterList()
        for i in range(len(dims) - 1):
            init = math.log(math.expm1(1.0 / scale / dims[i + 1]))
            self.matrices.append(nn.Parameter(torch.full((channels, dims[i + 1], dims[i]), init)))
            self.biases.append(nn.Parameter(torch.rand(channels, dims[i + 1], 1) - 0.5))
            if i < len(dims) - 2:
                self.factors.append(nn.Parameter(torch.zeros(channels, dims[i + 1], 1)))
        target = math.log(2.0 / self.tail_mass - 1.0)
        self.register_buffer("quantile_targets", torch.tensor([-target, 0.0, target]))
        self.quantiles = nn.Parameter(
            torch.tensor([-init_scale, 0.0, init_scale]).repeat(channels, 1, 1)
        )

    # -- density ---------------------------------------------------------------------------

    def _logits_cumulative(self, x: Tensor, *, stop_gradient: bool = False) -> Tensor:
        """Logit of F_c at ``x`` of shape (C, 1, n)."""
        logits = x
        for i, (matrix, bias) in enumerate(zip(self.matrices, self.biases, strict=True)):
            m = F.softplus(matrix)
            b = bias
            if stop_gradient:
                m, b = m.detach(), b.detach()
            logits = torch.matmul(m.to(x.dtype), logits) + b.to(x.dtype)
            if i < len(self.factors):
                f = self.factors[i].detach() if stop_gradient else self.factors[i]
                logits = logits + torch.tanh(f.to(x.dtype)) * torch.tanh(logits)
        return logits

    def _bin_probability(self, v: Tensor) -> Tensor:
        """P(integer bin of width 1 around v); v has shape (C, 1, n). Stable in both tails."""
        lower = self._logits_cumulative(v - 0.5)
        upper = self._logits_cumulative(v + 0.5)
        sign = -torch.sign(lower + upper).detach()
        return torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))

    def likelihood(self, y: Tensor) -> Tensor:
        """Probability of the unit bin around each element of ``y`` (B, C, H, W), bounded below."""
        b, c, h, w = y.shape
        v = y.permute(1, 0, 2, 3).reshape(c, 1, -1)
        p = self._bin_probability(v).reshape(c, b, h, w).permute(1, 0, 2, 3)
        return lower_bound(p, LIKELIHOOD_BOUND)

    def medians(self) -> Tensor:
        """The learned per-channel medians, shape (C,)."""
        return self.quantiles[:, 0, 1].detach()

    def aux_loss(self) -> Tensor:
        """Fits the quantiles to the current densities (gradients reach only ``quantiles``)."""
        logits = self._logits_cumulative(self.quantiles, stop_gradient=True)
        return torch.abs(logits - self.quantile_targets.to(logits.dtype)).sum()

    def forward(
        self, y: Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """(y_hat for the decoder, likelihoods). Training mode adds noise for the rate term."""
        med = self.medians().to(y.dtype).view(1, -1, 1, 1)
        y_hat = ste_round(y, med)
        y_rate = y + uniform_noise(y, generator) if self.training else y_hat
        return y_hat, self.likelihood(y_rate)

    @torch.no_grad()
    def solve_quantiles(self, iterations: int = 80) -> float:
        """Set the quantiles to the exact solutions of F_c(q) = tail/2, 1/2, 1 - tail/2.

        Each logit is strictly increasing in x (positive matrices; ``x + tanh(f) tanh(x)`` with
        ``|tanh f| < 1``), so bisection in float64 finds them; returns the remaining aux loss.
        """
        targets = self.quantile_targets.double()
        c = self.channels
        solved = torch.empty(c, 1, 3, dtype=torch.float64)
        for j in range(3):
            t = targets[j]
            lo = torch.full((c, 1, 1), -1.0, dtype=torch.float64)
            hi = torch.full((c, 1, 1), 1.0, dtype=torch.float64)
            for _ in range(64):
                low_ok = self._logits_cumulative(lo) <= t
                high_ok = self._logits_cumulative(hi) >= t
                if bool(low_ok.all() and high_ok.all()):
                    break
                lo = torch.where(low_ok, lo, lo * 2.0)
                hi = torch.where(high_ok, hi, hi * 2.0)
            for _ in range(iterations):
                mid = 0.5 * (lo + hi)
                above = self._logits_cumulative(mid) > t
                hi = torch.where(above, mid, hi)
                lo = torch.where(above, lo, mid)
            solved[:, :, j] = (0.5 * (lo + hi)).view(c, 1)
        self.quantiles.copy_(solved.to(self.quantiles.dtype))
        return float(self.aux_loss().item())

    # -- integer tables ----------------------------------------------------------------------

    @torch.no_grad()
    def build_tables(self, precision: int = PRECISION) -> tuple[CategoricalTables, np.ndarray]:
        """Integer tables for coding ``round(y - median)`` per channel, and the float32 medians.

        The range of each channel spans its learned tail quantiles; values outside it are escaped.
        """
        q = self.quantiles.detach().double()
        med = q[:, 0, 1]
        lo = torch.ceil(med - q[:, 0, 0]).clamp(min=0)
        hi = torch.ceil(q[:, 0, 2] - med).clamp(min=0)
        if torch.any(lo + hi + 1 > _MAX_TABLE):
            raise ValueError(
                "entropy bottleneck quantiles are too far apart to tabulate; "
                "train longer (the aux loss fits them) before building tables"
            )
        medians32 = med.float().numpy()
        rows: list[np.ndarray] = []
        offsets: list[int] = []
        for c in range(self.channels):
            m = float(medians32[c])
            values = torch.arange(-int(lo[c]), int(hi[c]) + 1, dtype=torch.float64)
            v = (values + m).view(1, 1, -1)
            sub = _ChannelView(self, c)
            pmf = sub.bin_probability(v).view(-1).numpy()
            left = torch.sigmoid(sub.logits(v[..., :1] - 0.5)).item()
            right = torch.sigmoid(-sub.logits(v[..., -1:] + 0.5)).item()
            rows.append(quantize_pmf(pmf, left + right, precision))
            offsets.append(-int(lo[c]))
        return stack_tables(rows, offsets, precision), medians32


class _ChannelView:
    """The density of one channel of an :class:`EntropyBottleneck`, evaluated in float64."""

    def __init__(self, eb: EntropyBottleneck, c: int) -> None:
        self.matrices = [F.softplus(m[c : c + 1].double()) for m in eb.matrices]
        self.biases = [b[c : c + 1].double() for b in eb.biases]
        self.factors = [torch.tanh(f[c : c + 1].double()) for f in eb.factors]

    def logits(self, x: Tensor) -> Tensor:
        for i, (m, b) in enumerate(zip(self.matrices, self.biases, strict=True)):
            x = torch.matmul(m, x) + b
            if i < len(self.factors):
                x = x + self.factors[i] * torch.tanh(x)
        return x

    def bin_probability(self, v: Tensor) -> Tensor:
        lower = self.logits(v - 0.5)
        upper = self.logits(v + 0.5)
        sign = -torch.sign(lower + upper)
        return torch.abs(torch.sigmoid(sign * upper) - torch.sigmoid(sign * lower))
