"""Entropy coding of a trained model with constriction: images -> bytes -> images.

Bitstream of one image (no header: shape and quality are known to the caller, the store keeps them
in its manifest; see ``codec.py`` for the standalone container):

* one constriction range-coder stream (queue, 32-bit words, 64-bit state);
* factorized model: the symbols ``round(y - median_c)`` grouped by channel ``c`` (raster order within
  a channel), each with its channel's integer table; then the excess of escaped values;
* hyperprior: first ``z`` exactly like the factorized model, then ``round(y)`` grouped by scale-table
  index (ascending), each group with its table; the decoder recomputes the indexes from the decoded
  ``z`` with the integer hyper-synthesis;
* escaped values: a direction bit, the bit length ``n`` of the excess (6 bits), then its ``n - 1``
  low bits (in chunks of at most 16), all with uniform models: ``7 + n - 1`` bits.

Keeping tiny streams tiny: constriction emits whole 32-bit words and its seal emits the word that
holds the smallest multiple of 2^32 in the final interval. Here the words are written big-endian and
the tail is shortened to the fewest bytes that still decode: the stream is rounded up to a shorter
byte length (the decoder pads missing bytes with zeros, which constriction's decoder also does for
missing words) and the shortest length that decodes to the same symbols is kept (checked by
decoding). The overhead over the ideal code length is then about 1-2 bits of sealing plus the
rounding up to whole bytes, instead of up to 32 bits. Those are the bytes that are stored and counted.

Integrity: a payload is accepted only if it is exactly the canonical (shortest) encoding of the
symbols it decodes to. That costs no bits but catches only part of the damage (an optimal code has
almost no redundancy: measured on a trained MNIST model, ~70% of bit flips and <15% of truncations).
``check_bits = k`` (1..16) appends the low k bits of the CRC-32 of all coded values as one more
uniform symbol inside the stream: it costs k bits per image (not a whole byte) and lets through
only ~2^-k of damaged payloads. The ``.llc`` container (CRC-32 + length) and the store (SHA-256
per shard) detect damage with certainty regardless.

Determinism: the tables and the integer hyper-synthesis are fixed integers saved with the
checkpoint; the analysis/synthesis networks run in float64, so rounding a reconstruction to uint8
does not depend on float summation order in practice.
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import constriction
import numpy as np
import torch

from lossylearn.codecs.learned.gaussian_conditional import scale_table
from lossylearn.codecs.learned.integer_hyper import (
    FRAC_BITS,
    IntegerHyperSynthesis,
    log_midpoints,
)
from lossylearn.codecs.learned.models import (
    FactorizedPrior,
    ScaleHyperprior,
    crop,
    pad_to_multiple,
)
from lossylearn.codecs.learned.tables import PRECISION, CategoricalTables
from lossylearn.errors import CodecError

__all__ = ["CompressionModel", "EntropyParameters", "TableCoder"]

_LEN_MODEL = constriction.stream.model.Uniform(64)
_DIR_MODEL = constriction.stream.model.Uniform(2)
_CHUNK = 16
_CHUNK_MODELS = {k: constriction.stream.model.Uniform(1 << k) for k in range(1, _CHUNK + 1)}
_MAX_EXCESS_BITS = 40


# --------------------------------------------------------------------------------------------
# byte framing


def _words_to_bytes(words: np.ndarray) -> bytes:
    return np.asarray(words, dtype=np.uint32).astype(">u4").tobytes()


def _bytes_to_words(data: bytes) -> np.ndarray:
    pad = (-len(data)) % 4
    return np.frombuffer(data + b"\0" * pad, dtype=">u4").astype(np.uint32)


def _round_up(data: bytes, length: int) -> bytes | None:
    """Smallest byte string of ``length`` bytes that, zero-padded, is >= ``data`` (or None)."""
    head, tail = data[:length], data[length:]
    if not any(tail):
        return head
    value = int.from_bytes(head, "big") + 1 if head else 1
    if value >= 1 << (8 * length):
        return None
    return value.to_bytes(length, "big")


def _shortest(full: bytes, decodes: Callable[[bytes], bool]) -> bytes:
    """Shortest rounding of ``full`` (down to 8 bytes less) that still decodes correctly."""
    lo, hi = max(0, len(full) - 8), len(full)  # hi is known to decode
    best = full
    while lo < hi:
        mid = (lo + hi) // 2
        cand = _round_up(full, mid)
        if cand is not None and decodes(cand):
            best, hi = cand, mid
        else:
            lo = mid + 1
    return best


# --------------------------------------------------------------------------------------------
# table coding


class TableCoder:
    """Encodes integer values with a set of :class:`CategoricalTables` (escape + bypass)."""

    def __init__(self, tables: CategoricalTables) -> None:
        self.tables = tables
        self._models: dict[int, Any] = {}

    def _model(self, t: int) -> Any:
        m = self._models.get(t)
        if m is None:
            m = constriction.stream.model.Categorical(self.tables.probabilities(t), perfect=False)
            self._models[t] = m
        return m

    def encode(self, enc: Any, values: np.ndarray, ids: np.ndarray) -> None:
        """Append ``values`` (int64, flat) coded with tables ``ids`` (flat) to range encoder ``enc``."""
        offsets, lengths = self.tables.offsets[ids], self.tables.lengths[ids]
        sym = values - offsets
        escaped = (sym < 0) | (sym >= lengths)
        sym = np.where(escaped, lengths, sym).astype(np.int32)
        for t in np.unique(ids):
            enc.encode(sym[ids == t], self._model(int(t)))
        for i in np.flatnonzero(escaped):
            below = values[i] < offsets[i]
            excess = (
                int(offsets[i] - values[i])
                if below
                else int(values[i] - offsets[i] - lengths[i] + 1)
            )
            n = excess.bit_length()
            if n > _MAX_EXCESS_BITS:
                raise CodecError(f"latent value {int(values[i])} is too large to code")
            enc.encode(0 if below else 1, _DIR_MODEL)
            enc.encode(n - 1, _LEN_MODEL)
            rest = n - 1
            while rest > 0:
                size = min(_CHUNK, rest)
                rest -= size
                enc.encode((excess >> rest) & ((1 << size) - 1), _CHUNK_MODELS[size])

    def decode(self, dec: Any, ids: np.ndarray) -> np.ndarray:
        """Inverse of :meth:`encode` for the same ``ids``; CodecError on an invalid stream."""
        try:
            return self._decode(dec, ids)
        except (AssertionError, ValueError, RuntimeError, OverflowError) as err:
            if isinstance(err, CodecError):
                raise
            raise CodecError(f"corrupt learned-codec payload ({err})") from None

    def _decode(self, dec: Any, ids: np.ndarray) -> np.ndarray:
        sym = np.empty(ids.shape, dtype=np.int64)
        for t in np.unique(ids):
            where = ids == t
            sym[where] = dec.decode(self._model(int(t)), int(where.sum()))
        offsets, lengths = self.tables.offsets[ids], self.tables.lengths[ids]
        values = sym + offsets
        for i in np.flatnonzero(sym == lengths):
            above = int(dec.decode(_DIR_MODEL))
            n = int(dec.decode(_LEN_MODEL)) + 1
            if n > _MAX_EXCESS_BITS:
                raise CodecError("corrupt learned-codec payload (impossible escape length)")
            excess, rest = 1, n - 1
            while rest > 0:
                size = min(_CHUNK, rest)
                rest -= size
                excess = (excess << size) | int(dec.decode(_CHUNK_MODELS[size]))
            values[i] = offsets[i] + lengths[i] - 1 + excess if above else offsets[i] - excess
        return values

    def estimate_bits(self, values: np.ndarray, ids: np.ndarray) -> float:
        """Ideal code length of the values under the integer tables (escapes: their bypass bits)."""
        bits = self.tables.bits(ids, values)
        esc = ~np.isfinite(bits)
        total = float(bits[~esc].sum())
        if esc.any():
            t = ids[esc]
            total += float(
                (
                    self.tables.precision - np.log2(self.tables.freqs[t, self.tables.lengths[t]])
                ).sum()
            )
            off, ln, v = self.tables.offsets[t], self.tables.lengths[t], values[esc]
            excess = np.where(v < off, off - v, v - off - ln + 1)
            total += float((1 + 6 + np.floor(np.log2(excess))).sum())
        return total


# --------------------------------------------------------------------------------------------
# the frozen entropy parameters of a trained model


@dataclass(frozen=True)
class EntropyParameters:
    """Everything the entropy coder needs beyond the float networks; built once after training."""

    z_tables: CategoricalTables  # entropy bottleneck (of y for factorized, of z for hyperprior)
    z_medians: np.ndarray  # (C,) float32
    y_tables: CategoricalTables | None = None  # Gaussian conditional, one table per scale
    scales: np.ndarray | None = None  # (L,) float64 scale table
    thresholds: np.ndarray | None = None  # (L-1,) int64, fixed point
    hyper: IntegerHyperSynthesis | None = None

    @classmethod
    def build(cls, model: FactorizedPrior | ScaleHyperprior) -> EntropyParameters:
        """The CDF update: integer tables from the trained densities (call once, then save)."""
        z_tables, medians = model.entropy_bottleneck.build_tables(PRECISION)
        if isinstance(model, FactorizedPrior):
            return cls(z_tables, medians)
        table = scale_table()
        return cls(
            z_tables,
            medians,
            y_tables=model.gaussian_conditional.build_tables(table, PRECISION),
            scales=table,
            thresholds=log_midpoints(table, FRAC_BITS),
            hyper=IntegerHyperSynthesis.from_sequential(model.h_s, FRAC_BITS),
        )

    def spec(self) -> dict[str, Any]:
        """Shapes and settings of the saved arrays (goes into config.json)."""
        out: dict[str, Any] = {
            "precision": self.z_tables.precision,
            "z_tables_shape": list(self.z_tables.freqs.shape),
        }
        if self.y_tables is not None and self.hyper is not None and self.scales is not None:
            out["y_tables_shape"] = list(self.y_tables.freqs.shape)
            out["scale_levels"] = int(self.scales.size)
            out["hyper"] = self.hyper.spec()
        return out

    def arrays(self) -> dict[str, np.ndarray]:
        out = {f"z_tables.{k}": v for k, v in self.z_tables.to_arrays().items()}
        out["z_medians"] = self.z_medians
        if self.y_tables is not None and self.hyper is not None:
            out.update({f"y_tables.{k}": v for k, v in self.y_tables.to_arrays().items()})
            out["scales"] = np.asarray(self.scales)
            out["thresholds"] = np.asarray(self.thresholds)
            out.update({f"hyper.{k}": v for k, v in self.hyper.arrays().items()})
        return out

    @classmethod
    def from_saved(cls, spec: dict[str, Any], arrays: dict[str, np.ndarray]) -> EntropyParameters:
        """Rebuild from :meth:`spec` and :meth:`arrays`, checking every shape against the spec."""

        def sub(prefix: str) -> dict[str, np.ndarray]:
            return {k[len(prefix) :]: v for k, v in arrays.items() if k.startswith(prefix)}

        try:
            prec = int(spec["precision"])
            z_tables = CategoricalTables.from_arrays(sub("z_tables."), prec)
            if list(z_tables.freqs.shape) != list(spec["z_tables_shape"]):
                raise CodecError("saved entropy tables do not match the checkpoint config")
            medians = np.asarray(arrays["z_medians"], dtype=np.float32)
            if medians.shape != (z_tables.num_tables,):
                raise CodecError("saved medians do not match the entropy tables")
            if "y_tables_shape" not in spec:
                return cls(z_tables, medians)
            y_tables = CategoricalTables.from_arrays(sub("y_tables."), prec)
            scales = np.asarray(arrays["scales"], dtype=np.float64)
            thresholds = np.asarray(arrays["thresholds"], dtype=np.int64)
            levels = int(spec["scale_levels"])
            if (
                list(y_tables.freqs.shape) != list(spec["y_tables_shape"])
                or scales.shape != (levels,)
                or thresholds.shape != (levels - 1,)
                or y_tables.num_tables != levels
            ):
                raise CodecError("saved scale tables do not match the checkpoint config")
            hyper = IntegerHyperSynthesis.from_spec(spec["hyper"], sub("hyper."))
        except KeyError as err:
            raise CodecError(f"checkpoint lacks the entropy array {err}") from None
        return cls(z_tables, medians, y_tables, scales, thresholds, hyper)


# --------------------------------------------------------------------------------------------
# images <-> bytes


@dataclass(frozen=True)
class _Latents:
    """The integer symbols of one image and the table of each (flat, in coding order)."""

    z: np.ndarray
    z_ids: np.ndarray
    y: np.ndarray | None = None
    y_ids: np.ndarray | None = None


class CompressionModel:
    """A trained model frozen for coding: float64 networks + :class:`EntropyParameters`."""

    def __init__(
        self,
        model: FactorizedPrior | ScaleHyperprior,
        params: EntropyParameters,
        *,
        check_bits: int = 0,
    ) -> None:
        if not isinstance(check_bits, int) or not 0 <= check_bits <= _CHUNK:
            raise CodecError(f"check_bits must be an integer 0..{_CHUNK}, got {check_bits!r}")
        self.check_bits = check_bits
        self.config = model.config
        self.hyperprior = isinstance(model, ScaleHyperprior)
        if self.hyperprior != (params.y_tables is not None):
            raise CodecError("entropy parameters do not match the model architecture")
        if params.z_tables.num_tables != model.entropy_bottleneck.channels:
            raise CodecError("entropy tables do not match the model's latent channels")
        self.net = copy.deepcopy(model).double().eval().cpu()
        for p in self.net.parameters():
            p.requires_grad_(False)
        self.params = params
        self.z_coder = TableCoder(params.z_tables)
        self.y_coder = TableCoder(params.y_tables) if params.y_tables is not None else None
        self._medians = torch.from_numpy(params.z_medians.astype(np.float64)).view(1, -1, 1, 1)

    # -- shapes --------------------------------------------------------------------------------

    def latent_shapes(
        self, height: int, width: int
    ) -> tuple[tuple[int, int, int], tuple[int, int, int] | None]:
        """Shapes of (first coded latent, second coded latent) for an image of this size."""
        s = self.config.stride
        hp, wp = -(-height // s) * s, -(-width // s) * s
        f = 2**self.config.downsamples
        y_shape = (self.config.latent_channels, hp // f, wp // f)
        if not self.hyperprior:
            return y_shape, None
        g = f * 2**self.config.hyper_downsamples
        return (self.config.hyper_channels, hp // g, wp // g), y_shape

    # -- analysis ------------------------------------------------------------------------------

    def _to_tensor(self, images: np.ndarray) -> torch.Tensor:
        arr = np.asarray(images)
        if arr.dtype != np.uint8 or arr.ndim != 4 or arr.shape[-1] != self.config.in_channels:
            raise CodecError(
                f"the learned codec takes uint8 images (N, H, W, {self.config.in_channels}), "
                f"got {arr.dtype} {arr.shape}"
            )
        return torch.from_numpy(np.ascontiguousarray(arr)).permute(0, 3, 1, 2).double() / 255.0

    def _analysis(self, images: np.ndarray) -> torch.Tensor:
        return self.net.g_a(pad_to_multiple(self._to_tensor(images), self.config.stride))

    @torch.no_grad()
    def _analyse(self, images: np.ndarray) -> list[_Latents]:
        y = self._analysis(images)
        if not self.hyperprior:
            q = torch.round(y - self._medians).to(torch.int64).numpy()
            ids = np.broadcast_to(np.arange(q.shape[1])[:, None, None], q.shape[1:]).ravel()
            return [_Latents(q[b].ravel(), ids) for b in range(q.shape[0])]
        z = self.net.h_a(torch.abs(y))
        zq = torch.round(z - self._medians).to(torch.int64).numpy()
        z_ids = np.broadcast_to(np.arange(zq.shape[1])[:, None, None], zq.shape[1:]).ravel()
        y_ids = self._scale_ids(zq)
        yq = torch.round(y).to(torch.int64).numpy()
        return [
            _Latents(zq[b].ravel(), z_ids, yq[b].ravel(), y_ids[b].ravel())
            for b in range(zq.shape[0])
        ]

    def _scale_ids(self, zq: np.ndarray) -> np.ndarray:
        """Scale-table indexes from integer hyper-latents (B, C, h, w): integer arithmetic only."""
        p = self.params
        assert p.hyper is not None and p.thresholds is not None
        one = 1 << p.hyper.frac_bits
        med = np.rint(p.z_medians.astype(np.float64) * one).astype(np.int64)
        s = p.hyper(zq * one + med[None, :, None, None])
        return np.searchsorted(p.thresholds, s, side="left").astype(np.int64)

    # -- coding --------------------------------------------------------------------------------

    def _check_symbol(self, lat: _Latents) -> int:
        """The optional check: low ``check_bits`` of the CRC-32 of every coded value."""
        crc = zlib.crc32(lat.z.astype("<i8").tobytes())
        if lat.y is not None:
            crc = zlib.crc32(lat.y.astype("<i8").tobytes(), crc)
        return crc & ((1 << self.check_bits) - 1)

    def _encode_latents(self, lat: _Latents) -> bytes:
        enc = constriction.stream.queue.RangeEncoder()
        self.z_coder.encode(enc, lat.z, lat.z_ids)
        if self.y_coder is not None:
            self.y_coder.encode(enc, lat.y, lat.y_ids)
        if self.check_bits:
            enc.encode(self._check_symbol(lat), _CHUNK_MODELS[self.check_bits])
        return _words_to_bytes(enc.get_compressed())

    def _read_check(self, dec: Any) -> int | None:
        if not self.check_bits:
            return None
        try:
            return int(dec.decode(_CHUNK_MODELS[self.check_bits]))
        except (AssertionError, ValueError, RuntimeError) as err:
            raise CodecError(f"corrupt learned-codec payload ({err})") from None

    def _decodes_to(self, data: bytes, lat: _Latents) -> bool:
        dec = constriction.stream.queue.RangeDecoder(_bytes_to_words(data))
        try:
            if not np.array_equal(self.z_coder.decode(dec, lat.z_ids), lat.z):
                return False
            if self.y_coder is not None and not np.array_equal(
                self.y_coder.decode(dec, lat.y_ids), lat.y
            ):
                return False
            check = self._read_check(dec)
        except CodecError:
            return False
        return check is None or check == self._check_symbol(lat)

    def _canonical(self, lat: _Latents) -> bytes:
        return _shortest(self._encode_latents(lat), lambda c: self._decodes_to(c, lat))

    def compress(self, images: np.ndarray) -> list[bytes]:
        """One payload per image of the uint8 batch (N, H, W, C)."""
        return [self._canonical(lat) for lat in self._analyse(images)]

    def _decode_latents(self, payload: bytes, height: int, width: int) -> _Latents:
        first, second = self.latent_shapes(height, width)
        n_first = int(np.prod(first))
        dec = constriction.stream.queue.RangeDecoder(_bytes_to_words(payload))
        z_ids = np.repeat(np.arange(first[0]), n_first // first[0])
        z = self.z_coder.decode(dec, z_ids)
        if self.y_coder is None:
            lat = _Latents(z, z_ids)
        else:
            assert second is not None
            y_ids = self._scale_ids(z.reshape(1, *first)).ravel()
            lat = _Latents(z, z_ids, self.y_coder.decode(dec, y_ids), y_ids)
        check = self._read_check(dec)
        if check is not None and check != self._check_symbol(lat):
            raise CodecError("corrupt or truncated learned-codec payload (check bits differ)")
        return lat

    def _check_canonical(self, payload: bytes, lat: _Latents) -> None:
        full = self._encode_latents(lat)
        n = len(payload)
        ok = len(full) - 8 <= n <= len(full) and _round_up(full, n) == payload
        if ok and n > max(0, len(full) - 8):
            shorter = _round_up(full, n - 1)
            ok = shorter is None or not self._decodes_to(shorter, lat)
        if not ok:
            raise CodecError(
                "corrupt or truncated learned-codec payload (it is not a valid stream)"
            )

    @torch.no_grad()
    def decompress(self, payloads: Sequence[bytes], shape: tuple[int, int, int]) -> np.ndarray:
        """Images (N, H, W, C) uint8 from payloads of images of ``shape`` = (H, W, C)."""
        h, w, c = (int(v) for v in shape)
        if c != self.config.in_channels or h < 1 or w < 1:
            raise CodecError(
                f"this learned codec decodes (H, W, {self.config.in_channels}) images, got {tuple(shape)}"
            )
        first, second = self.latent_shapes(h, w)
        y_shape = first if second is None else second
        ys = np.empty((len(payloads), *y_shape), dtype=np.float64)
        for i, payload in enumerate(payloads):
            lat = self._decode_latents(bytes(payload), h, w)
            self._check_canonical(bytes(payload), lat)
            if self.hyperprior:
                assert lat.y is not None
                ys[i] = lat.y.reshape(y_shape)
            else:
                ys[i] = (
                    lat.z.reshape(y_shape) + self.params.z_medians.astype(np.float64)[:, None, None]
                )
        return self._synthesize(torch.from_numpy(ys), h, w)

    def _synthesize(self, y_hat: torch.Tensor, h: int, w: int) -> np.ndarray:
        x = crop(self.net.g_s(y_hat), h, w)
        out = torch.clamp(torch.round(x * 255.0), 0, 255).to(torch.uint8)
        return out.permute(0, 2, 3, 1).numpy().copy()

    # -- estimates -----------------------------------------------------------------------------

    @torch.no_grad()
    def estimate_bits(self, images: np.ndarray) -> np.ndarray:
        """The model's likelihood estimate of each image's code length in bits (float network)."""
        x = self._to_tensor(images)
        out = self.net(x)
        return out.bits().numpy()

    @torch.no_grad()
    def reconstruct(self, images: np.ndarray) -> np.ndarray:
        """What :meth:`decompress` returns for these images, without entropy coding."""
        y = self._analysis(images)
        h, w = images.shape[1:3]
        if self.hyperprior:
            y_hat = torch.round(y)
        else:
            y_hat = torch.round(y - self._medians) + self._medians
        return self._synthesize(y_hat, h, w)
