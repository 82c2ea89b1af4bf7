"""The learned image codec: Balle et al.'s factorized prior and scale hyperprior, trained here.

Modules: ``gdn`` (GDN/IGDN), ``entropy_bottleneck`` and ``gaussian_conditional`` (entropy models),
``models`` (architectures, size presets, padding), ``tables`` and ``integer_hyper`` (the integer
parameters fixed after training), ``coding`` (constriction range coding), ``train``,
``checkpoint`` (config.json + weights.pt), ``codec`` (the Codec adapter), ``evaluate`` and ``cli``.

Importing this package is cheap (torch loads only when a codec is built); :func:`register` adds the
``learned`` codec to :mod:`lossylearn.codecs`' registry: ``get_codec("learned", checkpoint=PATH)``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["learned_codec", "register"]


def learned_codec(checkpoint: str | Path | None = None, check_bits: int = 0) -> Any:
    """Factory for the registry: a :class:`~lossylearn.codecs.learned.codec.LearnedCodec`."""
    from lossylearn.codecs.learned.codec import LearnedCodec
    from lossylearn.errors import CodecError

    if checkpoint is None:
        raise CodecError(
            "the learned codec needs checkpoint=PATH (train one with 'lossylearn codec train')"
        )
    key = _cache_key(Path(checkpoint), check_bits)
    if key is None:
        return LearnedCodec(checkpoint, check_bits=check_bits)
    codec = _CACHE.get(key)
    if codec is None:  # a store writer asks once per chunk: load (and hash) the checkpoint once
        codec = LearnedCodec(checkpoint, check_bits=check_bits)
        if len(_CACHE) >= 4:
            _CACHE.pop(next(iter(_CACHE)))
        _CACHE[key] = codec
    return codec


_CACHE: dict[tuple[Any, ...], Any] = {}


def _cache_key(folder: Path, check_bits: int) -> tuple[Any, ...] | None:
    """The checkpoint's identity for the per-process cache: its path and both files' size and
    modification time (a rewritten checkpoint is loaded again); None when it cannot be read."""
    from lossylearn.codecs.learned.checkpoint import CONFIG_NAME, WEIGHTS_NAME

    try:
        stats = [(folder / n).stat() for n in (CONFIG_NAME, WEIGHTS_NAME)]
        return (str(folder.resolve()), check_bits, *((s.st_size, s.st_mtime_ns) for s in stats))
    except OSError:
        return None


def register() -> None:
    """Register ``learned`` in :mod:`lossylearn.codecs` (idempotent)."""
    from lossylearn.codecs.base import register_codec

    register_codec("learned", learned_codec)
