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

from lossylearn.codecs.base import register_codec
from lossylearn.codecs.pillow import PillowCodec, int_option
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


class WebpCodec(PillowCodec):
    """Lossy WebP; quality 0..100 is libwebp's quality, ``method`` (0..6) trades speed for size."""

    name = "webp"
    extension = ".webp"
    qualities = tuple(range(0, 101))
    pillow_format = "WEBP"
    features = ("webp",)
    required = ("webp", "webp needs Pillow built with WebP support")

    def __init__(self, method: int = 4) -> None:
        self.method = int_option("webp", "method", method, 0, 6, " (fastest)", " (smallest)")
        super().__init__()

    def save_params(self, channels: int, quality: int) -> dict[str, Any]:
        return {"quality": quality, "method": self.method, "lossless": False}

    def strip(self, file: bytes, image: np.ndarray, quality: int) -> bytes:
        """The VP8 frame without RIFF header, start code and size."""
        frame = file[20 : 20 + int.from_bytes(file[16:20], "little")]
        payload = frame[:3] + frame[10:]
        try:
            rebuilt = webp_file(payload, image.shape)  # type: ignore[arg-type]
        except CodecError:
            rebuilt = b""
        if rebuilt != file:
            raise CodecError(
                f"libwebp wrote a file that is not a simple lossy WebP at quality {quality}"
            )
        return payload

    def rebuild(self, payload: bytes, quality: int, shape: tuple[int, int, int]) -> bytes:
        """The standard WebP file; the stripped wrapper follows from the shape and the length."""
        return webp_file(payload, shape)

    def settings(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "lossless": False,
            "grey_images": "coded as RGB, decoded with Pillow's L conversion",
            "payload": "VP8 key frame without start code and dimensions (RIFF/VP8 chunk headers rebuilt)",
            "shared_header": "none",
        }


register_codec("webp", WebpCodec)
