"""Torch datasets over a store (imported lazily so the store works without touching torch).

:class:`StoreDataset` is map-style (random access; each cache miss loads a whole shard).
:class:`StoreIterable` is for training on large stores, on many ranks and DataLoader workers:

- **One global order per epoch**, a function of ``seed`` and the epoch only: the shards are
  permuted, cut into windows of ``window_shards`` consecutive shards, and the images of each window
  are permuted among themselves (a shuffle buffer of a whole window, made deterministic). With
  ``shuffle=False`` it is the store's order.
- **Ranks** take contiguous slices of that order (rank ``r`` of ``R``: positions ``r*N//R`` to
  ``(r+1)*N//R``), so together they see every image exactly once per epoch and each rank reads
  about ``1/R`` of the shards.
- **DataLoader workers** of a rank take whole batches of ``batch_size`` in turn, which is how a
  DataLoader interleaves its workers: a rank yields the same sequence for any ``num_workers`` (give
  the DataLoader the same ``batch_size``). Each worker reads the shards of the windows it visits as
  whole files, in order, holding one window's shards at a time.
- **Resumption**: ``state_dict()`` records the epoch and how many images of it the rank has
  consumed; ``load_state_dict()`` continues right after them, with no repeats and no holes.
  ``set_epoch(e)`` starts epoch ``e`` (and keeps a loaded position when ``e`` is its epoch).
  DataLoader workers get a fresh copy of the reader at every ``iter(loader)``; with
  ``persistent_workers=True`` they would keep the first epoch's, so leave it off.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from lossylearn.errors import LossylearnError

if TYPE_CHECKING:
    from lossylearn.store.reader import Store

STATE_FORMAT = "lossylearn-iterable/1"


def to_tensor(image: np.ndarray) -> torch.Tensor:
    """uint8 (H, W, C) -> float32 (C, H, W) in [0, 1]."""
    return torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)


class StoreDataset(Dataset[tuple[torch.Tensor, int]]):
    """Items are (float32 tensor (C, H, W) scaled to [0, 1], integer label), decoded on access."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.store[i]
        return to_tensor(image), label


def _whole(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise LossylearnError(f"{name} must be a whole number >= {minimum}, got {value!r}")
    return int(value)


class StoreIterable(IterableDataset[Any]):
    """The store as an iterable of (tensor, label) (or (tensor, label, row) with
    ``return_index``) for rank ``rank`` of ``world_size``; see the module docstring.

    ``transform`` maps the decoded uint8 (H, W, C) image to what is yielded (default: a float32
    (C, H, W) tensor in [0, 1]). ``drop_last`` gives every rank exactly ``N // world_size`` images
    (the last ``N % world_size`` of the epoch's order are skipped that epoch).
    """

    def __init__(
        self,
        store: Store,
        *,
        rank: int = 0,
        world_size: int = 1,
        seed: int = 0,
        shuffle: bool = True,
        batch_size: int = 1,
        window_shards: int = 4,
        drop_last: bool = False,
        return_index: bool = False,
        transform: Callable[[np.ndarray], Any] | None = None,
    ) -> None:
        self.store = store
        self.world_size = _whole("world_size", world_size, 1)
        self.rank = _whole("rank", rank, 0)
        if self.rank >= self.world_size:
            raise LossylearnError(f"rank must be below world_size {world_size}, got {rank}")
        self.seed = _whole("seed", seed, 0)
        self.batch_size = _whole("batch_size", batch_size, 1)
        self.window_shards = _whole("window_shards", window_shards, 1)
        self.shuffle, self.drop_last = bool(shuffle), bool(drop_last)
        self.return_index, self.transform = bool(return_index), transform
        self._sizes = np.asarray(store.shard_sizes, dtype=np.int64)
        n, r, w = len(store), self.rank, self.world_size
        if self.drop_last:
            self.start, self.stop = r * (n // w), (r + 1) * (n // w)
        else:
            self.start, self.stop = r * n // w, (r + 1) * n // w
        self.epoch = 0
        self.position = 0
        """Images of this epoch already handed out: counted when iterated in this process,
        set by :meth:`load_state_dict`."""

    def __len__(self) -> int:
        """Images this rank yields in a whole epoch."""
        return self.stop - self.start

    def set_epoch(self, epoch: int) -> None:
        """Use the order of ``epoch`` from the next iteration on (from its start, unless a loaded
        state is in that epoch). Call it before every epoch, as with DistributedSampler."""
        epoch = _whole("epoch", epoch, 0)
        if epoch != self.epoch:
            self.epoch, self.position = epoch, 0

    def _identity(self) -> dict[str, Any]:
        return {
            "format": STATE_FORMAT, "seed": self.seed, "shuffle": self.shuffle,
            "window_shards": self.window_shards, "rank": self.rank, "world_size": self.world_size,
            "drop_last": self.drop_last, "n_images": len(self.store),
        }  # fmt: skip

    def state_dict(self, consumed: int | None = None) -> dict[str, Any]:
        """Where this rank is: its epoch and how many images of it were consumed.

        ``consumed`` defaults to what this object handed out in this process (exact with
        ``num_workers=0``). DataLoader workers iterate their own copies, so with workers pass what
        the training loop took: ``batches_done * batch_size`` (counted from the epoch's start).
        """
        pos = self.position if consumed is None else _whole("consumed", consumed, 0)
        if pos > len(self):
            raise LossylearnError(f"consumed {pos} is more than the {len(self)} images of a rank")
        return {**self._identity(), "epoch": self.epoch, "position": pos}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Continue from a :meth:`state_dict` of the same store, seed, split and rank."""
        if not isinstance(state, dict):
            raise LossylearnError("a reader state must be a dict from state_dict()")
        differ = [k for k, v in self._identity().items() if state.get(k) != v]
        if differ:
            raise LossylearnError(
                f"this reader state belongs to another reader ({', '.join(differ)} differ)"
            )
        self.epoch = _whole("epoch", state.get("epoch"), 0)
        pos = _whole("position", state.get("position"), 0)
        if pos > len(self):
            raise LossylearnError(f"position {pos} is past the {len(self)} images of a rank")
        self.position = pos

    def order(self, epoch: int | None = None) -> np.ndarray:
        """Store rows this rank yields in ``epoch`` (default: the current one), in order."""
        parts = [
            self.store_rows(k, rows)
            for k, rows in self._schedule(self.epoch if epoch is None else epoch, 0, 0, 1)
        ]
        return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)

    def store_rows(self, shards: np.ndarray, rows: np.ndarray) -> np.ndarray:
        """Store-wide row numbers of (shard, row-in-shard) pairs."""
        starts = np.concatenate([[0], np.cumsum(self._sizes)])
        return (starts[shards] + rows).astype(np.int64)

    def _windows(self, epoch: int) -> list[np.ndarray]:
        n_shards = len(self._sizes)
        if self.shuffle:
            order = np.random.default_rng([self.seed, epoch]).permutation(n_shards)
        else:
            order = np.arange(n_shards)
        k = self.window_shards
        return [order[i : i + k] for i in range(0, n_shards, k)]

    def _schedule(
        self, epoch: int, begin: int, worker: int, n_workers: int
    ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Per window: (shard, row) arrays of the images ``worker`` yields, in order, from rank
        position ``begin`` on."""
        lo, hi = self.start + begin, self.stop  # global positions left to this rank
        g0 = 0
        for w, shards in enumerate(self._windows(epoch)):
            sizes = self._sizes[shards]
            g1 = g0 + int(sizes.sum())
            if g1 > lo and g0 < hi:
                p = np.arange(max(g0, lo), min(g1, hi), dtype=np.int64)
                mine = p[((p - lo) // self.batch_size) % n_workers == worker] - g0
                if len(mine):
                    if self.shuffle:
                        rng = np.random.default_rng([self.seed, epoch, 1, w])
                        mine = rng.permutation(g1 - g0)[mine]
                    cum = np.concatenate([[0], np.cumsum(sizes)])
                    j = np.searchsorted(cum, mine, side="right") - 1
                    yield shards[j], mine - cum[j]
            if g1 >= hi:
                break
            g0 = g1

    def __iter__(self) -> Iterator[Any]:
        info = get_worker_info()
        worker, n_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        here = info is None  # counted only where the training loop sees the items
        begin = self.position if self.position < len(self) else 0  # a finished epoch starts over
        if here:
            self.position = begin
        store, starts = self.store, np.concatenate([[0], np.cumsum(self._sizes)])
        for shards, rows in self._schedule(self.epoch, begin, worker, n_workers):
            loaded = {int(k): store.shard(int(k)) for k in sorted(set(shards.tolist()))}
            for k, row in zip(shards.tolist(), rows.tolist(), strict=True):
                image, label = store.decode_row(loaded[k], row)
                x = self.transform(image) if self.transform is not None else to_tensor(image)
                if here:
                    self.position += 1
                yield (x, label, int(starts[k] + row)) if self.return_index else (x, label)
