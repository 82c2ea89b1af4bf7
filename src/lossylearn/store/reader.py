"""Reading a committed store: ``open_store(DIR)``.

Opening checks the manifest (types, its integrity digest, and its signature when a key is given),
that every listed file lies inside the store and exists with the recorded size and SHA-256, and
that the shards hold ``n_images`` rows. Only files the manifest pins by checksum are ever read.
Items decode lazily through the codec named in the manifest. A learned-codec store names its
checkpoint by path and SHA-256: it is found at the recorded path, beside the store, or where
``codec_checkpoint`` says, and used only if its fingerprint matches.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lossylearn.codecs import Codec, get_codec
from lossylearn.errors import CodecError, StoreError
from lossylearn.store.layout import RUN_STATE, header_name, inside, sha256_file
from lossylearn.store.manifest import Manifest, read_manifest
from lossylearn.store.shards import read_shard

if TYPE_CHECKING:
    import torch


def verify_files(directory: Path, manifest: Manifest) -> None:
    """Check every file the manifest lists: present, same size, same SHA-256."""
    for rel, meta in manifest.files.items():
        path = inside(directory, rel, "file")
        if not path.is_file():
            raise StoreError(f"{directory}: {rel} is listed in the manifest but missing")
        if path.stat().st_size != meta["bytes"]:
            raise StoreError(
                f"{directory}: {rel} has {path.stat().st_size} bytes, the manifest says {meta['bytes']}"
            )
        if sha256_file(path) != meta["sha256"]:
            raise StoreError(
                f"{directory}: {rel} does not match its checksum (corrupt or modified)"
            )


class Store:
    """A read-only view of a committed store: ``len(store)``, ``store[i] -> (image, label)``."""

    def __init__(
        self,
        directory: str | Path,
        *,
        verify: bool = True,
        codec_checkpoint: str | Path | None = None,
        key: bytes | None = None,
    ) -> None:
        self.directory = Path(directory)
        if (self.directory / RUN_STATE).exists():
            raise StoreError(
                f"{self.directory}: holds an unfinished run; finish it with "
                "`lossylearn compress ... --resume` before opening it"
            )
        self.manifest: Manifest = read_manifest(self.directory, key=key)
        if verify:
            verify_files(self.directory, self.manifest)
        self.codec: Codec = _open_codec(self.directory, self.manifest, codec_checkpoint)
        data: list[bytes] = []
        labels, qualities, indices = [], [], []
        for shard in self.manifest.shards:
            rows = read_shard(inside(self.directory, shard["path"], "shard"))
            if len(rows) != shard["n_images"]:
                raise StoreError(
                    f"{self.directory}: {shard['path']} holds {len(rows)} images, the manifest says "
                    f"{shard['n_images']}"
                )
            data.extend(rows.data)
            labels.append(rows.label)
            qualities.append(rows.quality)
            indices.append(rows.index)
        if len(data) != self.manifest.n_images:
            raise StoreError(
                f"{self.directory}: shards hold {len(data)} images, the manifest says {self.manifest.n_images}"
            )
        self._data = data
        self.labels: np.ndarray = np.concatenate(labels) if labels else np.zeros(0, np.int64)
        self.qualities: np.ndarray = (
            np.concatenate(qualities) if qualities else np.zeros(0, np.int16)
        )
        self.indices: np.ndarray = np.concatenate(indices) if indices else np.zeros(0, np.int64)
        self._headers: dict[int, bytes] = {}
        for q in np.unique(self.qualities):
            rel = header_name(self.codec.name, int(q))
            # Only a header the manifest pins by checksum is read.
            stored = (
                inside(self.directory, rel, "header").read_bytes()
                if rel in self.manifest.files
                else b""
            )
            # The shared header depends on the image shape (grey or colour, size): a manifest whose
            # image_shape was altered no longer agrees with the tables the images were coded with.
            if stored != self.codec.shared_header(int(q), self.image_shape):
                raise StoreError(
                    f"{self.directory}: the stored {rel} does not fit image_shape "
                    f"{list(self.image_shape)} in the manifest (altered or damaged)"
                )
            self._headers[int(q)] = stored

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        return self.manifest.image_shape

    def __len__(self) -> int:
        return len(self._data)

    def payload(self, i: int) -> bytes:
        """The stored bytes of image ``i`` (without the shared header)."""
        return self._data[i]

    def container(self, i: int) -> bytes:
        """Image ``i`` as a standalone standard file (shared header put back in)."""
        return self.codec.container(self._data[i], int(self.qualities[i]), self.image_shape)

    def __getitem__(self, i: int) -> tuple[np.ndarray, int]:
        if not -len(self) <= i < len(self):
            raise IndexError(f"index {i} out of range for a store of {len(self)} images")
        i = i % len(self)
        q = int(self.qualities[i])
        image = self.codec.decode(self._data[i], q, self.image_shape)
        return image, int(self.labels[i])

    def __iter__(self) -> Iterator[tuple[np.ndarray, int]]:
        for i in range(len(self)):
            yield self[i]

    def arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """Decode everything: images uint8 (N, H, W, C) and labels int64 (N,)."""
        out = np.empty((len(self), *self.image_shape), dtype=np.uint8)
        for i in range(len(self)):
            out[i] = self.codec.decode(self._data[i], int(self.qualities[i]), self.image_shape)
        return out, self.labels.astype(np.int64)

    def torch_dataset(self) -> torch.utils.data.Dataset[Any]:
        """A torch Dataset of (float32 tensor (C, H, W) in [0, 1], label)."""
        from lossylearn.store.torch_dataset import StoreDataset

        return StoreDataset(self)


def _open_codec(directory: Path, manifest: Manifest, checkpoint: str | Path | None) -> Codec:
    """The manifest's codec; for a learned codec, its checkpoint found and checked by fingerprint."""
    name = manifest.codec.get("name")
    options = manifest.codec.get("options", {})
    if not isinstance(name, str) or not isinstance(options, dict):
        raise StoreError(f"{directory}: manifest codec section is malformed")
    recorded = options.get("checkpoint")
    if recorded is None and checkpoint is None:
        return get_codec(name, **options)
    want = (manifest.codec.get("config") or {}).get("checkpoint_sha256")
    candidates: list[Path] = [Path(checkpoint)] if checkpoint is not None else []
    if isinstance(recorded, str):
        rec = Path(recorded)
        candidates += [rec, directory / rec.name, directory.parent / rec.name]
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
        f"{directory}: cannot find the {name} checkpoint this store was coded with "
        f"(fingerprint {str(want)[:12]}); tried {', '.join(tried)}. Pass --codec-checkpoint PATH, "
        "or put the checkpoint beside the store"
    )


def open_store(
    directory: str | Path,
    *,
    verify: bool = True,
    codec_checkpoint: str | Path | None = None,
    key: bytes | None = None,
) -> Store:
    """Open a committed store; raises StoreError if it is missing, unfinished, edited or corrupt.

    ``codec_checkpoint`` points to a learned codec's checkpoint when it is not at the recorded path
    or beside the store; ``key`` checks the manifest's signature (``compress --signing-key``).
    """
    return Store(directory, verify=verify, codec_checkpoint=codec_checkpoint, key=key)
