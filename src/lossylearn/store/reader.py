"""Reading a committed store: ``open_store(DIR_OR_URL)``.

Opening reads the manifest and checks it (types, its integrity digest, and its signature when a
key is given), that every path it lists stays inside the store, and the shared headers against
``image_shape``. It reads no shard: shards are read on demand, each as a whole file (a sequential
read), checked against the size and SHA-256 the manifest pins before any of its bytes is used, and
kept in a small LRU cache (``cache_shards`` shards, at most ``cache_bytes``), so memory does not
grow with the store. Only files the manifest pins by checksum are ever read.

``verify`` decides what is checked up front: ``"auto"`` (default) checks every file at open when
the store is small (at most 64 MiB in at most 256 files: milliseconds) and otherwise acts as
``"lazy"``; ``"lazy"`` checks each file only when first read; ``"full"`` (or ``True``; what
``lossylearn inspect`` does) checks every file at open. In all three, every shard read is checked
again. ``"none"`` (or ``False``) checks no checksum (paths are still confined to the store).

A store is a local folder or a URL of any filesystem fsspec knows (``s3://bucket/store`` with
``storage_options``; see :mod:`lossylearn.store.fs`). Items decode lazily through the codec named
in the manifest. A learned-codec store names its checkpoint by path and SHA-256: it is found at the
recorded path, beside the store, or where ``codec_checkpoint`` says, and used only if its
fingerprint matches.
"""

from __future__ import annotations

import hmac
import threading
from collections import OrderedDict
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from lossylearn.codecs import Codec, get_codec
from lossylearn.errors import CodecError, StoreError
from lossylearn.store.fs import StoreLocation, read_store_manifest
from lossylearn.store.layout import RUN_STATE, header_name, sha256_bytes
from lossylearn.store.manifest import Manifest
from lossylearn.store.shards import ShardData, parse_shard, release_memory

if TYPE_CHECKING:
    import torch


Verify = Literal["auto", "lazy", "full", "none"] | bool
VERIFY_MODES = ("auto", "lazy", "full", "none")
AUTO_FULL_BYTES = 64 << 20
"""``verify="auto"`` checks every file at open when the store's files total at most this ..."""
AUTO_FULL_FILES = 256
"""... and number at most this many."""


def _verify_mode(verify: Verify, manifest: Manifest) -> str:
    if verify is True or verify is False:
        return "full" if verify else "none"
    if verify not in VERIFY_MODES:
        raise StoreError(
            f"verify must be one of {', '.join(VERIFY_MODES)} (or a bool), got {verify!r}"
        )
    if verify == "auto":
        total = sum(int(meta["bytes"]) for meta in manifest.files.values())
        small = total <= AUTO_FULL_BYTES and len(manifest.files) <= AUTO_FULL_FILES
        return "full" if small else "lazy"
    return str(verify)


class Store:
    """A read-only view of a committed store: ``len(store)``, ``store[i] -> (image, label)``.

    Shards load on demand into a bounded LRU cache; ``labels``, ``indices`` and ``qualities`` are
    read on first use from every shard's small columns (Parquet column projection).
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        verify: Verify = "auto",
        codec_checkpoint: str | Path | None = None,
        key: bytes | None = None,
        storage_options: dict[str, Any] | None = None,
        cache_shards: int = 4,
        cache_bytes: int = 256 << 20,
    ) -> None:
        self.location = StoreLocation(directory, storage_options)
        self.directory: Path | str = self.location.local or str(self.location)
        where = str(self.location)
        if self.location.exists(RUN_STATE):
            raise StoreError(
                f"{where}: holds an unfinished run; finish it with "
                "`lossylearn compress ... --resume` before opening it"
            )
        if cache_shards < 1 or cache_bytes < 0:
            raise StoreError(
                f"cache_shards must be >= 1 and cache_bytes >= 0, got {cache_shards}, {cache_bytes}"
            )
        self.manifest: Manifest = read_store_manifest(self.location, key)
        self.verify_mode = _verify_mode(verify, self.manifest)
        for rel in self.manifest.files:  # every listed path stays inside the store
            self.location.path(rel, "file")
        for shard in self.manifest.shards:
            self.location.path(shard["path"], "shard")
        if self.verify_mode == "full":
            self.verify()
        sizes = [int(sh["n_images"]) for sh in self.manifest.shards]
        self._starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)])
        self.cache_shards, self.cache_bytes = int(cache_shards), int(cache_bytes)
        self._cache: OrderedDict[int, ShardData] = OrderedDict()
        self._lock = threading.Lock()
        self._index: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.codec: Codec = _open_codec(self.location.local, where, self.manifest, codec_checkpoint)
        self._headers: dict[int, bytes] = {}
        for q in _manifest_qualities(self.manifest):
            self._header(q)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_cache": OrderedDict(), "_lock": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._lock = threading.Lock()

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return self.manifest.image_shape

    @property
    def shard_sizes(self) -> tuple[int, ...]:
        """Images per shard, in the manifest's order."""
        return tuple(int(v) for v in np.diff(self._starts))

    def __len__(self) -> int:
        return self.manifest.n_images

    # -- checked reads ----------------------------------------------------------------------------

    def _file(self, rel: str, what: str, *, arrow: bool = False) -> Any:
        """A file the manifest pins, checked against its size and SHA-256 (unless ``none``):
        bytes, or a pyarrow Buffer with ``arrow``."""
        meta = self.manifest.files.get(rel)
        if meta is None:
            raise StoreError(f"{self.location}: {rel} has no checksum in the manifest")
        if self.verify_mode == "none":
            return self.location.read(rel, what, arrow=arrow)
        data = self.location.read(rel, what, size=int(meta["bytes"]), arrow=arrow)
        if not hmac.compare_digest(sha256_bytes(data), meta["sha256"]):
            raise StoreError(
                f"{self.location}: {rel} does not match its checksum (corrupt or modified)"
            )
        return data

    def verify(self) -> None:
        """Check every file the manifest lists now: present, same size, same SHA-256 (streamed)."""
        for rel, meta in self.manifest.files.items():
            if self.location.sha256(rel, "file", size=int(meta["bytes"])) != meta["sha256"]:
                raise StoreError(
                    f"{self.location}: {rel} does not match its checksum (corrupt or modified)"
                )

    def _header(self, q: int) -> bytes:
        """The shared header of quality ``q``, checked once against the codec and image_shape."""
        if q not in self._headers:
            rel = header_name(self.codec.name, q)
            # Only a header the manifest pins by checksum is read.
            stored = self._file(rel, "header") if rel in self.manifest.files else b""
            # The shared header depends on the image shape (grey or colour, size): a manifest whose
            # image_shape was altered no longer agrees with the tables the images were coded with.
            if stored != self.codec.shared_header(q, self.image_shape):
                raise StoreError(
                    f"{self.location}: the stored {rel} does not fit image_shape "
                    f"{list(self.image_shape)} in the manifest (altered or damaged)"
                )
            self._headers[q] = stored
        return self._headers[q]

    def _read_shard(self, k: int, *, payloads: bool) -> ShardData:
        entry = self.manifest.shards[k]
        rel = entry["path"]
        blob = self._file(rel, "shard", arrow=True)
        shard = parse_shard(blob, self.location.join(rel), payloads=payloads)
        del blob
        release_memory()
        if len(shard) != entry["n_images"]:
            raise StoreError(
                f"{self.location}: {rel} holds {len(shard)} images, the manifest says "
                f"{entry['n_images']}"
            )
        return shard

    def shard(self, k: int) -> ShardData:
        """Shard ``k`` (manifest order) with its payloads, through the LRU cache."""
        with self._lock:
            hit = self._cache.get(k)
            if hit is not None:
                self._cache.move_to_end(k)
                return hit
        shard = self._read_shard(k, payloads=True)
        with self._lock:
            self._cache[k] = shard
            held = sum(s.nbytes for s in self._cache.values())
            while len(self._cache) > 1 and (
                len(self._cache) > self.cache_shards or held > self.cache_bytes
            ):
                _, old = self._cache.popitem(last=False)
                held -= old.nbytes
                del old
        release_memory()
        return shard

    def locate(self, i: int) -> tuple[int, int]:
        """(shard, row) of image ``i``."""
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a store of {len(self)} images")
        i = int(i) % len(self)
        k = int(np.searchsorted(self._starts, i, side="right")) - 1
        return k, i - int(self._starts[k])

    # -- the index columns ------------------------------------------------------------------------

    def _index_columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self._index is None:
            parts = []
            for k in range(len(self.manifest.shards)):
                with self._lock:
                    cached = self._cache.get(k)
                parts.append(cached or self._read_shard(k, payloads=False))
            self._index = (
                np.concatenate([p.index for p in parts]).astype(np.int64),
                np.concatenate([p.label for p in parts]).astype(np.int64),
                np.concatenate([p.quality for p in parts]).astype(np.int16),
            )
        return self._index

    @property
    def indices(self) -> np.ndarray:
        """Source index of every image (read from every shard on first use)."""
        return self._index_columns()[0]

    @property
    def labels(self) -> np.ndarray:
        """Label of every image (read from every shard on first use)."""
        return self._index_columns()[1]

    @property
    def qualities(self) -> np.ndarray:
        """Codec quality of every image (read from every shard on first use)."""
        return self._index_columns()[2]

    # -- items ------------------------------------------------------------------------------------

    def payload(self, i: int) -> bytes:
        """The stored bytes of image ``i`` (without the shared header)."""
        k, row = self.locate(i)
        return self.shard(k).payload(row)

    def container(self, i: int) -> bytes:
        """Image ``i`` as a standalone standard file (shared header put back in)."""
        k, row = self.locate(i)
        shard = self.shard(k)
        return self.codec.container(shard.payload(row), int(shard.quality[row]), self.image_shape)

    def decode_row(self, shard: ShardData, row: int) -> tuple[np.ndarray, int]:
        """(image uint8 (H, W, C), label) of row ``row`` of a loaded shard."""
        q = int(shard.quality[row])
        self._header(q)
        return self.codec.decode(shard.payload(row), q, self.image_shape), int(shard.label[row])

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        k, row = self.locate(i)
        return self.decode_row(self.shard(k), row)

    def __iter__(self) -> Iterator[tuple[np.ndarray, int]]:
        for k in range(len(self.manifest.shards)):
            shard = self.shard(k)
            for row in range(len(shard)):
                yield self.decode_row(shard, row)

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Decode everything: images uint8 (N, H, W, C) and labels int64 (N,)."""
        out = np.empty((len(self), *self.image_shape), dtype=np.uint8)
        labels = np.empty(len(self), dtype=np.int64)
        for i, (image, label) in enumerate(self):
            out[i], labels[i] = image, label
        return out, labels

    def torch_dataset(self) -> torch.utils.data.Dataset[Any]:
        """A map-style torch Dataset of (float32 tensor (C, H, W) in [0, 1], label).

        Random access loads a whole shard per cache miss: fine for stores that fit the cache; for
        large stores train from :meth:`torch_iterable`, which reads shards in order.
        """
        from lossylearn.store.torch_dataset import StoreDataset

        return StoreDataset(self)

    def torch_iterable(self, **kwargs: Any) -> torch.utils.data.IterableDataset[Any]:
        """An iterable torch Dataset split across ranks and DataLoader workers, with a deterministic
        shard-aware shuffle per epoch and mid-epoch resumption: see
        :class:`lossylearn.store.torch_dataset.StoreIterable` for the arguments."""
        from lossylearn.store.torch_dataset import StoreIterable

        return StoreIterable(self, **kwargs)

    def to_hf_dataset(self) -> Any:
        """The store as an in-memory Hugging Face ``datasets.Dataset``: the columns of
        ``lossylearn export --format hf`` (image, label as a ClassLabel, source_index). Needs the
        ``datasets`` library (a LossylearnError says so when it is missing)."""
        from lossylearn.export_hf import hf_dataset

        return hf_dataset(self)


def _manifest_qualities(manifest: Manifest) -> list[int]:
    """The qualities the manifest says the images use (others are checked on first decode)."""
    recorded = manifest.codec.get("qualities")
    if not isinstance(recorded, dict):
        return []
    return sorted(int(q) for q in recorded if isinstance(q, str) and q.isdigit())


def _open_codec(
    directory: Path | None, where: str, manifest: Manifest, checkpoint: str | Path | None
) -> Codec:
    """The manifest's codec; for a learned codec, its checkpoint found and checked by fingerprint
    (beside the store only when ``directory`` is a local folder)."""
    name = manifest.codec.get("name")
    options = manifest.codec.get("options", {})
    if not isinstance(name, str) or not isinstance(options, dict):
        raise StoreError(f"{where}: manifest codec section is malformed")
    recorded = options.get("checkpoint")
    if recorded is None and checkpoint is None:
        return get_codec(name, **options)
    want = (manifest.codec.get("config") or {}).get("checkpoint_sha256")
    candidates: list[Path] = [Path(checkpoint)] if checkpoint is not None else []
    if isinstance(recorded, str):
        rec = Path(recorded)
        candidates.append(rec)
        if directory is not None:
            candidates += [directory / rec.name, directory.parent / rec.name]
    tried: list[str] = []
    for path in candidates:
        if not path.exists():
            tried.append(f"{path} (missing)")
            continue
        codec = get_codec(name, **{**options, "checkpoint": str(path)})
        got = getattr(codec, "fingerprint", None)
        if want is None or got == want:
            return codec
        tried.append(f"{path} (another checkpoint)")
        if checkpoint is not None and path == Path(checkpoint):
            raise CodecError(
                f"{path} is not the checkpoint this store was coded with (fingerprint "
                f"{str(got)[:12]}, the store needs {str(want)[:12]})"
            )
    raise StoreError(
        f"{where}: cannot find the {name} checkpoint this store was coded with "
        f"(fingerprint {str(want)[:12]}); tried {', '.join(tried)}. Pass --codec-checkpoint PATH, "
        "or put the checkpoint beside the store"
    )


def open_store(directory: str | Path, **options: Any) -> Store:
    """Open a committed store, a local folder or a URL (``s3://bucket/store``, ``gs://...``);
    raises StoreError if it is missing, unfinished, edited or corrupt. The keyword ``options`` are
    :class:`Store`'s:

    ``verify``: ``"auto"`` (default: everything at open for a small store, else ``"lazy"``),
    ``"lazy"`` (each file when first read), ``"full"`` / ``True`` (everything at open), ``"none"`` /
    ``False`` (no checksums); see the module docstring. ``codec_checkpoint`` points to a learned
    codec's checkpoint when it is not at the recorded path or beside the store; ``key`` checks the
    manifest's signature (``compress --signing-key``); ``storage_options`` go to the URL's fsspec
    filesystem (``endpoint_url``, ``key``, ``secret``, ...); ``cache_shards`` and ``cache_bytes``
    bound the decoded shards kept in memory (the most recent one is always kept).

    A universal store (``compress --codec universal``) opens as a
    :class:`lossylearn.universal.reader.UniversalStore`: ``decoder="NAME"`` picks the decoder of its
    checkpoint that turns the stored latents into images (default ``mse``), and ``store.decoders``
    lists them.
    """
    decoder = options.pop("decoder", None)
    location = StoreLocation(directory, options.get("storage_options"))
    if not location.exists(RUN_STATE):
        codec = read_store_manifest(location, options.get("key")).codec
        if codec.get("name") == "universal":
            from lossylearn.universal.reader import UniversalStore

            return UniversalStore(directory, decoder=decoder, **options)
    if decoder is not None:
        raise StoreError("decoder= applies to universal stores (compress --codec universal) only")
    return Store(directory, **options)
