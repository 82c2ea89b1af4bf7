"""AVIF (libavif + an AV1 encoder via Pillow) with its box header stored once per store.

An AVIF still image is an ISOBMFF file: ``ftyp``, a ``meta`` box (handler, primary item, item
location ``iloc``, item info, properties: size, pixel depth, ``av1C``, colour) and ``mdat`` with the
AV1 bitstream: a temporal delimiter and a sequence header OBU, then the frame. On a 28x28 image
these headers are ~270 of ~440 bytes. For a fixed encoder, quality and image shape they are the same
for every image except two length fields (the ``iloc`` extent length and the ``mdat`` size), so:

* :meth:`AvifCodec.shared_header` holds the box header and the leading OBUs once per quality;
* the payload is the rest of the AV1 bitstream (the frame OBU);
* :meth:`AvifCodec.container` patches the two lengths and rebuilds the byte-identical file.

The shared layout comes from coding a fixed gradient image. Should the encoder ever lay out an image
differently, its payload is the whole AVIF file instead (recognisable on decode: a file starts with
a zero byte, an AV1 OBU never does), so no image is ever refused and its real size is counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from lossylearn.codecs.base import register_codec
from lossylearn.codecs.pillow import PillowCodec, choice_option, int_option
from lossylearn.errors import CodecError

__all__ = ["AVIF_SUBSAMPLINGS", "AvifCodec", "AvifLayout", "avif_layout"]

AVIF_SUBSAMPLINGS = ("4:2:0", "4:2:2", "4:4:4")
_OBU_SEQUENCE_HEADER, _OBU_TEMPORAL_DELIMITER = 1, 2


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int, int]]:
    """(type, box start, body start, box end) of the ISOBMFF boxes in ``data[start:end]``."""
    out = []
    pos = start
    while pos < end:
        if pos + 8 > end:
            raise CodecError("AVIF file is truncated inside a box header")
        size = int.from_bytes(data[pos : pos + 4], "big")
        kind = data[pos + 4 : pos + 8]
        body = pos + 8
        if size == 1:
            if pos + 16 > end:
                raise CodecError("AVIF file is truncated inside a box header")
            size = int.from_bytes(data[pos + 8 : pos + 16], "big")
            body = pos + 16
        elif size == 0:
            size = end - pos
        if size < body - pos or pos + size > end:
            raise CodecError(f"AVIF box {kind!r} at offset {pos} is truncated or has a bad size")
        out.append((kind, pos, body, pos + size))
        pos += size
    return out


def _uint(data: bytes, pos: int, size: int) -> tuple[int, int]:
    return int.from_bytes(data[pos : pos + size], "big"), pos + size


def _leading_obus(bitstream: bytes) -> int:
    """Length of the temporal delimiter / sequence header OBUs that open an AV1 bitstream."""
    pos = 0
    while pos < len(bitstream):
        header = bitstream[pos]
        kind, has_extension, has_size = header >> 3 & 15, header >> 2 & 1, header >> 1 & 1
        if (
            header & 0x80
            or not has_size
            or kind not in (_OBU_SEQUENCE_HEADER, _OBU_TEMPORAL_DELIMITER)
        ):
            break
        i = pos + 1 + has_extension
        size = shift = 0
        while True:  # leb128
            if i >= len(bitstream) or shift > 56:
                raise CodecError("AV1 bitstream is truncated inside an OBU size")
            byte = bitstream[i]
            i += 1
            size |= (byte & 0x7F) << shift
            shift += 7
            if byte < 0x80:
                break
        pos = i + size
    return min(pos, len(bitstream))


@dataclass(frozen=True)
class AvifLayout:
    """A single-item AVIF cut into the bytes shared by every image and the per-image bitstream."""

    header: bytes
    """File bytes before the ``mdat`` body: ``ftyp``, ``meta``, the ``mdat`` box header."""
    length_at: int
    """Offset in ``header`` of the ``iloc`` extent-length field."""
    length_size: int
    """Byte width of that field."""
    obu_prefix: bytes
    """The opening OBUs of the bitstream (temporal delimiter, sequence header)."""

    def file(self, payload: bytes) -> bytes:
        """The AVIF file whose bitstream is ``obu_prefix + payload``."""
        n = len(self.obu_prefix) + len(payload)
        if n >= 1 << (8 * self.length_size) or n + 8 >= 1 << 32:
            raise CodecError(f"an AVIF bitstream of {n} bytes does not fit this header")
        head = bytearray(self.header)
        head[self.length_at : self.length_at + self.length_size] = n.to_bytes(
            self.length_size, "big"
        )
        head[-8:-4] = (n + 8).to_bytes(4, "big")
        return bytes(head) + self.obu_prefix + payload

    def shared(self) -> bytes:
        """What a store keeps once: the header followed by the opening OBUs."""
        return self.header + self.obu_prefix


def avif_layout(data: bytes) -> tuple[AvifLayout, bytes]:
    """Split a single-item AVIF file into its layout and the rest of its bitstream.

    CodecError unless the file is ``ftyp``, ``meta``, ``mdat`` with one item stored as one extent
    that covers the whole ``mdat`` body (what libavif writes for a still image without alpha).
    """
    top = _boxes(data, 0, len(data))
    if [b[0] for b in top] != [b"ftyp", b"meta", b"mdat"]:
        raise CodecError(
            f"AVIF file has boxes {[b[0].decode('latin-1') for b in top]}, expected ftyp, meta, mdat"
        )
    _, mdat_start, mdat_body, mdat_end = top[2]
    if mdat_body - mdat_start != 8:
        raise CodecError("AVIF mdat box uses a 64-bit size")
    _, _, meta_body, meta_end = top[1]
    iloc = [b for b in _boxes(data, meta_body + 4, meta_end) if b[0] == b"iloc"]
    if len(iloc) != 1:
        raise CodecError("AVIF meta box has no single iloc box")
    pos = iloc[0][2]
    version = data[pos]
    offset_size, length_size = data[pos + 4] >> 4, data[pos + 4] & 15
    base_size, index_size = data[pos + 5] >> 4, (data[pos + 5] & 15 if version in (1, 2) else 0)
    pos += 6
    items, pos = _uint(data, pos, 2 if version < 2 else 4)
    if items != 1:
        raise CodecError(f"AVIF file locates {items} items, expected 1")
    pos += 2 if version < 2 else 4  # item ID
    if version in (1, 2):
        method, pos = _uint(data, pos, 2)
        if method & 15:
            raise CodecError("AVIF item is not stored in the file's mdat")
    pos += 2  # data reference index
    base, pos = _uint(data, pos, base_size)
    extents, pos = _uint(data, pos, 2)
    if extents != 1 or length_size not in (4, 8):
        raise CodecError("AVIF item is not stored as one extent with a 32- or 64-bit length")
    pos += index_size
    offset, pos = _uint(data, pos, offset_size)
    length_at = pos
    length, pos = _uint(data, pos, length_size)
    if pos > iloc[0][3] or base + offset != mdat_body or length != mdat_end - mdat_body:
        raise CodecError("AVIF item extent does not cover exactly the mdat body")
    bitstream = data[mdat_body:mdat_end]
    lead = _leading_obus(bitstream)
    layout = AvifLayout(data[:mdat_body], length_at, length_size, bitstream[:lead])
    return layout, bitstream[lead:]


def _template(shape: tuple[int, int, int]) -> np.ndarray:
    """The fixed image whose coding defines the shared layout: a diagonal gradient."""
    h, w, c = shape
    ramp = (np.add.outer(np.arange(h), np.arange(w)) * 255 // max(h + w - 2, 1)).astype(np.uint8)
    return np.ascontiguousarray(np.repeat(ramp[:, :, None], c, axis=2))


class AvifCodec(PillowCodec):
    """AVIF via Pillow: quality 0..100, encoder ``speed`` 0 (slowest, smallest) .. 10, one thread.

    Grey images are coded monochrome (4:0:0); colour with chroma ``subsampling``.
    """

    name = "avif"
    extension = ".avif"
    qualities = tuple(range(0, 101))
    pillow_format = "AVIF"
    features = ("avif",)
    required = ("avif", "avif needs Pillow built with AVIF support (Pillow >= 11.3 wheels have it)")

    def __init__(self, speed: int = 6, subsampling: str = "4:2:0") -> None:
        self.speed = int_option("avif", "speed", speed, 0, 10, " (slowest)", " (fastest)")
        self.subsampling = choice_option("AVIF", "subsampling", subsampling, AVIF_SUBSAMPLINGS)
        super().__init__()
        self._layouts: dict[tuple[int, tuple[int, int, int]], AvifLayout] = {}

    def save_params(self, channels: int, quality: int) -> dict[str, Any]:
        params: dict[str, Any] = {"quality": quality, "speed": self.speed, "max_threads": 1}
        if channels == 3:
            params["subsampling"] = self.subsampling
        return params

    def _layout(self, quality: int, shape: tuple[int, int, int]) -> AvifLayout:
        layout = self._layouts.get((quality, shape))
        if layout is None:
            full = self.save(_template(shape), quality)
            layout, rest = avif_layout(full)
            if layout.file(rest) != full:
                raise CodecError(
                    f"cannot rebuild libavif's file for a {shape} image at quality {quality}"
                )
            self._layouts[(quality, shape)] = layout
        return layout

    def strip(self, file: bytes, image: np.ndarray, quality: int) -> bytes:
        """The frame OBU(s) (the whole file if its layout is unusual)."""
        layout = self._layout(quality, image.shape)  # type: ignore[arg-type]
        rest = file[len(layout.header) :]
        if rest.startswith(layout.obu_prefix):
            payload = rest[len(layout.obu_prefix) :]
            if payload[:1] not in (b"", b"\x00") and layout.file(payload) == file:
                return payload
        return file

    def rebuild(self, payload: bytes, quality: int, shape: tuple[int, int, int]) -> bytes:
        """The standard AVIF file, byte-identical to what libavif wrote."""
        if not payload:
            raise CodecError("avif payload is empty")
        if payload[0] == 0:  # a whole AVIF file (box size's high byte), stored as is
            return payload
        return self._layout(quality, shape).file(payload)

    def shared(self, quality: int, shape: tuple[int, int, int]) -> bytes:
        """The box header (ftyp, meta, mdat header) and opening OBUs shared at ``quality``."""
        return self._layout(quality, shape).shared()

    def settings(self) -> dict[str, Any]:
        from PIL import _avif

        return {
            "speed": self.speed,
            "subsampling": self.subsampling,
            "grey_images": "monochrome (4:0:0)",
            "threads": 1,
            "payload": "AV1 frame OBU(s); box header and sequence header rebuilt from the shared header",
            "shared_header": "ftyp + meta + mdat header + temporal delimiter + sequence header, per quality",
            "av1_codecs": _avif.codec_versions(),
        }


register_codec("avif", AvifCodec)
