"""The ``universal`` codec: a public encoder's latents, dithered-quantized, decoded by a named decoder.

:class:`LatentCode` is the batched path a store uses: images -> latents -> (clip + noise) -> level
indices on a grid, and back through any decoder of the checkpoint. The grid is the checkpoint's own
(``L`` levels on [-1, 1]) without noise, or the matched grid of
:mod:`lossylearn.universal.latent_noise` with latent noise; either way the indices follow the URDC
bitstream contract on latents divided by the grid's radius.

:class:`UniversalCodec` puts the same thing behind the per-image
:class:`~lossylearn.codecs.base.Codec` contract (registered as ``universal``): one image's payload is
a complete URDC bitstream of one image (24-byte header + ceil(d log2 L / 8) bytes), dithered with
image index 0 of the codec's ``dither_seed``; it adds no noise. Stores pack whole chunks instead
(:mod:`lossylearn.universal.store`), d log2 L bits per image.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lossylearn.codecs.base import check_image, check_quality, check_shape
from lossylearn.errors import CodecError
from lossylearn.learn.tensors import to_float_batch
from lossylearn.studies.urdc.quantizer import (
    BitstreamHeader,
    DitheredQuantizer,
    decode_bitstream,
    encode_bitstream,
)
from lossylearn.universal.checkpoint import UniversalCheckpoint, load_checkpoint

__all__ = ["LatentCode", "UniversalCodec", "universal_codec"]

BATCH = 1024


@dataclass(frozen=True)
class LatentCode:
    """A grid for the latents of one checkpoint: ``levels`` values on ``[-radius, radius]``."""

    latent_dim: int
    levels: int
    radius: float = 1.0

    @property
    def quantizer(self) -> DitheredQuantizer:
        """The URDC quantizer on latents scaled by ``1 / radius``."""
        return DitheredQuantizer(self.latent_dim, self.levels)

    def indices(self, latents: np.ndarray, seed: int, positions: np.ndarray) -> np.ndarray:
        """Level indices (N, d) of ``latents`` (unscaled) with the shared dither of ``positions``."""
        q = self.quantizer
        z = torch.from_numpy(np.asarray(latents, dtype=np.float64) / self.radius).float()
        return q.indices(z, q.dither_for(seed, positions)).numpy()

    def dequantize(self, indices: np.ndarray, seed: int, positions: np.ndarray) -> torch.Tensor:
        """Dequantized latents (N, d) float32 on the unscaled axis."""
        q = self.quantizer
        k = torch.from_numpy(np.asarray(indices, dtype=np.int64))
        return q.dequantize(k, q.dither_for(seed, positions)) * self.radius

    def to_dict(self) -> dict[str, Any]:
        """JSON form."""
        return {"latent_dim": self.latent_dim, "levels": self.levels, "radius": self.radius}


@torch.no_grad()
def encode_latents(checkpoint: UniversalCheckpoint, images: np.ndarray) -> np.ndarray:
    """The encoder's latents (N, d) float64 of uint8 images (N, 28, 28, 1)."""
    imgs = np.asarray(images)
    if imgs.ndim != 4 or imgs.shape[1:] != (28, 28, 1) or imgs.dtype != np.uint8:
        raise CodecError(
            f"the universal codec takes uint8 28x28 grey images, got {imgs.dtype} {imgs.shape}"
        )
    enc = checkpoint.encoder.eval()
    out = [
        enc(to_float_batch(torch.from_numpy(np.ascontiguousarray(imgs[i : i + BATCH])))).double()
        for i in range(0, len(imgs), BATCH)
    ]
    return torch.cat(out).numpy() if out else np.zeros((0, checkpoint.net.latent_dim))


@torch.no_grad()
def decode_latents(decoder: torch.nn.Module, latents: torch.Tensor) -> np.ndarray:
    """uint8 images (N, 28, 28, 1) of dequantized latents through ``decoder``."""
    decoder.eval()
    parts = []
    for i in range(0, latents.shape[0], BATCH):
        x = decoder(latents[i : i + BATCH].float())
        parts.append((x.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1))
    if not parts:
        return np.zeros((0, 28, 28, 1), dtype=np.uint8)
    return torch.cat(parts).numpy()


class UniversalCodec:
    """A universal checkpoint behind the Codec contract (see the module docstring)."""

    name = "universal"
    extension = ".urdc"
    lossless = False
    qualities: tuple[int, ...] = (0,)

    def __init__(
        self, checkpoint: str | Path, *, decoder: str | None = None, dither_seed: int = 0
    ) -> None:
        self.path = Path(checkpoint)
        self.checkpoint = load_checkpoint(self.path)
        self.fingerprint = self.checkpoint.fingerprint
        self.decoder_name, self.decoder = self.checkpoint.decoder(decoder)
        self.dither_seed = int(dither_seed)
        net = self.checkpoint.net
        self.code = LatentCode(net.latent_dim, net.levels)

    @property
    def decoders(self) -> tuple[str, ...]:
        """Names of the checkpoint's decoders."""
        return self.checkpoint.decoder_names

    def select(self, decoder: str | None) -> None:
        """Decode through ``decoder`` from now on (None: the default one)."""
        self.decoder_name, self.decoder = self.checkpoint.decoder(decoder)

    def encode(self, image: np.ndarray, quality: int) -> bytes:
        check_quality(quality, self.qualities, self.name)
        img = check_image(image, self.name)
        k = self.code.indices(encode_latents(self.checkpoint, img[None]), self.dither_seed,
                              np.zeros(1, dtype=np.int64))  # fmt: skip
        data, _ = encode_bitstream(k, BitstreamHeader(self.code.latent_dim, self.code.levels, 1,
                                                      self.dither_seed))  # fmt: skip
        return data

    def decode(self, payload: bytes, quality: int, shape: tuple[int, int, int]) -> np.ndarray:
        check_quality(quality, self.qualities, self.name)
        if check_shape(shape, self.name) != (28, 28, 1):
            raise CodecError(f"the universal codec decodes 28x28 grey images, not {shape}")
        k, head = decode_bitstream(bytes(payload))
        if (head.latent_dim, head.levels, head.count) != (
            self.code.latent_dim,
            self.code.levels,
            1,
        ):
            raise CodecError(
                "this bitstream is not on this checkpoint's own grid (one image at "
                f"d={self.code.latent_dim}, L={self.code.levels}); an image of a store with latent "
                "noise decodes through open_store(STORE), which knows the matched grid"
            )
        z = self.code.dequantize(k, head.seed, np.array([head.first_index]))
        return decode_latents(self.decoder, z)[0]

    def shared_header(self, quality: int, shape: tuple[int, int, int]) -> bytes:
        check_quality(quality, self.qualities, self.name)
        check_shape(shape, self.name)
        return b""

    def container(self, payload: bytes, quality: int, shape: tuple[int, int, int]) -> bytes:
        check_quality(quality, self.qualities, self.name)
        return bytes(payload)

    def config(self) -> dict[str, Any]:
        ck = self.checkpoint
        return {
            "name": self.name,
            "checkpoint": str(self.path.resolve()),
            "checkpoint_sha256": self.fingerprint,
            "fingerprint_covers": "the encoder and its quantizer (decoders can be added later)",
            "net": ck.config["net"],
            "decoders": list(self.decoders),
            "rate_bits": ck.quantizer.rate_bits,
            "payload": "URDC bitstream v1 (lossylearn.studies.urdc.quantizer)",
            "torch": torch.__version__,
        }


def universal_codec(
    checkpoint: str | Path | None = None, decoder: str | None = None, dither_seed: int = 0
) -> UniversalCodec:
    """Factory for the codec registry: ``get_codec("universal", checkpoint=U)``."""
    if checkpoint is None:
        raise CodecError(
            "the universal codec needs --codec-checkpoint U (train one with 'lossylearn universal train')"
        )
    return UniversalCodec(checkpoint, decoder=decoder, dither_seed=dither_seed)


def register() -> None:
    """Register ``universal`` in :mod:`lossylearn.codecs` (idempotent)."""
    from lossylearn.codecs.base import register_codec

    register_codec("universal", universal_codec)
