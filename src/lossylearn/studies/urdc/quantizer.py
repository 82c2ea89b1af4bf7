"""Dithered L-level scalar quantizer with shared randomness, and the bitstream it produces.

Bitstream contract (version 1)
------------------------------
* Latents ``y = f(x)`` lie in [-1, 1]^d. The L reconstruction levels are ``c_k = -1 + k * step``,
  ``step = 2 / (L - 1)``, k = 0..L-1.
* Dither: image number ``i`` (its position in the dataset the sender and receiver agree on, i.e.
  ``first_index`` + its position in the stream) gets ``u[i, j]`` for latent ``j`` from a counter-based
  hash, reproducible on any machine from ``(seed, i, j)`` alone::

      key  = splitmix64(seed)
      h    = splitmix64(key + i * d + j)            (uint64 arithmetic, wrapping)
      r    = (h >> 11) * 2**-53                      (uniform in [0, 1))
      u    = (r - 0.5) * step                        (uniform in [-1/(L-1), 1/(L-1)))

  computed in float64, then rounded to float32.
* The sender transmits the level indices ``k = clip(round((y + u + 1) / step), 0, L - 1)``; the
  receiver forms ``c_k - u`` (the dequantized latent) and feeds it to its decoder.
* Each image is one symbol ``s = sum_j k_j * L**(d-1-j)`` (latent 0 most significant) in an alphabet
  of ``A = L**d`` symbols. A batch of N images is packed as ONE mixed-radix integer
  ``V = sum_i s_i * A**i`` (image 0 least significant), written big-endian in
  ``ceil(bits / 8)`` bytes where ``bits = bit_length(A**N - 1) = ceil(N * d * log2 L)``: the payload
  reaches the nominal rate ``d log2 L`` bits per image up to less than one byte per batch.
* A 24-byte header precedes the payload: magic ``b"URDC"``, version (u8), d (u8), L (u16), N (u32),
  seed (u64), first_index (u32), all big-endian. It is counted separately from the payload
  (:attr:`BitstreamSize.header_bytes`), never folded into the per-image rate silently.
"""

from __future__ import annotations

import math
import struct
from dataclasses import dataclass

import numpy as np
import torch

from lossylearn.errors import CodecError, LossylearnError

__all__ = [
    "HEADER_BYTES",
    "BitstreamHeader",
    "BitstreamSize",
    "DitheredQuantizer",
    "shared_dither",
    "pack_symbols",
    "unpack_symbols",
    "encode_bitstream",
    "decode_bitstream",
    "empirical_entropy_bits",
]

_MAGIC = b"URDC"
_VERSION = 1
_HEADER = struct.Struct(">4sBBHIQI")
HEADER_BYTES = _HEADER.size
_MASK64 = (1 << 64) - 1


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64 finaliser on uint64 arrays (wrapping arithmetic)."""
    with np.errstate(over="ignore"):
        z = x + np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        return z ^ (z >> np.uint64(31))


def shared_dither(seed: int, image_indices: np.ndarray, latent_dim: int, levels: int) -> np.ndarray:
    """Dither ``u`` (n, d) float32 for the given image indices, per the bitstream contract."""
    if not 0 <= seed <= _MASK64:
        raise LossylearnError(f"dither seed must be in [0, 2**64), got {seed}")
    idx = np.asarray(image_indices, dtype=np.int64)
    if idx.ndim != 1 or (idx.size and idx.min() < 0):
        raise LossylearnError("image indices must be a 1-D array of non-negative integers")
    key = _splitmix64(np.array([seed], dtype=np.uint64))[0]
    counters = idx.astype(np.uint64)[:, None] * np.uint64(latent_dim) + np.arange(
        latent_dim, dtype=np.uint64
    )
    with np.errstate(over="ignore"):
        h = _splitmix64(counters + key)
    r = (h >> np.uint64(11)).astype(np.float64) * 2.0**-53
    step = 2.0 / (levels - 1)
    return ((r - 0.5) * step).astype(np.float32)


@dataclass(frozen=True)
class DitheredQuantizer:
    """``d`` latents, ``L`` levels evenly spaced on [-1, 1], subtractive dither; R = d log2 L bits."""

    latent_dim: int
    levels: int

    def __post_init__(self) -> None:
        if self.latent_dim < 1 or self.levels < 2 or self.levels > 65535:
            raise LossylearnError(
                f"quantizer needs d >= 1 and 2 <= L <= 65535, got d={self.latent_dim}, L={self.levels}"
            )

    @property
    def step(self) -> float:
        """Spacing of the levels, 2 / (L - 1)."""
        return 2.0 / (self.levels - 1)

    @property
    def alphabet_size(self) -> int:
        """Number of distinct per-image symbols, L**d."""
        return self.levels**self.latent_dim

    @property
    def rate_bits(self) -> float:
        """Nominal rate d log2 L in bits per image."""
        return self.latent_dim * math.log2(self.levels)

    def random_dither(
        self, n: int, generator: torch.Generator, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """Fresh dither for training, uniform on [-step/2, step/2)."""
        u = torch.rand(n, self.latent_dim, generator=generator) - 0.5
        return (u * self.step).to(device)

    def dither_for(
        self, seed: int, image_indices: np.ndarray, device: torch.device | str = "cpu"
    ) -> torch.Tensor:
        """The shared dither of the contract, as a tensor."""
        return torch.from_numpy(
            shared_dither(seed, image_indices, self.latent_dim, self.levels)
        ).to(device)

    def indices(self, latents: torch.Tensor, dither: torch.Tensor) -> torch.Tensor:
        """Level indices (B, d) int64 of ``latents + dither``."""
        k = torch.round((latents + dither + 1.0) / self.step)
        return k.clamp_(0, self.levels - 1).to(torch.int64)

    def dequantize(self, indices: torch.Tensor, dither: torch.Tensor) -> torch.Tensor:
        """Receiver side: level values minus the dither."""
        return indices.to(dither.dtype) * self.step - 1.0 - dither

    def quantize_ste(self, latents: torch.Tensor, dither: torch.Tensor) -> torch.Tensor:
        """Dequantized latents with a straight-through gradient (identity w.r.t. ``latents``)."""
        hard = self.dequantize(self.indices(latents.detach(), dither), dither)
        return latents + (hard - latents).detach()

    def symbols(self, indices: torch.Tensor | np.ndarray) -> np.ndarray:
        """Per-image symbols ``sum_j k_j L**(d-1-j)`` as int64 (latent 0 most significant)."""
        k = np.asarray(
            indices.cpu() if isinstance(indices, torch.Tensor) else indices, dtype=np.int64
        )
        if k.ndim != 2 or k.shape[1] != self.latent_dim:
            raise CodecError(f"indices must have shape (N, {self.latent_dim}), got {k.shape}")
        if k.size and (k.min() < 0 or k.max() >= self.levels):
            raise CodecError(f"indices must lie in 0..{self.levels - 1}")
        weights = self.levels ** np.arange(self.latent_dim - 1, -1, -1, dtype=np.int64)
        return k @ weights

    def indices_from_symbols(self, symbols: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`symbols`: (N,) -> (N, d) int64."""
        s = np.asarray(symbols, dtype=np.int64)
        out = np.empty((s.shape[0], self.latent_dim), dtype=np.int64)
        for j in range(self.latent_dim - 1, -1, -1):
            s, out[:, j] = np.divmod(s, self.levels)
        return out


def _group_size(alphabet: int) -> int:
    """Symbols per 64-bit super-digit: the largest k with alphabet**k <= 2**63."""
    k = 1
    while alphabet ** (k + 1) <= 2**63:
        k += 1
    return k


def payload_bits(n: int, alphabet: int) -> int:
    """Exact payload size in bits for n symbols: bit_length(alphabet**n - 1)."""
    return (alphabet**n - 1).bit_length() if n else 0


def pack_symbols(symbols: np.ndarray, alphabet: int) -> bytes:
    """Pack symbols in 0..alphabet-1 into one mixed-radix integer, big-endian, ceil(bits/8) bytes."""
    s = np.asarray(symbols, dtype=np.int64)
    if s.ndim != 1:
        raise CodecError("symbols must be a 1-D array")
    if alphabet < 2:
        raise CodecError(f"alphabet must have at least 2 symbols, got {alphabet}")
    if s.size and (s.min() < 0 or s.max() >= alphabet):
        raise CodecError(f"symbols must lie in 0..{alphabet - 1}")
    n = s.shape[0]
    k = _group_size(alphabet)
    n_groups = -(-n // k)
    padded = np.zeros(n_groups * k, dtype=np.uint64)
    padded[:n] = s.astype(np.uint64)
    powers = np.array([alphabet**t for t in range(k)], dtype=np.uint64)
    digits = (padded.reshape(n_groups, k) * powers).sum(axis=1, dtype=np.uint64)
    base = alphabet**k
    value = 0
    for digit in digits[::-1].tolist():
        value = value * base + digit
    return value.to_bytes((payload_bits(n, alphabet) + 7) // 8, "big")


def unpack_symbols(payload: bytes, n: int, alphabet: int) -> np.ndarray:
    """Inverse of :func:`pack_symbols`; raises CodecError on a payload of the wrong size or value."""
    expected = (payload_bits(n, alphabet) + 7) // 8
    if len(payload) != expected:
        raise CodecError(f"payload holds {len(payload)} bytes, expected {expected} for {n} symbols")
    value = int.from_bytes(payload, "big")
    if n and value >= alphabet**n:
        raise CodecError("payload value exceeds the symbol range: corrupt bitstream")
    k = _group_size(alphabet)
    base = alphabet**k
    n_groups = -(-n // k)
    digits = []
    for _ in range(n_groups):
        value, digit = divmod(value, base)
        digits.append(digit)
    out = np.empty(n_groups * k, dtype=np.int64)
    d = np.array(digits, dtype=np.uint64)
    for t in range(k):
        d, r = np.divmod(d, np.uint64(alphabet))
        out[t::k] = r.astype(np.int64)
    return out[:n]


@dataclass(frozen=True)
class BitstreamHeader:
    """What a receiver needs besides its decoder: shapes, count, dither seed, first image index."""

    latent_dim: int
    levels: int
    count: int
    seed: int
    first_index: int = 0


@dataclass(frozen=True)
class BitstreamSize:
    """Measured size of one bitstream."""

    count: int
    header_bytes: int
    payload_bytes: int
    payload_bits: int
    nominal_bits_per_image: float

    @property
    def stored_bits_per_image(self) -> float:
        """Payload bits actually written (whole bytes) per image, header excluded."""
        return 8.0 * self.payload_bytes / self.count if self.count else 0.0

    @property
    def total_bits_per_image(self) -> float:
        """Header plus payload bits per image."""
        return 8.0 * (self.header_bytes + self.payload_bytes) / self.count if self.count else 0.0


def encode_bitstream(
    indices: torch.Tensor | np.ndarray, header: BitstreamHeader
) -> tuple[bytes, BitstreamSize]:
    """Header + packed payload for level indices (N, d); returns the bytes and their measured size."""
    q = DitheredQuantizer(header.latent_dim, header.levels)
    symbols = q.symbols(indices)
    if symbols.shape[0] != header.count:
        raise CodecError(f"header says {header.count} images, got {symbols.shape[0]}")
    if not 0 <= header.first_index < 2**32 or header.count >= 2**32:
        raise CodecError("first_index and count must fit in 32 bits")
    payload = pack_symbols(symbols, q.alphabet_size)
    head = _HEADER.pack(
        _MAGIC,
        _VERSION,
        header.latent_dim,
        header.levels,
        header.count,
        header.seed,
        header.first_index,
    )
    size = BitstreamSize(
        count=header.count,
        header_bytes=len(head),
        payload_bytes=len(payload),
        payload_bits=payload_bits(header.count, q.alphabet_size),
        nominal_bits_per_image=q.rate_bits,
    )
    return head + payload, size


def decode_bitstream(data: bytes) -> tuple[np.ndarray, BitstreamHeader]:
    """Parse a bitstream: level indices (N, d) int64 and the header."""
    if len(data) < HEADER_BYTES:
        raise CodecError(
            f"bitstream of {len(data)} bytes is shorter than its {HEADER_BYTES}-byte header"
        )
    magic, version, d, levels, count, seed, first = _HEADER.unpack_from(data)
    if magic != _MAGIC:
        raise CodecError("not a urdc bitstream (bad magic)")
    if version != _VERSION:
        raise CodecError(f"unsupported urdc bitstream version {version}")
    q = DitheredQuantizer(d, levels)
    symbols = unpack_symbols(data[HEADER_BYTES:], count, q.alphabet_size)
    return q.indices_from_symbols(symbols), BitstreamHeader(d, levels, count, seed, first)


def empirical_entropy_bits(symbols: np.ndarray, alphabet: int) -> float:
    """Plug-in entropy (bits per symbol) of the observed symbols."""
    s = np.asarray(symbols, dtype=np.int64)
    if s.size == 0:
        return 0.0
    counts = np.bincount(s, minlength=alphabet).astype(np.float64)
    p = counts[counts > 0] / s.size
    return float(-(p * np.log2(p)).sum())
