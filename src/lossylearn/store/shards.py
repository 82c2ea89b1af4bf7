"""Parquet shards: one file per chunk of coded images.

Columns: ``index`` (position in the source split), ``label``, ``quality`` (codec quality used for
that image), ``data`` (the coded payload, exactly the stored bytes), ``mse_to_noisy`` and
``mae_to_noisy`` (distortion between the reconstruction and the noisy image, 0-255 scale).
No column holds or derives from the clean images.

A reader holds a shard as :class:`ShardData`, parsed from bytes it has already checked against the
manifest's SHA-256 (:func:`parse_shard`): the payloads stay in one Arrow buffer, not one Python
object per image, and ``payloads=False`` parses only the small index columns.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from lossylearn.errors import StoreError
from lossylearn.store.layout import atomic_write_bytes

SHARD_SCHEMA = pa.schema(
    [
        ("index", pa.int64()),
        ("label", pa.int64()),
        ("quality", pa.int16()),
        ("data", pa.binary()),
        ("mse_to_noisy", pa.float64()),
        ("mae_to_noisy", pa.float64()),
    ]
)


@dataclass(frozen=True)
class ShardRows:
    """The rows of one shard, column by column."""

    index: np.ndarray
    label: np.ndarray
    quality: np.ndarray
    data: list[bytes]
    mse_to_noisy: np.ndarray
    mae_to_noisy: np.ndarray

    def __len__(self) -> int:
        return len(self.data)


def shard_bytes(rows: ShardRows) -> bytes:
    """Serialise rows to Parquet bytes (deterministic for equal rows and library versions)."""
    table = pa.Table.from_arrays(
        [
            pa.array(rows.index, pa.int64()),
            pa.array(rows.label, pa.int64()),
            pa.array(rows.quality, pa.int16()),
            pa.array(rows.data, pa.binary()),
            pa.array(rows.mse_to_noisy, pa.float64()),
            pa.array(rows.mae_to_noisy, pa.float64()),
        ],
        schema=SHARD_SCHEMA,
    )
    buf = io.BytesIO()
    # Coded images are already compressed: another general-purpose pass gains nothing.
    pq.write_table(table, buf, compression="none", use_dictionary=["label", "quality"])
    return buf.getvalue()


def write_shard(path: Path, rows: ShardRows) -> bytes:
    """Write a shard atomically; returns the bytes written (for checksumming)."""
    data = shard_bytes(rows)
    atomic_write_bytes(path, data)
    return data


def read_shard(path: Path) -> ShardRows:
    """Read a shard back; raises StoreError if the file is not a valid shard."""
    if not path.is_file():  # a FIFO or device would block or never end
        raise StoreError(f"{path}: shard is missing or not a regular file")
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"{path}: cannot read shard ({exc})") from None
    if not table.schema.equals(SHARD_SCHEMA, check_metadata=False):
        raise StoreError(
            f"{path}: shard has columns {table.schema.names}, expected {SHARD_SCHEMA.names}"
        )
    return ShardRows(
        index=table.column("index").to_numpy(),
        label=table.column("label").to_numpy(),
        quality=table.column("quality").to_numpy(),
        data=table.column("data").to_pylist(),
        mse_to_noisy=table.column("mse_to_noisy").to_numpy(),
        mae_to_noisy=table.column("mae_to_noisy").to_numpy(),
    )


INDEX_COLUMNS = ("index", "label", "quality")
"""The columns a reader needs to know what a shard holds without its payloads."""


@dataclass(frozen=True)
class ShardData:
    """A shard as a reader holds it: the index columns, and the payloads (absent when only the
    index columns were parsed) in one Arrow array."""

    index: np.ndarray
    label: np.ndarray
    quality: np.ndarray
    data: pa.BinaryArray | None

    def __len__(self) -> int:
        return len(self.index)

    def payload(self, row: int) -> bytes:
        """The stored bytes of row ``row``."""
        assert self.data is not None, "this shard was read without its payloads"
        return self.data[row].as_py()  # type: ignore[no-any-return]

    @property
    def nbytes(self) -> int:
        """Memory the shard takes (roughly)."""
        cols = self.index.nbytes + self.label.nbytes + self.quality.nbytes
        return cols + (self.data.nbytes if self.data is not None else 0)


def release_memory() -> None:
    """Hand memory Arrow's pool no longer uses back to the system (a reader calls it after every
    shard it drops, so memory follows the cache, not the shards read so far)."""
    pa.default_memory_pool().release_unused()


def parse_shard(blob: bytes | pa.Buffer, where: str, *, payloads: bool = True) -> ShardData:
    """Parse a shard from its bytes; StoreError unless it has exactly the shard schema.

    ``payloads=False`` reads only :data:`INDEX_COLUMNS` (Parquet column projection).
    """
    try:
        pf = pq.ParquetFile(pa.BufferReader(blob), pre_buffer=False)
        if not pf.schema_arrow.equals(SHARD_SCHEMA, check_metadata=False):
            raise StoreError(
                f"{where}: shard has columns {pf.schema_arrow.names}, expected {SHARD_SCHEMA.names}"
            )
        columns = [*INDEX_COLUMNS, "data"] if payloads else list(INDEX_COLUMNS)
        table = pf.read(columns=columns, use_threads=False)  # Arrow's thread pool keeps memory
    except (OSError, pa.ArrowException) as exc:
        raise StoreError(f"{where}: cannot read shard ({exc})") from None
    if any(table.column(c).null_count for c in INDEX_COLUMNS):
        raise StoreError(f"{where}: shard has rows without index, label or quality")
    data = None
    if payloads:
        column = table.column("data")
        data = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
        if data.null_count:
            raise StoreError(f"{where}: shard has images without data")
    return ShardData(
        index=_numpy(table.column("index"), np.int64),
        label=_numpy(table.column("label"), np.int64),
        quality=_numpy(table.column("quality"), np.int16),
        data=data,
    )


def _numpy(column: pa.ChunkedArray, dtype: type) -> np.ndarray:
    """A null-free numeric column as a numpy copy (Arrow's own to_numpy imports pandas)."""
    arr = column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()
    if len(arr) == 0:
        return np.zeros(0, dtype=dtype)
    values = np.frombuffer(arr.buffers()[1], dtype=dtype)
    return values[arr.offset : arr.offset + len(arr)].copy()
