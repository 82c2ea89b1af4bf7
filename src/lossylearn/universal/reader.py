"""Reading a universal store: one stored bitstream, decoded through the decoder chosen at read time.

``open_store(DIR, decoder="ce")`` returns a :class:`UniversalStore`: a
:class:`~lossylearn.store.reader.Store` whose images are the chosen decoder's reconstructions of the
stored latents. The checkpoint is found as for a learned codec (recorded path, beside the store, or
``codec_checkpoint=``) and must carry the encoder fingerprint the store names; any decoder the
checkpoint holds now, including one added after the store was written, is listed in
:attr:`UniversalStore.decoders`. The bitstreams are read once at open (checked against their
SHA-256, and their headers against the manifest).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from lossylearn.errors import StoreError
from lossylearn.store.reader import Store
from lossylearn.store.shards import ShardData
from lossylearn.studies.urdc.quantizer import BitstreamHeader, decode_bitstream, encode_bitstream
from lossylearn.universal.codec import LatentCode, UniversalCodec, decode_latents, register

__all__ = ["UniversalStore", "is_universal_manifest"]


def is_universal_manifest(codec_section: dict[str, Any]) -> bool:
    """Whether a manifest's ``codec`` section describes a universal store."""
    return codec_section.get("name") == "universal"


class UniversalStore(Store):
    """A universal store: ``store[i]`` is the chosen decoder's image of stored latent ``i``."""

    def __init__(
        self, directory: str | Path, *, decoder: str | None = None, **options: Any
    ) -> None:
        register()
        super().__init__(directory, **options)
        if not isinstance(self.codec, UniversalCodec):
            raise StoreError(f"{self.location}: not a universal store")
        self.codec.select(decoder)
        c = self.manifest.codec
        try:
            grid = c["grid"]
            self.code = LatentCode(
                int(grid["latent_dim"]), int(grid["levels"]), float(grid["radius"])
            )
            self.dither_seed = int(c["dither_seed"])
        except (KeyError, TypeError, ValueError):
            raise StoreError(
                f"{self.location}: the manifest's universal grid is malformed"
            ) from None
        if self.code.latent_dim != self.codec.checkpoint.net.latent_dim:
            raise StoreError(f"{self.location}: the grid's latent size does not fit the checkpoint")
        self._indices = self._read_bitstreams()
        self._decoded: OrderedDict[int, np.ndarray] = OrderedDict()

    def _read_bitstreams(self) -> np.ndarray:
        parts, start = [], 0
        for entry in self.manifest.shards:
            rel = entry.get("bitstream")
            if not isinstance(rel, str):
                raise StoreError(f"{self.location}: shard {entry['path']} names no bitstream")
            self.location.path(rel, "bitstream")
            k, head = decode_bitstream(self._file(rel, "bitstream"))
            want = (self.code.latent_dim, self.code.levels, int(entry["n_images"]),
                    self.dither_seed, start)  # fmt: skip
            got = (head.latent_dim, head.levels, head.count, head.seed, head.first_index)
            if got != want:
                raise StoreError(f"{self.location}: {rel} does not match the manifest (altered?)")
            parts.append(k)
            start += head.count
        return np.concatenate(parts) if parts else np.zeros((0, self.code.latent_dim), np.int64)

    @property
    def decoders(self) -> tuple[str, ...]:
        """Names of the decoders this store can be read through (the checkpoint's, now)."""
        return self.codec.decoders

    @property
    def decoder(self) -> str:
        """Name of the decoder in use."""
        return self.codec.decoder_name

    def latents(self) -> torch.Tensor:
        """The stored (dequantized) latents (N, d), in manifest order."""
        n = len(self)
        return self.code.dequantize(self._indices, self.dither_seed, np.arange(n, dtype=np.int64))

    def payload(self, i: int) -> bytes:
        """Image ``i``'s bits as a one-image URDC bitstream (its header names its position and the
        dither seed); the store itself keeps them packed in its chunk's bitstream."""
        k, row = self.locate(i)
        pos = int(self._starts[k]) + row
        data, _ = encode_bitstream(self._indices[pos : pos + 1], BitstreamHeader(
            self.code.latent_dim, self.code.levels, 1, self.dither_seed, pos))  # fmt: skip
        return data

    def container(self, i: int) -> bytes:
        """The same one-image bitstream (``.urdc``); decoding it needs the store's grid radius,
        ``manifest.codec.grid``, when the store has latent noise."""
        return self.payload(i)

    def _images_of(self, k: int) -> np.ndarray:
        if k in self._decoded:
            self._decoded.move_to_end(k)
            return self._decoded[k]
        a, b = int(self._starts[k]), int(self._starts[k + 1])
        z = self.code.dequantize(self._indices[a:b], self.dither_seed, np.arange(a, b))
        images = decode_latents(self.codec.decoder, z)
        self._decoded[k] = images
        while len(self._decoded) > self.cache_shards:
            self._decoded.popitem(last=False)
        return images

    def _shard_of(self, shard: ShardData) -> int:
        for k in range(len(self.manifest.shards)):
            a = int(self._starts[k])
            if (
                len(shard) == self.shard_sizes[k]
                and len(shard)
                and int(self.indices[a]) == int(shard.index[0])
            ):
                return k
        raise StoreError(f"{self.location}: a shard that is not this store's was passed")

    def decode_row(self, shard: ShardData, row: int) -> tuple[np.ndarray, int]:
        """(image, label) of row ``row`` of a loaded shard, through the chosen decoder."""
        return self._images_of(self._shard_of(shard))[row], int(shard.label[row])

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        k, row = self.locate(i)
        return self._images_of(k)[row], int(self.labels[int(self._starts[k]) + row])

    def __iter__(self) -> Iterator[tuple[np.ndarray, int]]:
        labels = self.labels
        for k in range(len(self.manifest.shards)):
            images = self._images_of(k)
            for row in range(len(images)):
                yield images[row], int(labels[int(self._starts[k]) + row])

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Every image through the chosen decoder, uint8 (N, 28, 28, 1), and the stored labels."""
        images = decode_latents(self.codec.decoder, self.latents())
        return images, self.labels.copy()
