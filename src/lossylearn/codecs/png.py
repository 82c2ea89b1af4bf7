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

from lossylearn.codecs.base import check_image, check_quality, check_shape, register_codec
from lossylearn.codecs.pillow_io import library_versions, open_file, save_file
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


class PngCodec:
    """Lossless PNG; the only quality is 0. ``compress_level`` 0..9 is zlib's effort (9: smallest)."""

    name = "png"
    extension = ".png"
    qualities: tuple[int, ...] = (0,)
    lossless = True

    def __init__(self, compress_level: int = 9) -> None:
        if (
            isinstance(compress_level, bool)
            or not isinstance(compress_level, int)
            or not 0 <= compress_level <= 9
        ):
            raise CodecError(
                f"png compress_level must be an integer from 0 to 9, got {compress_level!r}"
            )
        self.compress_level = compress_level

    def encode(self, image: np.ndarray, quality: int = 0) -> bytes:
        """The zlib stream of ``image``'s filtered rows (signature, IHDR, IEND left out)."""
        image = check_image(image, self.name)
        check_quality(quality, self.qualities, self.name)
        full = save_file(
            image, "PNG", self.name, compress_level=self.compress_level, optimize=False
        )
        chunks = png_chunks(full)
        kinds = [k for k, _ in chunks]
        if (
            kinds[:1] != [b"IHDR"]
            or kinds[-1:] != [b"IEND"]
            or set(kinds[1:-1]) != {b"IDAT"}
            or PNG_SIGNATURE + _ihdr(image.shape) != full[: 8 + 25]  # type: ignore[arg-type]
        ):
            raise CodecError(f"Pillow wrote a PNG with chunks {kinds}, expected IHDR, IDAT.., IEND")
        return b"".join(body for _, body in chunks[1:-1])

    def decode(self, payload: bytes, quality: int, shape: tuple[int, int, int]) -> np.ndarray:
        """The exact uint8 image of ``shape`` held by ``payload``; CodecError if corrupt."""
        shape = check_shape(shape, self.name)
        check_quality(quality, self.qualities, self.name)
        payload = bytes(payload)
        stream = zlib.decompressobj()
        try:
            stream.decompress(payload)
        except zlib.error as e:
            raise CodecError(f"png payload is corrupt ({e})") from None
        if not stream.eof or stream.unused_data:
            raise CodecError(
                "png payload is truncated or has trailing bytes: its zlib stream does not end where it should"
            )
        return open_file(png_file(payload, shape), "PNG", shape, self.name)

    def shared_header(self, quality: int, shape: tuple[int, int, int]) -> bytes:
        """Nothing: signature, IHDR and IEND follow from the shape."""
        check_shape(shape, self.name)
        check_quality(quality, self.qualities, self.name)
        return b""

    def container(self, payload: bytes, quality: int, shape: tuple[int, int, int]) -> bytes:
        """A standard PNG file with one IDAT chunk."""
        shape = check_shape(shape, self.name)
        check_quality(quality, self.qualities, self.name)
        return png_file(bytes(payload), shape)

    def config(self) -> dict[str, Any]:
        """Options and library versions for the manifest."""
        return {
            "name": self.name,
            "compress_level": self.compress_level,
            "lossless": True,
            "payload": "zlib stream of the IDAT chunks; signature, IHDR, IDAT framing and IEND rebuilt",
            "shared_header": "none",
            **library_versions("zlib"),
        }


register_codec("png", PngCodec)
