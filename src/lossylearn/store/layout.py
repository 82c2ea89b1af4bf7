"""Where things live inside a store folder, and the atomic-write primitive everything uses.

A store is a folder::

    manifest.json              written last, atomically: its presence marks a complete store
    shards/shard-00000.parquet one Parquet file per chunk of images (coded bytes, label, index, ...)
    headers/<codec>-q<Q>.bin   bytes shared by every image coded at quality Q (JPEG tables)
    .lossylearn-run.json       progress of an unfinished run (removed when the store is committed)

Beside the folder, ``<store>.owner.json`` is the data owner's file (see :mod:`lossylearn.store.owner`):
everything derived from the clean images. It is never inside the store.

Every file is written to a temporary name in the same folder and renamed into place, so a killed
process leaves either the old state or the new one, never half a file under a final name.
"""

from __future__ import annotations

import hashlib
import json
import os
import stat
import tempfile
import threading
from pathlib import Path
from typing import Any

from lossylearn.errors import StoreError

STORE_FORMAT = "lossylearn-store/2"
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


_UMASK_LOCK = threading.Lock()


def _file_mode() -> int:
    """The mode a plain ``open()`` would give a new file: 0o666 less the process umask."""
    with _UMASK_LOCK:  # reading the umask means setting it; keep other threads out meanwhile
        mask = os.umask(0o022)
        os.umask(mask)
    return 0o666 & ~mask


def atomic_write_bytes(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` through a temporary file, fsync and rename.

    The file gets the permissions of an ordinary new file (0o666 less the umask), not the 0o600
    of :func:`tempfile.mkstemp`, so a store is readable by whoever may read its folder.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, _file_mode())
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def to_json(obj: Any) -> str:
    """Indented, key-sorted, strict JSON (NaN and infinities are refused: they are not JSON)."""
    return json.dumps(obj, indent=2, sort_keys=True, allow_nan=False) + "\n"


def atomic_write_json(path: Path, obj: Any) -> None:
    """Write ``obj`` as indented, key-sorted, strict JSON, atomically."""
    atomic_write_bytes(path, to_json(obj).encode())


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def read_json_file(path: Path, what: str, *, max_bytes: int = 64 << 20) -> Any:
    """Parse a strict-JSON regular file of at most ``max_bytes``; StoreError otherwise.

    Only regular files are opened (a FIFO or device in place of a store file would block or
    never end), and NaN/Infinity, which Python's json accepts but JSON does not, are refused.
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise StoreError(f"{path}: {what} is missing") from None
    except OSError as exc:
        raise StoreError(f"{path}: cannot read {what} ({exc.strerror})") from None
    if not stat.S_ISREG(st.st_mode):
        raise StoreError(f"{path}: {what} is not a regular file")
    if st.st_size > max_bytes:
        raise StoreError(f"{path}: {what} is {st.st_size} bytes, more than {max_bytes} allowed")
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise StoreError(f"{path}: cannot read {what} ({exc.strerror})") from None
    return parse_json_bytes(data, path, what)


def parse_json_bytes(data: bytes, where: object, what: str) -> Any:
    """Parse strict JSON (UTF-8, no NaN or infinities) read from ``where``; StoreError otherwise."""
    try:
        return json.loads(data.decode("utf-8"), parse_constant=_reject_constant)
    except (UnicodeDecodeError, ValueError) as exc:
        raise StoreError(f"{where}: {what} is not valid JSON ({exc})") from None


def relative_parts(where: object, rel: object, what: str) -> list[str]:
    """The components of a relative path from a manifest or run state, refused (StoreError) unless
    it names something inside the store: no absolute path, no ``..``, ``.`` or empty component, no
    backslash or NUL. On a filesystem without links (object storage) this is the whole check."""
    if not isinstance(rel, str) or not rel or "\\" in rel or "\x00" in rel:
        raise StoreError(f"{where}: {what} {rel!r} is not a relative path inside the store")
    parts = rel.split("/")
    if rel.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise StoreError(f"{where}: {what} {rel!r} points outside the store")
    return parts


def inside(directory: Path, rel: object, what: str) -> Path:
    """``directory / rel`` for a relative path from a manifest or run state that stays inside
    ``directory``: no absolute paths, no ``..``, no backslashes, no links out. StoreError otherwise.
    """
    path = directory.joinpath(*relative_parts(directory, rel, what))
    try:
        real_dir = directory.resolve()
        if not path.resolve().is_relative_to(real_dir):
            raise StoreError(f"{directory}: {what} {rel!r} leads outside the store (a link)")
    except OSError as exc:
        raise StoreError(f"{directory}: cannot resolve {what} {rel!r} ({exc})") from None
    return path


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
    """Hex SHA-256 of a regular file's bytes (StoreError for anything else)."""
    h = hashlib.sha256()
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise StoreError(f"{path}: not a regular file")
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_bytes(data: bytes) -> str:
    """Hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()
