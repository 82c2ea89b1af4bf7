"""Reading IDX files (the MNIST / Fashion-MNIST container), raw or gzip-compressed.

The IDX format: a 4-byte magic ``0x00 0x00 <type> <ndim>``, then ``ndim`` big-endian uint32
dimensions, then the data in C order, big-endian. Every file is validated: the magic, the type code
and the exact data length (a truncated download is reported with the number of bytes missing).
"""

from __future__ import annotations

import hashlib
import zlib
from pathlib import Path

import numpy as np

from lossylearn.errors import DataError

__all__ = ["read_idx", "verify_md5sums"]

#: IDX type code -> big-endian numpy dtype.
IDX_DTYPES: dict[int, np.dtype] = {
    0x08: np.dtype(np.uint8),
    0x09: np.dtype(np.int8),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_GZIP_MAGIC = b"\x1f\x8b"


def _gunzip(path: Path, raw: bytes) -> bytes:
    """Decompress every gzip member of ``raw``; a stream that ends early keeps what was decoded.

    A truncated stream is not an error here: the caller reports it through the IDX length check,
    which can say how many bytes are missing. A corrupt stream (bad header, bad CRC) is an error.
    """
    out: list[bytes] = []
    data = raw
    while data:
        dec = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        try:
            out.append(dec.decompress(data))
            out.append(dec.flush())
        except zlib.error as exc:
            raise DataError(f"{path}: corrupt gzip stream ({exc})") from None
        if not dec.eof:  # the compressed stream stopped before its end marker
            break
        data = dec.unused_data.lstrip(b"\x00")  # gzip allows zero padding between members
    return b"".join(out)


def read_idx(path: str | Path) -> np.ndarray:
    """Read an IDX file (``.gz`` or raw, detected from its first bytes) into a native-endian array.

    Raises :class:`DataError` for a missing file, a wrong magic number, an unknown type code, or a
    data section whose length differs from the product of the dimensions (truncated or padded).
    """
    p = Path(path)
    try:
        raw = p.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{p}: IDX file not found") from None
    except OSError as exc:
        raise DataError(f"{p}: cannot read IDX file ({exc.strerror or exc})") from None
    data = _gunzip(p, raw) if raw[:2] == _GZIP_MAGIC else raw
    if len(data) < 4:
        raise DataError(
            f"{p}: truncated IDX file: {len(data)} bytes, shorter than the 4-byte magic"
        )
    if data[0] != 0 or data[1] != 0:
        raise DataError(
            f"{p}: not an IDX file: magic {data[:4].hex()} does not start with 0000 "
            "(expected 00000801 for labels or 00000803 for images)"
        )
    type_code, ndim = data[2], data[3]
    if type_code not in IDX_DTYPES:
        known = ", ".join(f"0x{c:02x}" for c in IDX_DTYPES)
        raise DataError(f"{p}: unknown IDX type code 0x{type_code:02x} (known: {known})")
    if ndim == 0:
        raise DataError(f"{p}: IDX header declares 0 dimensions")
    header_len = 4 + 4 * ndim
    if len(data) < header_len:
        raise DataError(
            f"{p}: truncated IDX file: header needs {header_len} bytes, found {len(data)}"
        )
    dims = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    dtype = IDX_DTYPES[type_code]
    expected = int(np.prod(dims, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header_len
    if found < expected:
        raise DataError(
            f"{p}: truncated IDX file: expected {expected} bytes of data, found {found}"
        )
    if found > expected:
        raise DataError(
            f"{p}: malformed IDX file: expected {expected} bytes of data, found {found} "
            f"({found - expected} trailing bytes)"
        )
    arr = np.frombuffer(data, dtype=dtype, offset=header_len).reshape(dims)
    return arr.astype(dtype.newbyteorder("="), copy=True)


def _md5(path: Path) -> str:
    h = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def verify_md5sums(folder: Path, files: list[Path]) -> list[str]:
    """Check ``files`` against ``folder/MD5SUMS`` (``md5sum`` output format) when it exists.

    Files not listed in MD5SUMS are not checked. Returns the names that were verified; raises
    :class:`DataError` on a mismatch or an unreadable MD5SUMS line.
    """
    sums_path = folder / "MD5SUMS"
    if not sums_path.is_file():
        return []
    expected: dict[str, str] = {}
    for lineno, line in enumerate(sums_path.read_text().splitlines(), start=1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 1)
        if len(parts) != 2 or len(parts[0]) != 32:
            raise DataError(f"{sums_path}:{lineno}: expected '<md5>  <file name>', got {line!r}")
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
