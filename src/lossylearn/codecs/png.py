"""Lossless PNG (zlib via Pillow) storing only the compressed pixel stream.

A PNG is the 8-byte signature, an ``IHDR`` chunk (size, bit depth, colour type), ``IDAT`` chunks
holding one zlib stream of filtered rows, and ``IEND``: 57 bytes of framing around the zlib stream
for a one-``IDAT`` file, all of it fixed by the image shape. The payload is the zlib stream;
:meth:`PngCodec.container` rebuilds a standard PNG with one ``IDAT`` chunk (byte-identical to
Pillow's file whenever Pillow wrote one ``IDAT``, i.e. for images under ~64 KiB compressed).
"""

from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from lossylearn.codecs.base import register_codec
from lossylearn.codecs.pillow import PillowCodec, int_option
from lossylearn.errors import CodecError

__all__ = ["PngCodec", "png_chunks", "png_file"]

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _chunk(kind: bytes, body: bytes) -> bytes:
    return (
        len(body).to_bytes(4, "big")
        + kind
        + body
        + zlib.crc32(body, zlib.crc32(kind)).to_bytes(4, "big")
    )


def _ihdr(shape: tuple[int, int, int]) -> bytes:
    h, w, c = shape
    if h >= 1 << 31 or w >= 1 << 31:
        raise CodecError(f"PNG images are at most 2^31 - 1 pixels a side, got {h}x{w}")
    colour_type = 0 if c == 1 else 2  # greyscale / truecolour, 8 bits, deflate, no interlace
    return _chunk(
        b"IHDR", w.to_bytes(4, "big") + h.to_bytes(4, "big") + bytes([8, colour_type, 0, 0, 0])
    )


def png_file(payload: bytes, shape: tuple[int, int, int]) -> bytes:
    """The standard PNG file of ``payload`` (a zlib stream of filtered rows) for ``shape``."""
    if len(payload) >= 1 << 31:
        raise CodecError("a PNG payload over 2 GiB does not fit one IDAT chunk")
    return PNG_SIGNATURE + _ihdr(shape) + _chunk(b"IDAT", payload) + _chunk(b"IEND", b"")


def png_chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    """(type, body) of each chunk of a PNG file, CRCs checked; CodecError if malformed."""
    if not data.startswith(PNG_SIGNATURE):
        raise CodecError("not a PNG file: bad signature")
    out = []
    pos = len(PNG_SIGNATURE)
    while pos < len(data):
        if pos + 12 > len(data):
            raise CodecError("PNG file is truncated inside a chunk header")
        n = int.from_bytes(data[pos : pos + 4], "big")
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        if pos + 12 + n > len(data):
            raise CodecError(f"PNG chunk {kind!r} is truncated")
        if zlib.crc32(body, zlib.crc32(kind)) != int.from_bytes(
            data[pos + 8 + n : pos + 12 + n], "big"
        ):
            raise CodecError(f"PNG chunk {kind!r} fails its CRC")
        out.append((kind, body))
        pos += 12 + n
    return out


class PngCodec(PillowCodec):
    """Lossless PNG; the only quality is 0. ``compress_level`` 0..9 is zlib's effort (9: smallest)."""

    name = "png"
    extension = ".png"
    qualities = (0,)
    lossless = True
    pillow_format = "PNG"
    features = ("zlib",)

    def __init__(self, compress_level: int = 9) -> None:
        super().__init__()
        self.compress_level = int_option("png", "compress_level", compress_level, 0, 9)

    def save_params(self, channels: int, quality: int) -> dict[str, Any]:
        return {"compress_level": self.compress_level, "optimize": False}

    def strip(self, file: bytes, image: np.ndarray, quality: int) -> bytes:
        """The zlib stream of the image's filtered rows (signature, IHDR, IEND left out)."""
        chunks = png_chunks(file)
        kinds = [k for k, _ in chunks]
        if (
            kinds[:1] != [b"IHDR"]
            or kinds[-1:] != [b"IEND"]
            or set(kinds[1:-1]) != {b"IDAT"}
            or PNG_SIGNATURE + _ihdr(image.shape) != file[: 8 + 25]  # type: ignore[arg-type]
        ):
            raise CodecError(f"Pillow wrote a PNG with chunks {kinds}, expected IHDR, IDAT.., IEND")
        return b"".join(body for _, body in chunks[1:-1])

    def check_payload(self, payload: bytes) -> None:
        """The payload must be one whole zlib stream."""
        stream = zlib.decompressobj()
        try:
            stream.decompress(payload)
        except zlib.error as e:
            raise CodecError(f"png payload is corrupt ({e})") from None
        if not stream.eof or stream.unused_data:
            raise CodecError(
                "png payload is truncated or has trailing bytes: its zlib stream does not end where it should"
            )

    def rebuild(self, payload: bytes, quality: int, shape: tuple[int, int, int]) -> bytes:
        """A standard PNG file with one IDAT chunk; signature, IHDR and IEND follow from the shape."""
        return png_file(payload, shape)

    def settings(self) -> dict[str, Any]:
        return {
            "compress_level": self.compress_level,
            "lossless": True,
            "payload": "zlib stream of the IDAT chunks; signature, IHDR, IDAT framing and IEND rebuilt",
            "shared_header": "none",
        }


register_codec("png", PngCodec)
