"""The codec contract every image codec follows, and the registry that names them.

A codec turns one uint8 image ``(H, W, C)`` (``C`` is 1 for grey, 3 for colour) into the bytes a
store keeps for it (the *payload*) and back. Bytes that every image of a store shares at one quality
(JPEG's quantization and Huffman tables, AVIF's box header) are not repeated in each payload: the
store keeps them once, from :meth:`Codec.shared_header`. :meth:`Codec.container` puts them back and
gives a standalone standard file (``.jpg``, ``.webp``, ...) that any decoder opens. Rates are always
counted from these real bytes: ``payload`` per image plus ``shared_header`` once per store.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from typing import Any, Protocol, runtime_checkable

import numpy as np

from lossylearn.errors import CodecError, LossylearnError

__all__ = [
    "BatchCodec",
    "CODECS",
    "Codec",
    "check_image",
    "check_quality",
    "check_shape",
    "get_codec",
    "register_codec",
]


@runtime_checkable
class Codec(Protocol):
    """An image codec: real bytes out of ``encode``, the same-shaped uint8 array out of ``decode``."""

    name: str
    """Registry name, e.g. ``"jpeg"``."""
    extension: str
    """File extension of :meth:`container` files, e.g. ``".jpg"``."""
    qualities: tuple[int, ...]
    """Accepted qualities, ascending: a higher quality spends more bits for less distortion."""
    lossless: bool
    """True when ``decode(encode(x))`` always equals ``x``."""

    def encode(self, image: np.ndarray, quality: int) -> bytes:
        """The stored payload of ``image`` (uint8 ``(H, W, C)``, ``C`` in {1, 3}) at ``quality``."""
        ...

    def decode(self, payload: bytes, quality: int, shape: tuple[int, int, int]) -> np.ndarray:
        """The uint8 image of exactly ``shape`` that ``payload`` holds; CodecError if it is corrupt."""
        ...

    def shared_header(self, quality: int, shape: tuple[int, int, int]) -> bytes:
        """Bytes stored once per store for this quality and shape (``b""`` when there are none)."""
        ...

    def container(self, payload: bytes, quality: int, shape: tuple[int, int, int]) -> bytes:
        """``payload`` as a standalone standard file that any decoder of the format opens."""
        ...

    def config(self) -> dict[str, Any]:
        """The codec's name, options and library versions, JSON-ready, for a store's manifest."""
        ...


@runtime_checkable
class BatchCodec(Protocol):
    """Optional extra of a :class:`Codec`: code many same-shaped images in one call.

    A codec whose per-image cost is dominated by per-call overhead (the learned codec runs its
    networks on a whole batch at once) implements these; :func:`lossylearn.pipeline.chunks.code_images`
    uses them when present. The bytes must equal :meth:`Codec.encode` of each image, and
    ``decode_batch`` must return what :meth:`Codec.decode` returns for each payload.
    """

    def encode_batch(self, images: np.ndarray, quality: int) -> list[bytes]:
        """Payloads of uint8 images ``(N, H, W, C)``, all at ``quality``."""
        ...

    def decode_batch(
        self, payloads: Sequence[bytes], quality: int, shape: tuple[int, int, int]
    ) -> np.ndarray:
        """uint8 images ``(N, *shape)`` of payloads that were all coded at ``quality``."""
        ...


CodecFactory = Callable[..., Codec]

CODECS: dict[str, CodecFactory] = {}
"""Registered codec factories by name; :func:`get_codec` calls them with the user's options."""


def register_codec(name: str, factory: CodecFactory, *, replace: bool = False) -> None:
    """Register ``factory`` (called with keyword options, returns a :class:`Codec`) as ``name``.

    Registering a taken name with a different factory is an error unless ``replace`` is true.
    """
    if not isinstance(name, str) or not name or name != name.strip().lower():
        raise LossylearnError(f"codec names are non-empty lower-case strings, got {name!r}")
    if not callable(factory):
        raise LossylearnError(f"the factory for codec {name!r} is not callable: {factory!r}")
    if name in CODECS and CODECS[name] is not factory and not replace:
        raise LossylearnError(f"a codec named {name!r} is already registered")
    CODECS[name] = factory


def _known() -> str:
    return ", ".join(sorted(CODECS)) or "(none)"


def get_codec(name: str, **options: Any) -> Codec:
    """A new codec ``name`` built with ``options``; unknown names and options raise CodecError."""
    factory = CODECS.get(name) if isinstance(name, str) else None
    if factory is None:
        raise CodecError(f"unknown codec {name!r}; known codecs: {_known()}")
    try:
        params = inspect.signature(factory).parameters
    except (TypeError, ValueError):  # builtins without a signature: let the call decide
        params = None
    if params is not None and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        accepted = [
            k for k, p in params.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD)
        ]
        unknown = sorted(set(options) - set(accepted))
        if unknown:
            raise CodecError(
                f"codec {name!r} has no option {', '.join(map(repr, unknown))}; "
                f"its options: {', '.join(accepted) or '(none)'}"
            )
    codec = factory(**options)
    if not isinstance(codec, Codec):
        raise LossylearnError(
            f"the factory for codec {name!r} returned {type(codec).__name__}, not a Codec"
        )
    return codec


def check_image(image: object, codec: str) -> np.ndarray:
    """``image`` as a C-contiguous uint8 ``(H, W, C)`` array with ``C`` in {1, 3}, or CodecError."""
    if not isinstance(image, np.ndarray):
        raise CodecError(f"{codec} encodes numpy arrays, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise CodecError(f"{codec} encodes uint8 images, got dtype {image.dtype}")
    if image.ndim != 3 or image.shape[2] not in (1, 3) or image.shape[0] < 1 or image.shape[1] < 1:
        raise CodecError(
            f"{codec} encodes images of shape (H, W, C) with C = 1 or 3, got shape {tuple(image.shape)}"
        )
    return image if image.flags.c_contiguous else np.ascontiguousarray(image)


def check_shape(shape: object, codec: str) -> tuple[int, int, int]:
    """``shape`` as an ``(H, W, C)`` tuple of positive ints with ``C`` in {1, 3}, or CodecError."""
    try:
        h, w, c = (int(v) for v in shape)  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        raise CodecError(f"{codec} needs an image shape (H, W, C), got {shape!r}") from None
    if h < 1 or w < 1 or c not in (1, 3):
        raise CodecError(f"{codec} needs an image shape (H, W, C) with C = 1 or 3, got {(h, w, c)}")
    return h, w, c


def check_quality(quality: object, qualities: tuple[int, ...], codec: str) -> int:
    """``quality`` as an int from ``qualities`` (ascending), or CodecError naming the valid range."""
    if isinstance(quality, (bool, np.bool_)) or not isinstance(quality, (int, np.integer)):
        raise CodecError(f"{codec} quality must be an integer, got {quality!r}")
    q = int(quality)
    if q not in qualities:
        valid = (
            f"{qualities[0]}..{qualities[-1]}"
            if len(qualities) > 2 and qualities == tuple(range(qualities[0], qualities[-1] + 1))
            else ", ".join(map(str, qualities))
        )
        raise CodecError(f"{codec} quality {q} is not available; its qualities: {valid}")
    return q
