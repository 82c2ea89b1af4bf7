"""Numpy <-> Pillow plumbing shared by the Pillow-backed codecs, with Pillow's errors turned into
one-line :class:`~lossylearn.errors.CodecError`s."""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from PIL import Image, features

from lossylearn.errors import CodecError

__all__ = ["library_versions", "open_file", "pil_image", "save_file", "to_array"]


def pil_image(image: np.ndarray) -> Image.Image:
    """A Pillow image over a C-contiguous uint8 ``(H, W, C)`` array: mode ``L`` (C=1) or ``RGB``.

    Grey images share the array's memory (no copy); keep ``image`` alive while the result is used.
    """
    h, w, c = image.shape
    mode = "L" if c == 1 else "RGB"
    return Image.frombuffer(mode, (w, h), image, "raw", mode, 0, 1)


def save_file(image: np.ndarray, fmt: str, codec: str, **params: Any) -> bytes:
    """``image`` saved by Pillow as format ``fmt`` (e.g. ``"WEBP"``) with save ``params``."""
    out = io.BytesIO()
    try:
        pil_image(image).save(out, fmt, **params)
    except (OSError, ValueError, SystemError) as e:
        h, w, c = image.shape
        raise CodecError(f"{codec} cannot encode a {h}x{w}x{c} image: {e}") from None
    return out.getvalue()


def to_array(img: Image.Image, shape: tuple[int, int, int], codec: str) -> np.ndarray:
    """A decoded Pillow image as a writeable uint8 array of exactly ``shape``, or CodecError."""
    h, w, c = shape
    if img.size != (w, h):
        raise CodecError(
            f"{codec} data decodes to {img.size[1]}x{img.size[0]} pixels, expected {h}x{w}"
        )
    mode = "L" if c == 1 else "RGB"
    bands = len(img.getbands())
    # More channels than expected is how WebP and AVIF return grey images; fewer would invent colour.
    if bands < c and img.mode != "P":
        raise CodecError(
            f"{codec} data decodes to {bands}-channel ({img.mode}) pixels, expected {c} channel(s)"
        )
    if img.mode != mode:
        img = img.convert(mode)
    return np.frombuffer(bytearray(img.tobytes()), dtype=np.uint8).reshape(shape)


def open_file(data: bytes, fmt: str, shape: tuple[int, int, int], codec: str) -> np.ndarray:
    """Decode a whole ``fmt`` file with Pillow into a uint8 array of exactly ``shape``."""
    try:
        with Image.open(io.BytesIO(data), formats=[fmt]) as img:
            img.load()
            return to_array(img, shape, codec)
    except CodecError:
        raise
    except Image.UnidentifiedImageError:
        raise CodecError(
            f"{codec} payload is corrupt: it does not rebuild into a readable {fmt} file"
        ) from None
    except (
        OSError,
        ValueError,
        RuntimeError,
        SyntaxError,
        EOFError,
        Image.DecompressionBombError,
    ) as e:
        raise CodecError(f"{codec} payload is corrupt or truncated ({e})") from None


def library_versions(*feature_names: str) -> dict[str, str | None]:
    """Pillow's version and those of the named Pillow features (``"jpg"``, ``"webp"``, ...)."""
    import PIL

    versions: dict[str, str | None] = {"pillow": PIL.__version__}
    for name in feature_names:
        versions[name] = features.version(name)
    return versions
