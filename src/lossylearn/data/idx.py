"""Reading IDX files (the MNIST / Fashion-MNIST container), raw or gzip-compressed.

The IDX format: a 4-byte magic ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian uint32
dimensions, then the data in C order, big-endian. Every file is validated: the magic, the type code,
the dimensions (no zero, a product the data can hold) and the exact data length (a truncated
download is reported with the number of bytes missing). The header is checked before the data is
read or decompressed, and a gzip stream is never inflated past the length the header declares, so
a hostile file cannot make the reader allocate more than the data it really holds.
"""

from __future__ import annotations

import hashlib
import math
import os
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np

from lossylearn.data._safe import decode_text, quote
from lossylearn.errors import DataError

__all__ = ["MAX_IDX_BYTES", "read_idx", "verify_md5sums"]

#: IDX type code -> big-endian numpy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
#: Most data bytes an IDX file may declare (MNIST's largest file holds 47 MB).
MAX_IDX_BYTES = 4 << 30
#: Most dimensions an IDX header may declare (numpy's own limit is 64).
MAX_IDX_NDIM = 16
#: Largest MD5SUMS file read (the official ones are a few hundred bytes).
MAX_MD5SUMS_BYTES = 1 << 20

_GZIP_MAGIC = b"\x1f\x8b"
_BLOCK = 1 << 20
#: Trailing bytes past the declared data that are counted before giving up counting.
_TRAILING_COUNT = 64 << 20


class _Raw:
    """Plain reads from an open file."""

    def __init__(self, f: BinaryIO) -> None:
        self._f = f

    def read(self, n: int) -> bytes:
        return self._f.read(n)


class _Gunzip:
    """Incremental reads of every gzip member of a file, never inflating more than asked for.

    A stream that ends early just ends (the caller's length check reports how much is missing); a
    corrupt stream (bad header, bad CRC, garbage after a member) is a :class:`DataError`.
    """

    def __init__(self, path: Path, f: BinaryIO) -> None:
        self._path, self._f = path, f
        self._dec = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self._pending = b""  # compressed bytes not yet given to the decompressor
        self._done = False

    def _fill(self) -> bool:
        if not self._pending:
            self._pending = self._f.read(_BLOCK)
        return bool(self._pending)

    def read(self, n: int) -> bytes:
        out = bytearray()
        try:
            while len(out) < n and not self._done:
                if self._dec.eof:  # next member, after the zero padding gzip allows between them
                    self._pending = self._dec.unused_data + self._pending
                    while self._fill() and not self._pending.lstrip(b"\x00"):
                        self._pending = b""
                    self._pending = self._pending.lstrip(b"\x00")
                    if not self._pending:
                        self._done = True
                        break
                    self._dec = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
                data = self._dec.unconsumed_tail
                if not data:
                    if not self._fill():  # the stream stopped before its end marker
                        self._done = True
                        break
                    data, self._pending = self._pending, b""
                out += self._dec.decompress(data, n - len(out))
        except zlib.error as exc:
            raise DataError(f"{self._path}: corrupt gzip stream ({exc})") from None
        return bytes(out)


def _read_exactly(src: _Raw | _Gunzip, n: int) -> bytearray:
    """Up to ``n`` bytes (fewer only at the end of the data)."""
    out = bytearray()
    while len(out) < n:
        block = src.read(min(n - len(out), 64 * _BLOCK))
        if not block:
            break
        out += block
    return out


def read_idx(
    path: str | Path,
    *,
    ndim: int | None = None,
    dtype: np.dtype | type | None = None,
    expected: str | None = None,
) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw, detected from its first bytes) into a native-endian array.

    Raises :class:`DataError` for a missing file, a wrong magic number, an unknown type code, a zero
    or oversized dimension, more than :data:`MAX_IDX_BYTES` of declared data, or a data section whose
    length differs from the product of the dimensions (truncated or padded). ``ndim`` and ``dtype``,
    when given, are checked against the header before any data is read; ``expected`` words that
    error (e.g. "a uint8 IDX image file (N, H, W)").
    """
    p = Path(path)
    try:
        with p.open("rb") as f:
            return _read_idx(p, f, ndim, None if dtype is None else np.dtype(dtype), expected)
    except FileNotFoundError:
        raise DataError(f"{p}: IDX file not found") from None
    except IsADirectoryError:
        raise DataError(f"{p}: is a folder, not an IDX file") from None
    except OSError as exc:
        raise DataError(f"{p}: cannot read IDX file ({exc.strerror or exc})") from None


def _read_idx(
    p: Path, f: BinaryIO, want_ndim: int | None, want_dtype: np.dtype | None, expected: str | None
) -> np.ndarray:
    gz = f.read(2) == _GZIP_MAGIC
    f.seek(0)
    src: _Raw | _Gunzip = _Gunzip(p, f) if gz else _Raw(f)
    head = _read_exactly(src, 4)
    if len(head) < 4:
        raise DataError(
            f"{p}: truncated IDX file: {len(head)} bytes, shorter than the 4-byte magic"
        )
    if head[0] != 0 or head[1] != 0:
        hint = " (nor gzip-compressed)" if p.suffix == ".gz" else ""
        raise DataError(
            f"{p}: not an IDX file{hint}: magic {head.hex()} does not start with 0000 "
            "(expected 00000801 for labels or 00000803 for images)"
        )
    type_code, ndim = head[2], head[3]
    if type_code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_DTYPES)
        raise DataError(f"{p}: unknown IDX type code 0x{type_code:02x} (known: {known})")
    if ndim == 0:
        raise DataError(f"{p}: IDX header declares 0 dimensions")
    if ndim > MAX_IDX_NDIM:
        raise DataError(
            f"{p}: IDX header declares {ndim} dimensions (at most {MAX_IDX_NDIM} supported)"
        )
    header_len = 4 + 4 * ndim
    raw_dims = _read_exactly(src, 4 * ndim)
    if len(raw_dims) < 4 * ndim:
        raise DataError(
            f"{p}: truncated IDX file: header needs {header_len} bytes, found {4 + len(raw_dims)}"
        )
    dims = tuple(int(d) for d in np.frombuffer(raw_dims, dtype=">u4"))
    dtype = IDX_DTYPES[type_code]
    native = dtype.newbyteorder("=")
    if (want_ndim is not None and ndim != want_ndim) or (
        want_dtype is not None and native != want_dtype
    ):
        want = expected or f"a {want_dtype or 'IDX'} file with {want_ndim or 'any'} dimensions"
        raise DataError(f"{p}: expected {want}, got {native} {dims}")
    if 0 in dims:
        raise DataError(f"{p}: IDX header declares a zero dimension: {dims}")
    want_bytes = math.prod(dims) * dtype.itemsize  # Python ints: no overflow
    if want_bytes > MAX_IDX_BYTES:
        raise DataError(
            f"{p}: IDX header declares dimensions {dims}: {want_bytes:,} bytes of data, more than "
            f"the {MAX_IDX_BYTES:,} this reader accepts (a corrupt or hostile header)"
        )
    if not gz:  # check the length against the file size before reading any data
        _check_length(p, want_bytes, os.fstat(f.fileno()).st_size - header_len)
    data = _read_exactly(src, want_bytes + 1)  # one byte more shows trailing data
    found, more = len(data), False
    if found > want_bytes:  # count what follows without keeping it (it may be a gzip bomb)
        while block := src.read(_BLOCK):
            found += len(block)
            if found > want_bytes + _TRAILING_COUNT:
                more = True
                break
    _check_length(p, want_bytes, found, more)
    arr = np.frombuffer(data, dtype=dtype).reshape(dims)
    return arr.astype(native, copy=True)


def _check_length(p: Path, expected: int, found: int, more: bool = False) -> None:
    if found < expected:
        raise DataError(
            f"{p}: truncated IDX file: expected {expected} bytes of data, found {found}"
        )
    if found > expected:
        extra = f"over {found - expected}" if more else f"{found - expected}"
        raise DataError(
            f"{p}: malformed IDX file: expected {expected} bytes of data, found "
            f"{'more than ' if more else ''}{found} ({extra} trailing bytes)"
        )


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(_BLOCK), b""):
                h.update(block)
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    return h.hexdigest()


def _read_md5sums(sums_path: Path) -> str:
    try:
        with sums_path.open("rb") as f:
            raw = f.read(MAX_MD5SUMS_BYTES + 1)
    except OSError as exc:
        raise DataError(f"{sums_path}: cannot read ({exc.strerror or exc})") from None
    if len(raw) > MAX_MD5SUMS_BYTES:
        raise DataError(f"{sums_path}: larger than {MAX_MD5SUMS_BYTES:,} bytes; not an md5sum list")
    return decode_text(raw, str(sums_path), "expected md5sum's text output")


def verify_md5sums(folder: Path, files: list[Path]) -> list[str]:
    """Check ``files`` against ``folder/MD5SUMS`` (``md5sum`` output format) when it exists.

    Files not listed in MD5SUMS are not checked. Returns the names that were verified; raises
    :class:`DataError` on a mismatch or an unreadable, non-text or malformed MD5SUMS line.
    """
    sums_path = folder / "MD5SUMS"
    if not sums_path.is_file():
        return []
    expected: dict[str, str] = {}
    for lineno, line in enumerate(_read_md5sums(sums_path).splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if (
            len(parts) != 2
            or len(parts[0]) != 32
            or not all(c in "0123456789abcdefABCDEF" for c in parts[0])
        ):
            raise DataError(
                f"{sums_path}:{lineno}: expected '<md5>  <file name>', got {quote(line)}"
            )
        expected[parts[1].lstrip("*").strip()] = parts[0].lower()
    checked = []
    for f in files:
        want = expected.get(f.name)
        if want is None:
            continue
        got = _md5(f)
        if got != want:
            raise DataError(f"{f}: MD5 mismatch: MD5SUMS says {want}, file has {got}")
        checked.append(f.name)
    return checked
