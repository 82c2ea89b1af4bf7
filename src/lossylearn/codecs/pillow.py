"""The Pillow-backed codecs' common part: :class:`PillowCodec`, and numpy <-> Pillow plumbing with
Pillow's errors turned into one-line :class:`~lossylearn.errors.CodecError`s.

Every Pillow codec works the same way: Pillow writes a standard file, the codec strips from it what
the shape (and, per store, :meth:`PillowCodec.shared_header`) already tells, and keeps the rest as
the payload; decoding rebuilds the standard file and lets Pillow read it. A codec states only what
differs: its Pillow format, qualities, save parameters, and how a file is cut into a payload
(:meth:`PillowCodec.strip`) and glued back (:meth:`PillowCodec.rebuild`).
"""

from __future__ import annotations

import io
from abc import ABC, abstractmethod
from typing import Any, ClassVar

import numpy as np
from PIL import Image, features

from lossylearn.codecs.base import check_image, check_quality, check_shape
from lossylearn.errors import CodecError

__all__ = [
    "PillowCodec",
    "choice_option",
    "int_option",
    "library_versions",
    "open_file",
    "pil_image",
    "save_file",
    "to_array",
]


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


def int_option(
    codec: str, option: str, value: object, lo: int, hi: int, lo_note: str = "", hi_note: str = ""
) -> int:
    """``value`` if it is an int from ``lo`` to ``hi``, else CodecError (notes name the ends)."""
    if isinstance(value, bool) or not isinstance(value, int) or not lo <= value <= hi:
        raise CodecError(
            f"{codec} {option} must be an integer from {lo}{lo_note} to {hi}{hi_note}, "
            f"got {value!r}"
        )
    return value


def choice_option(fmt: str, option: str, value: object, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of ``choices``, else CodecError naming them."""
    if value not in choices:
        raise CodecError(f"unknown {fmt} {option} {value!r}; choose one of {', '.join(choices)}")
    return value  # type: ignore[return-value]


class PillowCodec(ABC):
    """A :class:`~lossylearn.codecs.base.Codec` over a Pillow format (see the module docstring).

    Subclasses set the class attributes and implement :meth:`save_params`, :meth:`strip`,
    :meth:`rebuild` and :meth:`settings`; the others have defaults.
    """

    name: str
    extension: str
    qualities: tuple[int, ...]
    lossless: bool = False
    pillow_format: ClassVar[str]
    """Pillow's name of the format, e.g. ``"WEBP"``."""
    features: ClassVar[tuple[str, ...]]
    """Pillow features whose library versions go into :meth:`config`."""
    required: ClassVar[tuple[str, str] | None] = None
    """(Pillow feature, what to say when Pillow lacks it), for formats Pillow may be built without."""

    def __init__(self) -> None:
        if self.required is not None and not features.check(self.required[0]):
            raise CodecError(self.required[1])

    # -- what each codec states --------------------------------------------------------------

    @abstractmethod
    def save_params(self, channels: int, quality: int) -> dict[str, Any]:
        """Pillow's save parameters for an image of ``channels`` channels at ``quality``."""

    @abstractmethod
    def strip(self, file: bytes, image: np.ndarray, quality: int) -> bytes:
        """The payload of ``file``, the file Pillow wrote for ``image`` at ``quality``."""

    @abstractmethod
    def rebuild(self, payload: bytes, quality: int, shape: tuple[int, int, int]) -> bytes:
        """The standard file of a stored ``payload``; CodecError if it cannot be one."""

    @abstractmethod
    def settings(self) -> dict[str, Any]:
        """The codec's options and conventions for :meth:`config` (name and versions aside)."""

    def shared(self, quality: int, shape: tuple[int, int, int]) -> bytes:
        """The bytes stored once per store (default: none)."""
        return b""

    def check_payload(self, payload: bytes) -> None:
        """Checks :meth:`decode` makes before rebuilding the file (default: none)."""
        return None

    def read(self, file: bytes, shape: tuple[int, int, int]) -> np.ndarray:
        """The image of ``shape`` that the standard ``file`` holds."""
        return open_file(file, self.pillow_format, shape, self.name)

    # -- the Codec protocol --------------------------------------------------------------------

    def save(self, image: np.ndarray, quality: int) -> bytes:
        """The whole file Pillow writes for a checked ``image`` at a checked ``quality``."""
        params = self.save_params(image.shape[2], quality)
        return save_file(image, self.pillow_format, self.name, **params)

    def encode(self, image: np.ndarray, quality: int) -> bytes:
        """The stored payload of ``image`` at ``quality``: Pillow's file less what is rebuilt."""
        image = check_image(image, self.name)
        q = check_quality(quality, self.qualities, self.name)
        return self.strip(self.save(image, q), image, q)

    def decode(self, payload: bytes, quality: int, shape: tuple[int, int, int]) -> np.ndarray:
        """The uint8 image of ``shape`` held by ``payload``; CodecError if truncated or corrupt."""
        shape = check_shape(shape, self.name)
        q = check_quality(quality, self.qualities, self.name)
        payload = bytes(payload)
        self.check_payload(payload)
        return self.read(self.rebuild(payload, q, shape), shape)

    def shared_header(self, quality: int, shape: tuple[int, int, int]) -> bytes:
        """Bytes stored once per store for ``quality`` and ``shape`` (see :meth:`shared`)."""
        shape = check_shape(shape, self.name)
        return self.shared(check_quality(quality, self.qualities, self.name), shape)

    def container(self, payload: bytes, quality: int, shape: tuple[int, int, int]) -> bytes:
        """The standard file, byte-identical to the one Pillow wrote for the same image."""
        shape = check_shape(shape, self.name)
        q = check_quality(quality, self.qualities, self.name)
        return self.rebuild(bytes(payload), q, shape)

    def config(self) -> dict[str, Any]:
        """Options and library versions for the manifest."""
        return {"name": self.name, **self.settings(), **library_versions(*self.features)}
