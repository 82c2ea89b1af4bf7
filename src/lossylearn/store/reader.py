"""Reading a committed store: ``open_store(DIR)``.

Opening checks the manifest, that every listed file exists with the recorded size and SHA-256, and
that the shards hold ``n_images`` rows. Items decode lazily through the codec named in the manifest.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lossylearn.codecs import Codec, get_codec
from lossylearn.errors import StoreError
from lossylearn.store.layout import RUN_STATE, header_name, sha256_file
from lossylearn.store.manifest import Manifest, read_manifest
from lossylearn.store.shards import read_shard

if TYPE_CHECKING:
    import torch


def verify_files(directory: Path, manifest: Manifest) -> None:
    """Check every file the manifest lists: present, same size, same SHA-256."""
    for rel, meta in manifest.files.items():
        path = directory / rel
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

    def __init__(self, directory: str | Path, *, verify: bool = True) -> None:
        self.directory = Path(directory)
        if (self.directory / RUN_STATE).exists():
            raise StoreError(
                f"{self.directory}: holds an unfinished run; finish it with "
                "`lossylearn compress ... --resume` before opening it"
            )
        self.manifest: Manifest = read_manifest(self.directory)
        if verify:
            verify_files(self.directory, self.manifest)
        self.codec: Codec = get_codec(
            self.manifest.codec["name"], **self.manifest.codec.get("options", {})
        )
        data: list[bytes] = []
        labels, qualities, indices = [], [], []
        for shard in self.manifest.shards:
            rows = read_shard(self.directory / shard["path"])
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
            path = self.directory / header_name(self.codec.name, int(q))
            self._headers[int(q)] = path.read_bytes() if path.exists() else b""

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


def open_store(directory: str | Path, *, verify: bool = True) -> Store:
    """Open a committed store; raises StoreError if it is missing, unfinished or corrupt."""
    return Store(directory, verify=verify)
