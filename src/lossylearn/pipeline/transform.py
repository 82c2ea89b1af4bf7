"""LCoN on arrays in memory: noise then code, for test sets and studies (nothing is written)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossylearn.codecs import Codec
from lossylearn.pipeline.chunks import code_images
from lossylearn.privacy import NoiseSource, NoiseSpec, add_noise


@dataclass(frozen=True)
class LconBatch:
    """Noisy images, their coded reconstructions, and the real bytes each took."""

    noisy: np.ndarray
    reconstructed: np.ndarray
    payload_bytes: np.ndarray
    shared_header_bytes: int
    mse_to_noisy: np.ndarray
    mae_to_noisy: np.ndarray

    @property
    def bits_per_pixel(self) -> float:
        """Stored bits per pixel position, shared header counted once."""
        n, h, w = self.noisy.shape[:3]
        return 8.0 * (int(self.payload_bytes.sum()) + self.shared_header_bytes) / (n * h * w)


def lcon_transform(
    images: np.ndarray,
    *,
    spec: NoiseSpec,
    codec: Codec,
    quality: int | np.ndarray,
    seed: int | None,
    stream: int = 0,
) -> LconBatch:
    """Add ``spec`` noise (from ``NoiseSource.create(seed, stream)``) and code at ``quality``."""
    noisy = add_noise(images, spec, NoiseSource.create(seed, stream))
    qualities = np.broadcast_to(np.asarray(quality, dtype=np.int64), (len(images),))
    coded = code_images(codec, noisy, qualities)
    shape = tuple(int(v) for v in images.shape[1:])
    headers = sum(len(codec.shared_header(int(q), shape)) for q in np.unique(qualities))  # type: ignore[arg-type]
    return LconBatch(
        noisy=noisy,
        reconstructed=coded.reconstructed,
        payload_bytes=np.array([len(p) for p in coded.payloads], dtype=np.int64),
        shared_header_bytes=int(headers),
        mse_to_noisy=coded.mse,
        mae_to_noisy=coded.mae,
    )
