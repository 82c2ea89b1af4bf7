"""Where things live inside a store folder, and the atomic-write primitive everything uses.

A store is a folder::

    manifest.json              written last, atomically: its presence marks a complete store
    shards/shard-00000.parquet one Parquet file per chunk of images (coded bytes, label, index, ...)
    headers/<codec>-q<Q>.bin   bytes shared by every image coded at quality Q (JPEG tables)
    .lossylearn-run.json       progress of an unfinished run (removed when the store is committed)

Every file is written to a temporary name in the same folder and renamed into place, so a killed
process leaves either the old state or the new one, never half a file under a final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

STORE_FORMAT = "lossylearn-store/1"
MANIFEST = "manifest.json"
RUN_STATE = ".lossylearn-run.json"
SHARDS_DIR = "shards"
HEADERS_DIR = "headers"


def shard_name(chunk: int) -> str:
    """Relative path of the shard that holds chunk number ``chunk``."""
    return f"{SHARDS_DIR}/shard-{chunk:05d}.parquet"


def header_name(codec: str, quality: int) -> str:
    """Relative path of the shared header for ``codec`` at ``quality``."""
    return f"{HEADERS_DIR}/{codec}-q{quality:03d}.bin"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted JSON, atomically."""
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def remove_stale_temporaries(directory: Path) -> int:
    """Delete temporary files a killed writer left in a store folder; returns how many."""
    n = 0
    for folder in (directory, directory / SHARDS_DIR, directory / HEADERS_DIR):
        if folder.is_dir():
            for tmp in folder.glob(".*.tmp"):
                tmp.unlink(missing_ok=True)
                n += 1
    return n


def sha256_file(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
