"""Baseline JPEG with the tables stored once per store ("abbreviated" JPEG, ITU T.81 Annex B.4/B.5).

A Pillow JPEG of a 28x28 digit is ~95% header: quantization and Huffman tables, JFIF, frame and
scan headers. With fixed encoder settings those bytes are the same for every image of a given
shape and quality, so a store keeps:

* once per quality (:meth:`JpegCodec.shared_header`): a tables-only JPEG stream, ``SOI DQT.. DHT..
  EOI``, the abbreviated table-specification form of T.81 B.5;
* per image (the payload): the entropy-coded scan data and the closing ``EOI`` marker. The frame
  (SOF0) and scan (SOS) headers hold nothing but the shape and the table/sampling choices, so they
  are rebuilt from the shape. The EOI's two bytes are kept because they are how a truncated payload
  is detected: the scan data cannot contain ``FFD9``.

Huffman tables are the standard ones (T.81 Annex K, libjpeg's defaults, no per-image optimization)
and quantization tables are libjpeg's quality-scaled Annex K tables, so the tables really are shared.
:meth:`JpegCodec.container` glues tables, headers and payload back into the byte-identical file that
Pillow writes for the same image and settings.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from PIL import Image

from lossylearn.codecs.base import register_codec
from lossylearn.codecs.pillow import PillowCodec, choice_option, to_array
from lossylearn.errors import CodecError

__all__ = ["JPEG_SUBSAMPLINGS", "JpegCodec", "JpegParts", "jpeg_file", "jpeg_prefix", "split_jpeg"]

SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
_APP0, _DQT, _DHT, _SOF0, _SOS = 0xE0, 0xDB, 0xC4, 0xC0, 0xDA
# The JFIF APP0 segment libjpeg writes without a dpi: JFIF 1.01, no units, 1:1 pixel aspect.
_JFIF_APP0 = b"\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"

JPEG_SUBSAMPLINGS: dict[str, tuple[int, tuple[int, int, int]]] = {
    # name: (Pillow's subsampling code, (H << 4 | V) sampling factors of Y, Cb, Cr)
    "4:4:4": (0, (0x11, 0x11, 0x11)),
    "4:2:2": (1, (0x21, 0x11, 0x11)),
    "4:2:0": (2, (0x22, 0x11, 0x11)),
}


@dataclass(frozen=True)
class JpegParts:
    """A single-scan JPEG stream cut at its scan: the marker segments before it and its data."""

    segments: tuple[tuple[int, bytes], ...]
    """(marker code, whole segment ``FF xx`` + length + body) for each segment before the scan."""
    scan: bytes
    """Entropy-coded data of the scan (``b""`` for a tables-only stream)."""


def _scan_end(data: bytes, start: int) -> int:
    """Offset of the marker that ends the entropy-coded data starting at ``start``."""
    n = len(data)
    i = start
    while True:
        i = data.find(b"\xff", i)
        if i < 0 or i + 1 >= n:
            raise CodecError("JPEG scan data is truncated: no marker ends it")
        nxt = data[i + 1]
        if nxt == 0x00 or 0xD0 <= nxt <= 0xD7:  # stuffed 0xFF byte, or a restart marker
            i += 2
            continue
        return i


def split_jpeg(data: bytes) -> JpegParts:
    """Parse a JPEG stream (``SOI`` ... ``EOI``) with at most one scan; CodecError if malformed.

    Accepts interchange streams and tables-only streams; rejects bytes after ``EOI``, truncated
    segments, stray bytes between segments and streams with more than one scan.
    """
    n = len(data)
    if not data.startswith(SOI):
        raise CodecError("not a JPEG stream: it does not start with the SOI marker (FFD8)")
    pos = 2
    segments: list[tuple[int, bytes]] = []
    while True:
        if pos + 1 >= n:
            raise CodecError("JPEG stream is truncated: it ends without the EOI marker (FFD9)")
        if data[pos] != 0xFF:
            raise CodecError(
                f"JPEG stream is corrupt: byte 0x{data[pos]:02X} at offset {pos} is not a marker"
            )
        while pos + 1 < n and data[pos + 1] == 0xFF:  # fill bytes before a marker
            pos += 1
        if pos + 1 >= n:
            raise CodecError("JPEG stream is truncated: it ends inside a marker")
        marker = data[pos + 1]
        if marker == 0xD9:
            if pos + 2 != n:
                raise CodecError(f"JPEG stream has {n - pos - 2} bytes after its EOI marker")
            return JpegParts(tuple(segments), b"")
        if marker in (0x00, 0x01, 0xD8) or 0xD0 <= marker <= 0xD7:
            raise CodecError(
                f"JPEG stream is corrupt: unexpected marker FF{marker:02X} at offset {pos}"
            )
        if pos + 4 > n:
            raise CodecError(f"JPEG stream is truncated inside marker segment FF{marker:02X}")
        length = int.from_bytes(data[pos + 2 : pos + 4], "big")
        end = pos + 2 + length
        if length < 2 or end > n:
            raise CodecError(f"JPEG marker segment FF{marker:02X} at offset {pos} is truncated")
        segments.append((marker, data[pos:end]))
        pos = end
        if marker == _SOS:
            stop = _scan_end(data, pos)
            if data[stop : stop + 2] == EOI and stop + 2 != n:
                raise CodecError(f"JPEG stream has {n - stop - 2} bytes after its EOI marker")
            if data[stop:] != EOI:
                raise CodecError(
                    "JPEG stream does not end with EOI right after its scan "
                    "(only single-scan baseline streams are supported)"
                )
            return JpegParts(tuple(segments), data[pos:stop])


def _frame_headers(shape: tuple[int, int, int], subsampling: str) -> tuple[bytes, bytes]:
    """The SOF0 and SOS segments libjpeg writes for a baseline ``shape`` image."""
    h, w, c = shape
    if h > 0xFFFF or w > 0xFFFF:
        raise CodecError(f"JPEG images are at most 65535 pixels a side, got {h}x{w}")
    if c == 1:
        comps = [(1, 0x11, 0, 0x00)]
    else:
        factors = JPEG_SUBSAMPLINGS[subsampling][1]
        comps = [(1, factors[0], 0, 0x00), (2, factors[1], 1, 0x11), (3, factors[2], 1, 0x11)]
    sof = bytearray(b"\xff\xc0")
    sof += (8 + 3 * c).to_bytes(2, "big") + bytes([8]) + h.to_bytes(2, "big") + w.to_bytes(2, "big")
    sof.append(c)
    for cid, hv, tq, _ in comps:
        sof += bytes([cid, hv, tq])
    sos = bytearray(b"\xff\xda") + (6 + 2 * c).to_bytes(2, "big") + bytes([c])
    for cid, _, _, tables in comps:
        sos += bytes([cid, tables])
    sos += b"\x00\x3f\x00"  # spectral selection 0..63, no successive approximation
    return bytes(sof), bytes(sos)


def jpeg_prefix(tables: bytes, shape: tuple[int, int, int], subsampling: str = "4:2:0") -> bytes:
    """Everything of a baseline JPEG file before its scan data, rebuilt from a tables-only stream.

    ``SOI``, JFIF ``APP0``, the ``DQT`` segments of ``tables``, ``SOF0`` for ``shape``, the ``DHT``
    segments of ``tables``, ``SOS``: the layout libjpeg writes.
    """
    parts = split_jpeg(tables)
    if parts.scan or any(m not in (_DQT, _DHT) for m, _ in parts.segments):
        raise CodecError(
            "a JPEG shared header must be a tables-only stream: SOI, DQT/DHT segments, EOI"
        )
    choice_option("JPEG", "subsampling", subsampling, tuple(JPEG_SUBSAMPLINGS))
    sof, sos = _frame_headers(shape, subsampling)
    dqt = b"".join(seg for m, seg in parts.segments if m == _DQT)
    dht = b"".join(seg for m, seg in parts.segments if m == _DHT)
    return SOI + _JFIF_APP0 + dqt + sof + dht + sos


def jpeg_file(
    tables: bytes, payload: bytes, shape: tuple[int, int, int], subsampling: str = "4:2:0"
) -> bytes:
    """The standard JPEG file of a stored ``payload`` (scan data + EOI) and the shared ``tables``."""
    _check_payload(payload)
    return jpeg_prefix(tables, shape, subsampling) + payload


def _check_payload(payload: bytes) -> None:
    """CodecError unless ``payload`` is marker-free scan data followed by EOI."""
    n = len(payload)
    if n < 3 or not payload.endswith(EOI):
        raise CodecError(
            "jpeg payload is truncated or empty: it does not end with the EOI marker (FFD9)"
        )
    if payload.count(b"\xff", 0, n - 2) != payload.count(b"\xff\x00", 0, n - 2):
        raise CodecError("jpeg payload is corrupt: a marker appears inside its entropy-coded data")


@dataclass(frozen=True)
class _Frame:
    tables: bytes  # tables-only stream, the shared header
    prefix: bytes  # SOI .. SOS, what precedes every payload in the standard file


class JpegCodec(PillowCodec):
    """Baseline JPEG (libjpeg via Pillow) with tables stored once: payload = scan data + EOI.

    Grey images are coded as one-component JPEG (mode ``L``); colour as YCbCr with chroma
    ``subsampling`` ("4:2:0", "4:2:2" or "4:4:4"). Qualities 1..100 are libjpeg's quality scale.
    """

    name = "jpeg"
    extension = ".jpg"
    qualities = tuple(range(1, 101))
    pillow_format = "JPEG"
    features = ("jpg", "libjpeg_turbo")

    def __init__(self, subsampling: str = "4:2:0") -> None:
        super().__init__()
        self.subsampling = choice_option(
            "JPEG", "subsampling", subsampling, tuple(JPEG_SUBSAMPLINGS)
        )
        self._frames: dict[tuple[int, tuple[int, int, int]], _Frame] = {}

    def save_params(self, channels: int, quality: int) -> dict[str, Any]:
        params: dict[str, Any] = {"quality": quality, "optimize": False, "progressive": False}
        if channels == 3:
            params["subsampling"] = JPEG_SUBSAMPLINGS[self.subsampling][0]
        return params

    def _frame(self, quality: int, shape: tuple[int, int, int]) -> _Frame:
        frame = self._frames.get((quality, shape))
        if frame is None:
            full = self.save(np.zeros(shape, dtype=np.uint8), quality)
            parts = split_jpeg(full)
            tables = SOI + b"".join(seg for m, seg in parts.segments if m in (_DQT, _DHT)) + EOI
            prefix = jpeg_prefix(tables, shape, self.subsampling)
            if full != prefix + parts.scan + EOI:
                raise CodecError(
                    f"libjpeg wrote an unexpected JPEG layout for a {shape} image at quality {quality}; "
                    "cannot split off its tables"
                )
            frame = self._frames[(quality, shape)] = _Frame(tables=tables, prefix=prefix)
        return frame

    def strip(self, file: bytes, image: np.ndarray, quality: int) -> bytes:
        """Scan data + EOI (tables and headers left out)."""
        prefix = self._frame(quality, image.shape).prefix  # type: ignore[arg-type]
        if not file.startswith(prefix) or not file.endswith(EOI):
            raise CodecError(
                f"libjpeg wrote a JPEG whose header differs from the shared one at quality {quality}"
            )
        return file[len(prefix) :]

    def rebuild(self, payload: bytes, quality: int, shape: tuple[int, int, int]) -> bytes:
        """The standard JPEG file: the shared prefix (SOI .. SOS) and the payload."""
        _check_payload(payload)
        return self._frame(quality, shape).prefix + payload

    def read(self, file: bytes, shape: tuple[int, int, int]) -> np.ndarray:
        mode = "L" if shape[2] == 1 else "RGB"
        try:
            img = Image.frombytes(mode, (shape[1], shape[0]), file, "jpeg", mode, "")
        except (OSError, ValueError) as e:
            raise CodecError(f"jpeg payload is corrupt or truncated ({e})") from None
        return to_array(img, shape, self.name)

    def shared(self, quality: int, shape: tuple[int, int, int]) -> bytes:
        """The tables-only JPEG stream (SOI, DQT, DHT, EOI) shared by every image at ``quality``."""
        return self._frame(quality, shape).tables

    def settings(self) -> dict[str, Any]:
        return {
            "subsampling": self.subsampling,
            "colour_space": "YCbCr (grey images: one component)",
            "huffman_tables": "standard (T.81 Annex K), not optimized per image",
            "quantization_tables": "T.81 Annex K scaled by libjpeg quality, baseline",
            "payload": "entropy-coded scan data + EOI; SOF0/SOS rebuilt from the image shape",
            "shared_header": "tables-only JPEG stream (SOI, DQT, DHT, EOI) per quality",
        }


register_codec("jpeg", JpegCodec)
