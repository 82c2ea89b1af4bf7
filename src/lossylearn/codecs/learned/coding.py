"""Entropy coding of a trained model with constriction: images -> bytes -> images.

Bitstream of one image (no header: shape and quality are known to the caller, the store keeps them
in its manifest; see ``codec.py`` for the standalone container):

* one constriction range-coder stream (queue, 32-bit words, 64-bit state);
* factorized model: the symbols ``round(y - median_c)`` grouped by channel ``c`` (raster order within
  a channel), each with its channel's integer table; then the excess of escaped values;
* hyperprior: first ``z`` exactly like the factorized model, then ``round(y)`` grouped by scale-table
  index (ascending), each group with its table; the decoder recomputes the indexes from the decoded
  ``z`` with the integer hyper-synthesis;
* escaped values and the byte framing: see :mod:`.table_coder`. The stream is cut to the fewest
  whole bytes that still decode; those are the bytes that are stored and counted.

Integrity: a payload is accepted only if it is exactly the canonical (shortest) encoding of the
symbols it decodes to. That costs no bits but catches only part of the damage (an optimal code has
almost no redundancy: measured on a trained MNIST model, ~70% of bit flips and <15% of truncations).
``check_bits = k`` (1..16) appends the low k bits of the CRC-32 of all coded values as one more
uniform symbol inside the stream: it costs k bits per image (not a whole byte) and lets through
only ~2^-k of damaged payloads. The ``.llc`` container (CRC-32 + length) and the store (SHA-256
per shard) detect damage with certainty regardless.

Determinism: the tables and the integer hyper-synthesis are fixed integers saved with the
checkpoint; the synthesis network runs in float64, so rounding a reconstruction to uint8 does not
depend on float summation order in practice. The analysis (encoder side only: the decoder reads the
integer latents from the stream) runs in float32, about nine times faster on a CPU.

Speed: a batch goes through the networks in sub-batches of :data:`SUB_BATCH` images; each image is
still its own stream (a store keeps one payload per image), coded with one constriction call per
table (32 for the ``mnist`` preset) in the order fixed above, so the bytes do not depend on the
batch. Shortening the tail costs 2-4 trial decodes per image.
"""

from __future__ import annotations

import copy
import zlib
from collections.abc import Sequence
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
from lossylearn.codecs.learned.table_coder import (
    CHUNK_BITS,
    CHUNK_MODELS,
    Groups,
    TableCoder,
    bytes_to_words,
    group_ids,
    round_up,
    shortest,
    words_to_bytes,
)
from lossylearn.codecs.learned.tables import PRECISION, CategoricalTables
from lossylearn.errors import CodecError

__all__ = ["CompressionModel", "EntropyParameters", "SUB_BATCH"]

SUB_BATCH = 256
"""Images per pass through the networks (bounds memory; larger batches are no faster)."""


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
    z_groups: Groups | None = None
    y_groups: Groups | None = None


class CompressionModel:
    """A trained model frozen for coding: float64 networks + :class:`EntropyParameters`."""

    def __init__(
        self,
        model: FactorizedPrior | ScaleHyperprior,
        params: EntropyParameters,
        *,
        check_bits: int = 0,
    ) -> None:
        if not isinstance(check_bits, int) or not 0 <= check_bits <= CHUNK_BITS:
            raise CodecError(f"check_bits must be an integer 0..{CHUNK_BITS}, got {check_bits!r}")
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
        # The encoder's transforms run in float32: only the encoder computes them (the decoder
        # reads the integer latents from the stream), so they need not be reproducible elsewhere.
        self.enc_net = copy.deepcopy(model).float().eval().cpu()
        for p in self.enc_net.parameters():
            p.requires_grad_(False)
        self._z_layout: dict[tuple[int, ...], tuple[np.ndarray, Groups]] = {}
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
        """Latents ``y`` (float32) of uint8 images, in sub-batches of :data:`SUB_BATCH`."""
        x = self._to_tensor(images).float()
        parts = [
            self.enc_net.g_a(pad_to_multiple(x[s : s + SUB_BATCH], self.config.stride))
            for s in range(0, max(len(x), 1), SUB_BATCH)
        ]
        return torch.cat(parts) if len(parts) > 1 else parts[0]

    def _z_ids(self, shape: tuple[int, ...]) -> tuple[np.ndarray, Groups]:
        """Table ids (the channel) of a first latent of ``shape`` = (C, h, w), and their order."""
        key = tuple(int(v) for v in shape)
        if key not in self._z_layout:
            ids = np.repeat(np.arange(key[0], dtype=np.int64), key[1] * key[2])
            self._z_layout[key] = (ids, group_ids(ids))
        return self._z_layout[key]

    @torch.no_grad()
    def _analyse(self, images: np.ndarray) -> list[_Latents]:
        y = self._analysis(images)
        if not self.hyperprior:
            q = torch.round(y.double() - self._medians).to(torch.int64).numpy()
            ids, groups = self._z_ids(q.shape[1:])
            flat = q.reshape(q.shape[0], -1)
            return [_Latents(flat[b], ids, z_groups=groups) for b in range(q.shape[0])]
        z = self.enc_net.h_a(torch.abs(y))
        zq = torch.round(z.double() - self._medians).to(torch.int64).numpy()
        z_ids, z_groups = self._z_ids(zq.shape[1:])
        y_ids = self._scale_ids(zq).reshape(zq.shape[0], -1)
        yq = torch.round(y.double()).to(torch.int64).numpy().reshape(zq.shape[0], -1)
        zf = zq.reshape(zq.shape[0], -1)
        return [
            _Latents(zf[b], z_ids, yq[b], y_ids[b], z_groups, group_ids(y_ids[b]))
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
        self.z_coder.encode(enc, lat.z, lat.z_ids, lat.z_groups)
        if self.y_coder is not None:
            self.y_coder.encode(enc, lat.y, lat.y_ids, lat.y_groups)
        if self.check_bits:
            enc.encode(self._check_symbol(lat), CHUNK_MODELS[self.check_bits])
        return words_to_bytes(enc.get_compressed())

    def _read_check(self, dec: Any) -> int | None:
        if not self.check_bits:
            return None
        try:
            return int(dec.decode(CHUNK_MODELS[self.check_bits]))
        except (AssertionError, ValueError, RuntimeError) as err:
            raise CodecError(f"corrupt learned-codec payload ({err})") from None

    def _decodes_to(self, data: bytes, lat: _Latents) -> bool:
        dec = constriction.stream.queue.RangeDecoder(bytes_to_words(data))
        try:
            if not np.array_equal(self.z_coder.decode(dec, lat.z_ids, lat.z_groups), lat.z):
                return False
            if self.y_coder is not None and not np.array_equal(
                self.y_coder.decode(dec, lat.y_ids, lat.y_groups), lat.y
            ):
                return False
            check = self._read_check(dec)
        except CodecError:
            return False
        return check is None or check == self._check_symbol(lat)

    def _canonical(self, lat: _Latents) -> bytes:
        return shortest(self._encode_latents(lat), lambda c: self._decodes_to(c, lat))

    def compress(self, images: np.ndarray) -> list[bytes]:
        """One payload per image of the uint8 batch (N, H, W, C)."""
        return [self._canonical(lat) for lat in self._analyse(images)]

    def _decode_latents(self, payload: bytes, height: int, width: int) -> _Latents:
        first, second = self.latent_shapes(height, width)
        dec = constriction.stream.queue.RangeDecoder(bytes_to_words(payload))
        z_ids, z_groups = self._z_ids(first)
        z = self.z_coder.decode(dec, z_ids, z_groups)
        if self.y_coder is None:
            lat = _Latents(z, z_ids, z_groups=z_groups)
        else:
            assert second is not None
            y_ids = self._scale_ids(z.reshape(1, *first)).ravel()
            y_groups = group_ids(y_ids)
            y = self.y_coder.decode(dec, y_ids, y_groups)
            lat = _Latents(z, z_ids, y, y_ids, z_groups, y_groups)
        check = self._read_check(dec)
        if check is not None and check != self._check_symbol(lat):
            raise CodecError("corrupt or truncated learned-codec payload (check bits differ)")
        return lat

    def _check_canonical(self, payload: bytes, lat: _Latents) -> None:
        full = self._encode_latents(lat)
        n = len(payload)
        ok = len(full) - 8 <= n <= len(full) and round_up(full, n) == payload
        if ok and n > max(0, len(full) - 8):
            shorter = round_up(full, n - 1)
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
        """uint8 images from float64 latents: float64 synthesis, in sub-batches."""
        out = np.empty((y_hat.shape[0], h, w, self.config.in_channels), dtype=np.uint8)
        for s in range(0, y_hat.shape[0], SUB_BATCH):
            x = crop(self.net.g_s(y_hat[s : s + SUB_BATCH]), h, w)
            x = torch.clamp(torch.round(x * 255.0), 0, 255).to(torch.uint8)
            out[s : s + SUB_BATCH] = x.permute(0, 2, 3, 1).numpy()
        return out

    # -- estimates -----------------------------------------------------------------------------

    @torch.no_grad()
    def estimate_bits(self, images: np.ndarray) -> np.ndarray:
        """The model's likelihood estimate of each image's code length in bits (float network)."""
        x = self._to_tensor(images)
        parts = [self.net(x[s : s + SUB_BATCH]).bits() for s in range(0, len(x), SUB_BATCH)]
        return torch.cat(parts).numpy() if parts else np.zeros(0)

    @torch.no_grad()
    def reconstruct(self, images: np.ndarray) -> np.ndarray:
        """What :meth:`decompress` returns for these images, without entropy coding."""
        y = self._analysis(images).double()
        h, w = images.shape[1:3]
        if self.hyperprior:
            y_hat = torch.round(y)
        else:
            y_hat = torch.round(y - self._medians) + self._medians
        return self._synthesize(y_hat, h, w)
