"""Zero-mean Gaussian conditional entropy model with a fixed scale table (Balle et al. 2018).

The hyper-synthesis predicts a scale ``s`` per latent element. For coding, ``s`` is replaced by the
smallest entry of a fixed, log-spaced scale table that is >= ``s`` (an index ``i``); each table
entry has its own integer table, built once by :meth:`GaussianConditional.build_tables`. The
decoder therefore only needs the index, which ``integer_hyper.py`` computes with integer arithmetic
so that it is identical on every machine and thread count.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from scipy.special import ndtr, ndtri
from torch import Tensor, nn

from lossylearn.codecs.learned.entropy_bottleneck import (
    LIKELIHOOD_BOUND,
    ste_round,
    uniform_noise,
)
from lossylearn.codecs.learned.gdn import lower_bound
from lossylearn.codecs.learned.tables import (
    PRECISION,
    CategoricalTables,
    quantize_pmf,
    stack_tables,
)

__all__ = ["GaussianConditional", "scale_indexes", "scale_table"]

SCALE_MIN = 0.11
SCALE_MAX = 256.0
SCALE_LEVELS = 64


def scale_table(
    minimum: float = SCALE_MIN, maximum: float = SCALE_MAX, levels: int = SCALE_LEVELS
) -> np.ndarray:
    """Log-spaced scales ``minimum .. maximum`` (float64), the quantization grid for scales."""
    return np.exp(np.linspace(math.log(minimum), math.log(maximum), levels))


def _std_normal_cdf(x: Tensor) -> Tensor:
    return 0.5 * torch.erfc(-x * (2.0**-0.5))


class GaussianConditional(nn.Module):
    """p(y | s) = N(0, s^2) convolved with U(-1/2, 1/2), evaluated at integers."""

    def __init__(self, *, tail_mass: float = 1e-9, scale_bound: float = SCALE_MIN) -> None:
        super().__init__()
        self.tail_mass = float(tail_mass)
        self.scale_bound = float(scale_bound)

    def likelihood(self, y: Tensor, scales: Tensor) -> Tensor:
        """Probability of the unit bin around each element of ``y`` given its scale."""
        s = lower_bound(scales, self.scale_bound)
        v = torch.abs(y)
        upper = _std_normal_cdf((0.5 - v) / s)
        lower = _std_normal_cdf((-0.5 - v) / s)
        return lower_bound(upper - lower, LIKELIHOOD_BOUND)

    def forward(
        self, y: Tensor, scales: Tensor, *, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """(y_hat for the decoder, likelihoods). Training mode adds noise for the rate term."""
        y_hat = ste_round(y)
        y_rate = y + uniform_noise(y, generator) if self.training else y_hat
        return y_hat, self.likelihood(y_rate, scales)

    def build_tables(self, table: np.ndarray, precision: int = PRECISION) -> CategoricalTables:
        """One integer table per scale of ``table``, covering +-(tail quantile) around zero."""
        z = -float(ndtri(self.tail_mass / 2.0))
        rows: list[np.ndarray] = []
        offsets: list[int] = []
        for s in np.asarray(table, dtype=np.float64):
            k = int(math.ceil(z * s))
            values = np.arange(-k, k + 1, dtype=np.float64)
            pmf = ndtr((values + 0.5) / s) - ndtr((values - 0.5) / s)
            tail = 2.0 * ndtr(-(k + 0.5) / s)
            rows.append(quantize_pmf(pmf, tail, precision))
            offsets.append(-k)
        return stack_tables(rows, offsets, precision)


def scale_indexes(scales: np.ndarray, table: np.ndarray) -> np.ndarray:
    """Index of the smallest table scale >= each scale (the last index for larger ones)."""
    idx = np.searchsorted(np.asarray(table)[:-1], np.asarray(scales), side="left")
    return idx.astype(np.int64)
