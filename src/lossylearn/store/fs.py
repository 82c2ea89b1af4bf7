"""Where a store lives: a local folder, or a URL of any filesystem fsspec knows (``s3://``,
``gs://``, ``az://``, ``memory://``, ...).

Every read of a store goes through :class:`StoreLocation`, which keeps the store's rules on any
filesystem: a relative path taken from a manifest is refused if it could leave the store (absolute,
``..``, backslash, NUL; on a local disk also a link that leads out), only regular files are read,
and a read is refused when the file's size differs from the size the manifest pins (so a huge or
endless file is never pulled in). Object stores have no links and no special files, so the lexical
check is the whole containment check there.

A URL needs the filesystem's package (``pip install 'lossylearn[s3]'`` for ``s3://``);
``storage_options`` go to it as they are (``endpoint_url``, ``key``, ``secret``, ``anon``, ...), and
fsspec's own configuration applies too (``FSSPEC_S3_ENDPOINT_URL``, ``AWS_*`` variables).
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from pathlib import Path
from typing import Any

import pyarrow as pa

from lossylearn.errors import StoreError
from lossylearn.store.layout import MANIFEST, parse_json_bytes, relative_parts
from lossylearn.store.manifest import Manifest, read_manifest

_SCHEME = re.compile(r"^([a-z][a-z0-9+.-]*):/+(.*)$")
_LOCAL = ("file", "local")
_PACKAGES = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
}
_BLOCK = 1 << 20
MANIFEST_LIMIT = 64 << 20
"""A larger manifest is refused (at about 250 bytes a shard: 250,000 shards of 1,024 images)."""


def remote_url(where: str | Path) -> str | None:
    """The normalised URL when ``where`` names a remote filesystem, None for a local path.

    ``Path("s3://bucket/key")`` collapses the double slash (``s3:/bucket/key``): accepted too, so a
    URL survives being passed through a ``Path`` (the CLI and ``RunOptions`` do that). Only schemes
    fsspec knows count; ``file://`` is local.
    """
    m = _SCHEME.match(os.fspath(where))
    if m is None or m.group(1) in _LOCAL:
        return None
    import fsspec

    if m.group(1) not in fsspec.available_protocols():
        return None
    return f"{m.group(1)}://{m.group(2)}".rstrip("/")


def local_path(where: str | Path) -> Path:
    """``where`` as a local path (``file://`` stripped)."""
    m = _SCHEME.match(os.fspath(where))
    if m is not None and m.group(1) in _LOCAL:
        return Path("/" + m.group(2))
    return Path(where)


def connect(url: str, storage_options: dict[str, Any] | None) -> tuple[Any, str]:
    """(fsspec filesystem, path inside it) for a remote URL; StoreError if its package is missing."""
    from fsspec.core import url_to_fs

    try:
        fs, root = url_to_fs(url, **(storage_options or {}))
    except ImportError as exc:
        proto = url.split(":", 1)[0]
        pkg = _PACKAGES.get(proto)
        hint = f" (pip install {'lossylearn[s3]' if pkg == 's3fs' else pkg})" if pkg else ""
        raise StoreError(f"{url}: no filesystem for {proto}://{hint}: {exc}") from None
    return fs, str(root).rstrip("/")


class StoreLocation:
    """A store's folder or URL, with checked reads of the files its manifest lists.

    Pickles without its filesystem connection; each process (a DataLoader worker, say) opens its
    own on first use.
    """

    def __init__(self, where: str | Path, storage_options: dict[str, Any] | None = None) -> None:
        self.url = remote_url(where)
        self.options = dict(storage_options or {})
        self._fs: Any = None
        self._pid = -1
        if self.url is None:
            self.local: Path | None = local_path(where)
            self.root = str(self.local)
            self._real: Path | None = None
        else:
            self.local = None
            self._fs, self.root = connect(self.url, self.options)
            self._pid = os.getpid()

    def __str__(self) -> str:
        return self.url if self.url is not None else str(self.local)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_fs": None, "_pid": -1}

    @property
    def fs(self) -> Any:
        """The fsspec filesystem of a remote store, opened once per process."""
        assert self.url is not None
        if self._fs is None or self._pid != os.getpid():
            self._fs, _ = connect(self.url, self.options)
            self._pid = os.getpid()
        return self._fs

    def path(self, rel: object, what: str) -> str:
        """The full path of ``rel`` inside the store; StoreError if it could lead outside."""
        parts = relative_parts(self, rel, what)
        if self.local is None:
            return "/".join([self.root, *parts])
        path = self.local.joinpath(*parts)
        try:
            if self._real is None:
                self._real = self.local.resolve()
            if not path.resolve().is_relative_to(self._real):
                raise StoreError(f"{self}: {what} {rel!r} leads outside the store (a link)")
        except OSError as exc:
            raise StoreError(f"{self}: cannot resolve {what} {rel!r} ({exc})") from None
        return str(path)

    def exists(self, rel: str) -> bool:
        """Whether anything is at ``rel`` (a file, folder or link)."""
        full = self.path(rel, "file")
        if self.local is None:
            return bool(self.fs.exists(full))
        return os.path.lexists(full)

    def size(self, rel: str, what: str) -> int:
        """Bytes of the regular file at ``rel``; StoreError when it is missing or not a file."""
        full = self.path(rel, what)
        try:
            if self.local is None:
                self.fs.invalidate_cache(full)  # another process may have replaced the object
                info = self.fs.info(full)
                if info.get("type") != "file":
                    raise StoreError(f"{self}: {rel} is not a regular file")
                return int(info["size"])
            st = os.stat(full)
        except FileNotFoundError:
            raise StoreError(f"{self}: {rel} is listed in the manifest but missing") from None
        except OSError as exc:
            raise StoreError(f"{self}: cannot read {rel} ({exc})") from None
        if not stat.S_ISREG(st.st_mode):  # a FIFO or device would block or never end
            raise StoreError(f"{self}: {rel} is not a regular file")
        return st.st_size

    def _check_size(self, rel: str, what: str, size: int | None, limit: int | None) -> None:
        got = self.size(rel, what)
        if size is not None and got != size:
            raise StoreError(f"{self}: {rel} has {got} bytes, the manifest says {size}")
        if limit is not None and got > limit:
            raise StoreError(f"{self}: {what} is {got} bytes, more than {limit} allowed")

    def read(
        self, rel: str, what: str, *, size: int | None = None, limit: int | None = None,
        arrow: bool = False,
    ) -> Any:  # fmt: skip
        """The bytes of the regular file at ``rel``, refused unless it has exactly ``size`` bytes
        (when given) and at most ``limit``: ``bytes``, or with ``arrow`` a ``pyarrow.Buffer`` (a
        local file is then read straight into Arrow's memory pool, which gives memory back)."""
        self._check_size(rel, what, size, limit)
        full = self.path(rel, what)
        cap = size if size is not None else limit
        try:
            if self.local is None:
                data = self.fs.cat_file(full, start=0, end=None if cap is None else cap + 1)
                data = pa.py_buffer(data) if arrow else data
            elif arrow:
                with pa.OSFile(full) as fh:
                    data = fh.read_buffer(None if cap is None else cap + 1)
            else:
                with open(full, "rb") as fh:
                    data = fh.read() if cap is None else fh.read(cap + 1)
        except FileNotFoundError:
            raise StoreError(f"{self}: {rel} is listed in the manifest but missing") from None
        except OSError as exc:
            raise StoreError(f"{self}: cannot read {rel} ({exc})") from None
        if size is not None and len(data) != size:  # changed between the size check and the read
            raise StoreError(f"{self}: {rel} has {len(data)} bytes, the manifest says {size}")
        if limit is not None and len(data) > limit:
            raise StoreError(f"{self}: {what} is more than {limit} bytes")
        return data

    def sha256(self, rel: str, what: str, *, size: int | None = None) -> str:
        """Hex SHA-256 of the file at ``rel``, streamed (memory stays one block)."""
        self._check_size(rel, what, size, None)
        full = self.path(rel, what)
        h = hashlib.sha256()
        try:
            with open(full, "rb") if self.local is not None else self.fs.open(full, "rb") as fh:
                for block in iter(lambda: fh.read(_BLOCK), b""):
                    h.update(block)
        except OSError as exc:
            raise StoreError(f"{self}: cannot read {rel} ({exc})") from None
        return h.hexdigest()

    def join(self, rel: str) -> str:
        """``rel`` appended to the store's URL or folder, for messages."""
        return f"{self}/{rel}"


def read_store_manifest(location: StoreLocation, key: bytes | None) -> Manifest:
    """Read and check the manifest of the store at ``location`` (see :func:`read_manifest`)."""
    if location.local is not None:
        return read_manifest(location.local, key=key)
    where = location.join(MANIFEST)
    if not location.exists(MANIFEST):
        raise StoreError(
            f"{location}: no manifest.json, so this is not a complete store "
            "(an interrupted run can be finished with `lossylearn compress ... --resume`)"
        )
    data = parse_json_bytes(
        location.read(MANIFEST, "manifest", limit=MANIFEST_LIMIT), where, "manifest"
    )
    try:
        return Manifest.from_dict(data, key=key)
    except StoreError as exc:
        raise StoreError(f"{where}: {exc}") from None
