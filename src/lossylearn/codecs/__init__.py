"""Image codecs behind one contract (:class:`Codec`), a registry, and target-distortion matching.

Registered here: ``jpeg`` (tables shared per store), ``webp``, ``avif``, ``png`` (lossless), and
``learned`` (Balle et al. models trained with ``lossylearn codec train``; torch loads on first use). Get one
with ``get_codec(name, **options)``; every rate is counted from the real bytes they return.
"""

from lossylearn.codecs.avif import AvifCodec
from lossylearn.codecs.base import CODECS, Codec, get_codec, register_codec
from lossylearn.codecs.jpeg import JpegCodec
from lossylearn.codecs.learned import register as _register_learned
from lossylearn.codecs.matching import MatchResult, match_quality, match_quality_per_image
from lossylearn.codecs.metrics import DISTORTION_METRICS, image_distortion
from lossylearn.codecs.png import PngCodec
from lossylearn.codecs.webp import WebpCodec

__all__ = [
    "CODECS",
    "DISTORTION_METRICS",
    "AvifCodec",
    "Codec",
    "JpegCodec",
    "MatchResult",
    "PngCodec",
    "WebpCodec",
    "get_codec",
    "image_distortion",
    "match_quality",
    "match_quality_per_image",
    "register_codec",
]

_register_learned()
