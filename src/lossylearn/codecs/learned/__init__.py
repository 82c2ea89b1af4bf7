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
    return LearnedCodec(checkpoint, check_bits=check_bits)


def register() -> None:
    """Register ``learned`` in :mod:`lossylearn.codecs` (idempotent)."""
    from lossylearn.codecs.base import register_codec

    register_codec("learned", learned_codec)
