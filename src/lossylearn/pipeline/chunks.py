"""One chunk of the LCoN run: noise, code at the chosen quality, measure, write a shard.

A chunk is a pure function of (its clean images, the noise spec, the codec, the seed, its chunk
number), so a fixed seed gives the same shard bytes whichever process runs it. Workers receive a
:class:`ChunkTask` and return a :class:`ChunkOutcome`: a :class:`ChunkResult` (sizes and
distortions to the noisy images, recorded in the store) and :class:`CleanSums` (error sums
against the clean images, kept only in the data owner's file). Both hold sums, never images.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from lossylearn.codecs import Codec, get_codec, image_distortion, match_quality_per_image
from lossylearn.codecs.base import BatchCodec
from lossylearn.imaging import absolute_error_sum, squared_error_sum
from lossylearn.privacy import NoiseSource, NoiseSpec, add_noise
from lossylearn.privacy.streams import chunk_stream
from lossylearn.records import Record
from lossylearn.store.layout import sha256_bytes, shard_name
from lossylearn.store.shards import ShardRows, write_shard


@dataclass(frozen=True)
class ChunkTask:
    """Everything a worker needs to produce one shard."""

    chunk: int
    indices: np.ndarray  # positions of these images in the source split
    images: (
        np.ndarray
    )  # clean uint8 (n, H, W, C): used for noise and for clean-side statistics only
    labels: np.ndarray
    spec: NoiseSpec
    codec_name: str
    codec_options: dict[str, Any]
    quality: int | None  # None: match each image separately
    target: float
    metric: str
    tolerance: float
    seed: int | None
    out_dir: str


@dataclass(frozen=True)
class ChunkResult(Record):
    """Sizes, distortion sums and the shard checksum of one finished chunk (no pixel data)."""

    chunk: int
    path: str
    sha256: str
    file_bytes: int
    n_images: int
    payload_bytes: int
    container_bytes: int
    sum_mse_to_noisy: float
    sum_mae_to_noisy: float
    qualities: dict[str, int]  # quality -> number of images coded at it
    n_reached: int  # images whose own distortion is within tolerance of the target


@dataclass(frozen=True)
class CleanSums(Record):
    """Error sums of one chunk against its clean images: the data owner's, never the store's."""

    sq_err_noisy_to_clean: float
    abs_err_noisy_to_clean: float
    sq_err_stored_to_clean: float
    n_values: int


@dataclass(frozen=True)
class ChunkOutcome:
    """What a worker returns for one chunk: the store's record and the owner's."""

    result: ChunkResult
    clean: CleanSums


@dataclass(frozen=True)
class CodedImages:
    """Images through the codec: payloads, reconstructions and their distortion to the input."""

    payloads: list[bytes]
    qualities: np.ndarray
    reconstructed: np.ndarray
    mse: np.ndarray
    mae: np.ndarray


def code_images(codec: Codec, noisy: np.ndarray, qualities: np.ndarray) -> CodedImages:
    """Encode and decode each image at its quality, measuring MSE/MAE against the input.

    A codec with the optional batch API (:class:`~lossylearn.codecs.base.BatchCodec`) gets one
    ``encode_batch`` and one ``decode_batch`` call per quality present; others one call per image.
    """
    shape = tuple(int(v) for v in noisy.shape[1:])
    recon = np.empty_like(noisy)
    if isinstance(codec, BatchCodec):
        slots: list[bytes] = [b""] * len(noisy)
        for q in np.unique(qualities):
            where = np.flatnonzero(qualities == q)
            coded = codec.encode_batch(noisy[where], int(q))
            recon[where] = codec.decode_batch(coded, int(q), shape)  # type: ignore[arg-type]
            for i, payload in zip(where, coded, strict=True):
                slots[i] = payload
        payloads = slots
    else:
        payloads = [codec.encode(img, int(q)) for img, q in zip(noisy, qualities, strict=True)]
        for i, (payload, q) in enumerate(zip(payloads, qualities, strict=True)):
            recon[i] = codec.decode(payload, int(q), shape)  # type: ignore[arg-type]
    return CodedImages(
        payloads=payloads,
        qualities=qualities,
        reconstructed=recon,
        mse=image_distortion(noisy, recon, "mse"),
        mae=image_distortion(noisy, recon, "mae"),
    )


def chunk_qualities(task: ChunkTask, codec: Codec, noisy: np.ndarray) -> np.ndarray:
    """The quality per image: the dataset-wide one, or a per-image search."""
    if task.quality is not None:
        return np.full(len(noisy), task.quality, dtype=np.int64)
    qualities, _, _ = match_quality_per_image(
        codec, noisy, task.target, task.metric, tolerance=task.tolerance
    )
    return np.asarray(qualities, dtype=np.int64)


def finish_chunk(task: ChunkTask, noisy: np.ndarray) -> ChunkOutcome:
    """Code already-noised images of a chunk, write its shard, and summarise it."""
    codec = get_codec(task.codec_name, **task.codec_options)
    qualities = chunk_qualities(task, codec, noisy)
    coded = code_images(codec, noisy, qualities)
    shape = tuple(int(v) for v in noisy.shape[1:])
    container = sum(
        len(codec.container(p, int(q), shape))  # type: ignore[arg-type]
        for p, q in zip(coded.payloads, qualities, strict=True)
    )
    rel = shard_name(task.chunk)
    data = write_shard(
        Path(task.out_dir) / rel,
        ShardRows(
            index=task.indices,
            label=task.labels,
            quality=qualities,
            data=coded.payloads,
            mse_to_noisy=coded.mse,
            mae_to_noisy=coded.mae,
        ),
    )
    clean = task.images.astype(np.float64)
    per_image = coded.mse if task.metric == "mse" else coded.mae
    reached = np.abs(per_image - task.target) <= task.tolerance * max(task.target, 1e-12)
    uniq, counts = np.unique(qualities, return_counts=True)
    result = ChunkResult(
        chunk=task.chunk,
        path=rel,
        sha256=sha256_bytes(data),
        file_bytes=len(data),
        n_images=len(noisy),
        payload_bytes=sum(len(p) for p in coded.payloads),
        container_bytes=int(container),
        sum_mse_to_noisy=float(coded.mse.sum()),
        sum_mae_to_noisy=float(coded.mae.sum()),
        qualities={str(int(q)): int(c) for q, c in zip(uniq, counts, strict=True)},
        n_reached=int(reached.sum()),
    )
    return ChunkOutcome(
        result=result,
        clean=CleanSums(
            sq_err_noisy_to_clean=squared_error_sum(noisy, clean),
            abs_err_noisy_to_clean=absolute_error_sum(noisy, clean),
            sq_err_stored_to_clean=squared_error_sum(coded.reconstructed, clean),
            n_values=int(noisy.size),
        ),
    )


def noise_chunk(task: ChunkTask) -> np.ndarray:
    """The chunk's noisy images, from its own noise stream (``stream = chunk``)."""
    return add_noise(
        task.images, task.spec, NoiseSource.create(task.seed, chunk_stream(task.chunk))
    )


def run_chunk(task: ChunkTask) -> ChunkOutcome:
    """Worker entry point: noise, code and write one chunk."""
    return finish_chunk(task, noise_chunk(task))
