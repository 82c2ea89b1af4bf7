"""Hyper-synthesis in integer arithmetic, so that scale indexes are bit-exact everywhere.

The decoder of the scale hyperprior must find, for every latent, the same scale-table index the
encoder used; one differing index desynchronizes the entropy decoder. Float convolutions can differ
in their last bits between thread counts and machines, so the trained float ``h_s`` is frozen into a
fixed-point copy (the idea of Balle, Johnston, Minnen 2019, "Integer networks for data compression
with latent-variable models", applied after training):

* weights ``W_q = round(W * 2^F)``, biases ``b_q = round(b * 2^(2F))``, activations ``a_q ~ a * 2^F``;
* each layer: exact int64 accumulation ``sum W_q a_q + b_q``, then ``(acc + 2^(F-1)) >> F``, ReLU;
* the output scale ``s_q`` picks the table entry nearest in log-scale by comparing against integer
  thresholds ``round(sqrt(t_i t_{i+1}) * 2^F)``.

Integer sums are exact and independent of evaluation order, so the indexes are identical on every
platform. The fixed-point copy and thresholds are built once after training and saved.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from torch import nn

from lossylearn.errors import CodecError

__all__ = ["IntegerHyperSynthesis", "IntegerLayer", "FRAC_BITS", "log_midpoints"]

FRAC_BITS = 16
_LIMIT = 2**62


@dataclass(frozen=True)
class IntegerLayer:
    """One fixed-point convolution (transposed ones are stored as equivalent stride-1 convs)."""

    weight: np.ndarray  # (C_out, C_in, k, k) int64, conv layout (already flipped for transposed)
    bias: np.ndarray  # (C_out,) int64 at scale 2^(2F)
    stride: int  # stride of the conv, or the dilation factor of a transposed conv's input
    transposed: bool
    padding: tuple[int, int]  # (before, after) zero padding applied to (dilated) input
    relu: bool


def _conv(x: np.ndarray, w: np.ndarray, stride: int) -> np.ndarray:
    """Exact integer cross-correlation of (B, C, H, W) with (O, C, k, k), no padding."""
    k = w.shape[-1]
    win = sliding_window_view(x, (k, k), axis=(2, 3))[:, :, ::stride, ::stride]
    # (B, C, H', W', k, k) x (O, C, k, k) -> (B, H', W', O); integer dot products are exact
    out = np.tensordot(win, w, axes=([1, 4, 5], [1, 2, 3]))
    return np.ascontiguousarray(out.transpose(0, 3, 1, 2))


def _dilate(x: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return x
    b, c, h, w = x.shape
    out = np.zeros((b, c, (h - 1) * factor + 1, (w - 1) * factor + 1), dtype=x.dtype)
    out[:, :, ::factor, ::factor] = x
    return out


class IntegerHyperSynthesis:
    """Fixed-point copy of a ``nn.Sequential`` of Conv2d / ConvTranspose2d / ReLU layers."""

    def __init__(self, layers: list[IntegerLayer], frac_bits: int = FRAC_BITS) -> None:
        if not layers:
            raise CodecError("integer hyper-synthesis has no layers")
        self.layers = layers
        self.frac_bits = int(frac_bits)

    @classmethod
    def from_sequential(
        cls, seq: nn.Sequential, frac_bits: int = FRAC_BITS
    ) -> IntegerHyperSynthesis:
        """Freeze a trained float ``h_s`` (weights are read in float64 and rounded once)."""
        one = float(1 << frac_bits)
        layers: list[IntegerLayer] = []
        modules = list(seq)
        for i, m in enumerate(modules):
            if isinstance(m, nn.ReLU):
                continue
            relu = i + 1 < len(modules) and isinstance(modules[i + 1], nn.ReLU)
            w = m.weight.detach().double().cpu().numpy()
            b = m.bias.detach().double().cpu().numpy()
            k = int(w.shape[-1])
            (s,), (p,) = set(m.stride), set(m.padding)
            if isinstance(m, nn.ConvTranspose2d):
                (op,) = set(m.output_padding)
                w = np.flip(w, axis=(2, 3)).transpose(1, 0, 2, 3)
                pad = (k - 1 - p, k - 1 - p + op)
                transposed = True
            elif isinstance(m, nn.Conv2d):
                pad = (p, p)
                transposed = False
            else:
                raise CodecError(f"cannot freeze layer {type(m).__name__} into integers")
            layers.append(
                IntegerLayer(
                    weight=np.rint(np.ascontiguousarray(w) * one).astype(np.int64),
                    bias=np.rint(b * one * one).astype(np.int64),
                    stride=int(s),
                    transposed=transposed,
                    padding=(int(pad[0]), int(pad[1])),
                    relu=relu,
                )
            )
        return cls(layers, frac_bits)

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """Run on fixed-point input (B, C, H, W) int64 (value * 2^F); returns fixed-point output."""
        a = np.asarray(x, dtype=np.int64)
        half = np.int64(1 << (self.frac_bits - 1))
        for layer in self.layers:
            bound = int(np.abs(a).max(initial=0)) * int(
                np.abs(layer.weight).sum(axis=(1, 2, 3)).max()
            )
            if bound + int(np.abs(layer.bias).max(initial=0)) >= _LIMIT:
                raise CodecError("hyper-synthesis overflowed its integer range (corrupt latents?)")
            if layer.transposed:
                a = _dilate(a, layer.stride)
            lo, hi = layer.padding
            a = np.pad(a, ((0, 0), (0, 0), (lo, hi), (lo, hi)))
            acc = _conv(a, layer.weight, 1 if layer.transposed else layer.stride)
            acc += layer.bias[None, :, None, None]
            a = (acc + half) >> self.frac_bits
            if layer.relu:
                np.maximum(a, 0, out=a)
        return a

    # -- persistence (shapes come from the config, see checkpoint.py) ------------------------

    def spec(self) -> dict:
        """The layer structure, for config.json."""
        return {
            "frac_bits": self.frac_bits,
            "layers": [
                {
                    "weight_shape": list(layer.weight.shape),
                    "stride": layer.stride,
                    "transposed": layer.transposed,
                    "padding": list(layer.padding),
                    "relu": layer.relu,
                }
                for layer in self.layers
            ],
        }

    def arrays(self) -> dict[str, np.ndarray]:
        out: dict[str, np.ndarray] = {}
        for i, layer in enumerate(self.layers):
            out[f"layer{i}.weight"] = layer.weight
            out[f"layer{i}.bias"] = layer.bias
        return out

    @classmethod
    def from_spec(cls, spec: dict, arrays: dict[str, np.ndarray]) -> IntegerHyperSynthesis:
        layers = []
        for i, ls in enumerate(spec["layers"]):
            w = np.asarray(arrays[f"layer{i}.weight"], dtype=np.int64)
            b = np.asarray(arrays[f"layer{i}.bias"], dtype=np.int64)
            if list(w.shape) != list(ls["weight_shape"]) or b.shape != (w.shape[0],):
                raise CodecError(f"integer hyper-synthesis layer {i} does not match its config")
            layers.append(
                IntegerLayer(
                    weight=w,
                    bias=b,
                    stride=int(ls["stride"]),
                    transposed=bool(ls["transposed"]),
                    padding=(int(ls["padding"][0]), int(ls["padding"][1])),
                    relu=bool(ls["relu"]),
                )
            )
        return cls(layers, int(spec["frac_bits"]))


def log_midpoints(table: np.ndarray, frac_bits: int = FRAC_BITS) -> np.ndarray:
    """Integer thresholds between neighbouring table scales (geometric means), at scale 2^F."""
    t = np.asarray(table, dtype=np.float64)
    return np.rint(np.sqrt(t[:-1] * t[1:]) * float(1 << frac_bits)).astype(np.int64)
