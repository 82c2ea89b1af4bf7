"""An upper bound on what a store can say about the clean images: I(X; stored) per pixel.

Two bounds hold at once, and the audit reports the smaller (``basis`` names it):

* **stored bits**: the stored image is a string of the store's bytes, so
  I(X; Z) <= H(Z) <= the bits it takes (the manifest's ``bits_per_pixel``, measured from the real
  bytes, shared headers included; the payloads are self-delimiting codestreams).
* **the noise channel**: the store is a deterministic function of the noisy images (the codec
  and its quality choice see only them), so by data processing I(X; Z) <= I(X; Y). Rounding and
  clipping (or wrapping) to 0..255 are deterministic functions of X + N as well, so the bound of
  the unclipped, unrounded channel stays valid for the stored noisy image. The noise is drawn
  independently per value, so I(X; Y) <= sum over values of I(X_i; Y_i), and per value:

  - Gaussian (float sampler): 1/2 log2(1 + Var(X_i) / sigma^2), the Gaussian channel's capacity
    under the variance of X_i;
  - Laplace (float sampler): 1/2 log2(2 pi e (Var(X_i) + 2 b^2)) - log2(2 e b): h(Y_i) is at most
    the Gaussian entropy of its variance, and h(N) = log2(2 e b);
  - integer noise (``--discrete``): 1/2 log2(2 pi e (Var(X_i) + Var(N) + 1/12)) - H(N), since
    H(Y) = h(Y + U) for a uniform dither U, with Var(N) and H(N) the manifest's exact figures
    (the paper's eq. (16) with H(Y) bounded by its variance).

Var(X_i) is the variance of value i (pixel position and channel) over the store's own clean
images: the bound is for "a random individual of this store", the attacker's question. Labels are
stored in the clear and are not counted: they add at most log2(number of classes) bits per image.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lossylearn.records import Record
from lossylearn.store.manifest import Manifest

__all__ = ["LeakageBound", "leakage_bound"]


@dataclass(frozen=True)
class LeakageBound(Record):
    """``audit.json``'s ``leakage_bound`` section (bits per pixel position, all channels)."""

    bits_per_pixel: float
    bits_per_image: float
    basis: str
    stored_bits_per_pixel: float
    channel_bits_per_pixel: float
    channel: str
    clean_variance_mean: float
    label_bits_per_image: float
    note: str


def _channel(var: np.ndarray, noise: dict[str, object]) -> tuple[np.ndarray, str]:
    kind = noise["kind"]
    scale = float(noise["sigma"] if kind == "gaussian" else noise["b"])  # type: ignore[arg-type]
    if noise.get("discrete"):
        vn, hn = float(noise["integer_variance"]), float(noise["entropy_bits"])  # type: ignore[arg-type]
        bits = 0.5 * np.log2(2 * math.pi * math.e * (var + vn + 1.0 / 12.0)) - hn
        return np.maximum(bits, 0.0), (
            f"integer {kind} noise: 1/2 log2(2 pi e (Var X + Var N + 1/12)) - H(N), "
            f"Var N = {vn:.4g}, H(N) = {hn:.4f} bits"
        )
    if kind == "gaussian":
        return 0.5 * np.log2(1.0 + var / scale**2), (
            f"Gaussian channel, sigma {scale:.4g}: 1/2 log2(1 + Var X / sigma^2)"
        )
    bits = 0.5 * np.log2(2 * math.pi * math.e * (var + 2 * scale**2)) - math.log2(
        2 * math.e * scale
    )
    return np.maximum(bits, 0.0), (
        f"Laplace channel, b {scale:.4g}: 1/2 log2(2 pi e (Var X + 2 b^2)) - log2(2 e b)"
    )


def leakage_bound(manifest: Manifest, clean: np.ndarray) -> LeakageBound:
    """The bound for the store of ``manifest`` whose clean images (its sources, one per stored
    image) are ``clean`` (uint8 N, H, W, C)."""
    h, w, c = manifest.image_shape
    var = clean.reshape(len(clean), -1).astype(np.float64).var(axis=0)
    per_value, channel = _channel(var, manifest.noise)
    channel_bpp = float(per_value.sum() / (h * w))
    stored_bpp = float(manifest.stats.bits_per_pixel)
    best = min(stored_bpp, channel_bpp)
    basis = "stored bits" if stored_bpp <= channel_bpp else "noise channel"
    n_classes = len(manifest.dataset.get("classes") or []) or 1
    return LeakageBound(
        bits_per_pixel=best, bits_per_image=best * h * w, basis=basis,
        stored_bits_per_pixel=stored_bpp, channel_bits_per_pixel=channel_bpp, channel=channel,
        clean_variance_mean=float(var.mean()), label_bits_per_image=math.log2(n_classes),
        note=(
            "upper bound on I(clean image; stored image) per pixel: the smaller of the stored bits "
            "and the noise channel's bound (data processing: the codec sees only the noisy image; "
            "rounding and clipping are functions of it, so the unclipped channel's bound holds). "
            "Var X from the store's own clean images. Labels are stored in the clear, not counted."
        ),
    )  # fmt: skip
