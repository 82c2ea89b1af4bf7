"""The one table of named random streams: who draws noise from which ``(seed, stream)``.

A seeded :class:`~lossylearn.privacy.source.NoiseSource` is ``SeedSequence(seed, spawn_key=(stream,))``:
two uses of the same seed stay independent only while their streams differ. The streams are split
into two ranges that never meet:

- **chunk streams** ``0 .. CHUNK_STREAMS - 1``: chunk ``k`` of a compress run draws its noise from
  stream ``k`` (:func:`chunk_stream`), so a store is byte-identical however its chunks are spread
  over workers;
- **named streams** ``>= CHUNK_STREAMS``: every other noisy set, one :class:`Stream` member (or one
  block of :data:`BLOCK_SIZES` consecutive streams) per use.

:func:`check_streams` (run on import) proves the table has no collision.
"""

from __future__ import annotations

from enum import IntEnum, unique

__all__ = ["BLOCK_SIZES", "CHUNK_STREAMS", "Stream", "check_streams", "chunk_stream", "stream"]

CHUNK_STREAMS = 1_000_000
"""Chunk numbers (and so chunk streams) stay below this; named streams start here."""


@unique
class Stream(IntEnum):
    """Named noise streams (values are the ``stream`` of ``NoiseSource.create(seed, stream)``)."""

    STUDY_NOISY_TRAIN = 1_000_001
    """LCoN study: the noisy copies of the training pool that baseline 2 (``noisy``) trains on."""
    STUDY_NOISY_TEST = 1_000_002
    """LCoN study: the noisy test set."""
    STUDY_LCON_TEST = 1_000_003
    """LCoN study: the noise of the LCoN-processed test set."""
    STUDY_CODEC_TRAIN = 1_000_004
    """LCoN study with a learned codec: the noisy copies of the held-out codec split."""
    STUDY_LCON_ADV = 1_000_100
    """LCoN study: a block (:data:`BLOCK_SIZES`); member ``k`` noises the FGSM images of the k-th
    epsilon before LCoN processing (the paper's LCoN-adv)."""
    LEARNED_CODEC_TRAIN = 1_007_001
    """``lossylearn codec train``: the noisy copies a learned codec is trained on (this stream was
    7001 before the table existed, inside the chunk range)."""


BLOCK_SIZES: dict[Stream, int] = {Stream.STUDY_LCON_ADV: 100}
"""Members that own a run of consecutive streams ``value .. value + size - 1`` (one per index)."""


def chunk_stream(chunk: int) -> int:
    """The noise stream of chunk ``chunk`` of a compress run (the chunk number itself)."""
    if isinstance(chunk, bool) or not isinstance(chunk, int) or not 0 <= chunk < CHUNK_STREAMS:
        raise ValueError(f"chunk numbers lie in 0..{CHUNK_STREAMS - 1}, got {chunk!r}")
    return chunk


def stream(name: Stream, index: int = 0) -> int:
    """The ``index``-th stream of ``name`` (0 for a plain member; < its block size for a block)."""
    size = BLOCK_SIZES.get(name, 1)
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < size:
        raise ValueError(f"{name.name} has {size} stream(s); index {index!r} is out of range")
    return int(name) + index


def check_streams() -> None:
    """Raise ``RuntimeError`` if two named streams (or blocks) overlap or one enters the chunk range."""
    spans = sorted((int(m), int(m) + BLOCK_SIZES.get(m, 1), m.name) for m in Stream)
    for lo, _, name in spans:
        if lo < CHUNK_STREAMS:
            raise RuntimeError(
                f"stream {name} = {lo} lies in the chunk range 0..{CHUNK_STREAMS - 1}"
            )
    for (_, hi, a), (lo, _, b) in zip(spans, spans[1:], strict=False):
        if lo < hi:
            raise RuntimeError(f"streams {a} and {b} overlap")


check_streams()
