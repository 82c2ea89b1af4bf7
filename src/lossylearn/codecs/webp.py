"""Lossy WebP (libwebp via Pillow) with its fixed-form wrapper stripped from the stored bytes.

A lossy WebP file in the simple format is ``RIFF <size> WEBP`` + ``VP8 <size>`` + a VP8 key frame
(+ a pad byte when the frame has odd length). The key frame starts with a 3-byte frame tag, then the
start code ``9D 01 2A`` and the 14-bit width and height. Everything but the frame tag and the coded
data is fixed or follows from the shape and the payload length, so the payload is the VP8 frame
without start code and dimensions (27 bytes shorter than the file) and :meth:`WebpCodec.shared_header`
is empty. :meth:`WebpCodec.container` rebuilds the byte-identical file libwebp wrote.

Grey images are coded as RGB (WebP has no grey mode; the constant chroma costs a few bytes) and
decoded back to one channel with Pillow's ``L`` conversion.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from lossylearn.codecs.base import check_image, check_quality, check_shape, register_codec
from lossylearn.codecs.pillow_io import library_versions, open_file, save_file
from lossylearn.errors import CodecError

__all__ = ["WebpCodec", "webp_file"]

_START_CODE = b"\x9d\x01\x2a"
_MAX_SIDE = 16383


def _le32(v: int) -> bytes:
    return v.to_bytes(4, "little")


def webp_file(payload: bytes, shape: tuple[int, int, int]) -> bytes:
    """The standard lossy WebP file of a stored ``payload`` (frame tag + coded data)."""
    h, w, _ = shape
    if h > _MAX_SIDE or w > _MAX_SIDE:
        raise CodecError(f"WebP images are at most {_MAX_SIDE} pixels a side, got {h}x{w}")
    if len(payload) < 4:
        raise CodecError("webp payload is truncated: shorter than a VP8 frame tag")
    tag = int.from_bytes(payload[:3], "little")
    keyframe, show, first_partition = not (tag & 1), bool(tag >> 4 & 1), tag >> 5
    if not keyframe or not show or first_partition > len(payload) - 3:
        raise CodecError(
            "webp payload is corrupt or truncated: its VP8 frame tag does not fit the data"
        )
    frame = (
        payload[:3] + _START_CODE + w.to_bytes(2, "little") + h.to_bytes(2, "little") + payload[3:]
    )
    pad = b"\x00" if len(frame) % 2 else b""
    chunk = b"VP8 " + _le32(len(frame)) + frame + pad
    return b"RIFF" + _le32(4 + len(chunk)) + b"WEBP" + chunk


class WebpCodec:
    """Lossy WebP; quality 0..100 is libwebp's quality, ``method`` (0..6) trades speed for size."""

    name = "webp"
    extension = ".webp"
    qualities: tuple[int, ...] = tuple(range(0, 101))
    lossless = False

    def __init__(self, method: int = 4) -> None:
        if isinstance(method, bool) or not isinstance(method, int) or not 0 <= method <= 6:
            raise CodecError(
                f"webp method must be an integer from 0 (fastest) to 6 (smallest), got {method!r}"
            )
        from PIL import features

        if not features.check("webp"):
            raise CodecError("webp needs Pillow built with WebP support")
        self.method = method

    def _file(self, image: np.ndarray, quality: int) -> bytes:
        return save_file(
            image, "WEBP", self.name, quality=quality, method=self.method, lossless=False
        )

    def encode(self, image: np.ndarray, quality: int) -> bytes:
        """The VP8 frame of ``image`` at ``quality`` without RIFF header, start code and size."""
        image = check_image(image, self.name)
        q = check_quality(quality, self.qualities, self.name)
        full = self._file(image, q)
        frame = full[20 : 20 + int.from_bytes(full[16:20], "little")]
        payload = frame[:3] + frame[10:]
        try:
            rebuilt = webp_file(payload, image.shape)  # type: ignore[arg-type]
        except CodecError:
            rebuilt = b""
        if rebuilt != full:
            raise CodecError(f"libwebp wrote a file that is not a simple lossy WebP at quality {q}")
        return payload

    def decode(self, payload: bytes, quality: int, shape: tuple[int, int, int]) -> np.ndarray:
        """The uint8 image of ``shape`` held by ``payload``; CodecError if truncated or corrupt."""
        shape = check_shape(shape, self.name)
        check_quality(quality, self.qualities, self.name)
        return open_file(webp_file(bytes(payload), shape), "WEBP", shape, self.name)

    def shared_header(self, quality: int, shape: tuple[int, int, int]) -> bytes:
        """Nothing: the stripped wrapper follows from the shape and the payload length."""
        check_shape(shape, self.name)
        check_quality(quality, self.qualities, self.name)
        return b""

    def container(self, payload: bytes, quality: int, shape: tuple[int, int, int]) -> bytes:
        """The standard WebP file, byte-identical to what libwebp wrote."""
        shape = check_shape(shape, self.name)
        check_quality(quality, self.qualities, self.name)
        return webp_file(bytes(payload), shape)

    def config(self) -> dict[str, Any]:
        """Options and library versions for the manifest."""
        return {
            "name": self.name,
            "method": self.method,
            "lossless": False,
            "grey_images": "coded as RGB, decoded with Pillow's L conversion",
            "payload": "VP8 key frame without start code and dimensions (RIFF/VP8 chunk headers rebuilt)",
            "shared_header": "none",
            **library_versions("webp"),
        }


register_codec("webp", WebpCodec)
