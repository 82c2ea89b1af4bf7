"""A torch ``Dataset`` over a store (imported lazily so the store works without touching torch)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch.utils.data import Dataset

if TYPE_CHECKING:
    from lossylearn.store.reader import Store


class StoreDataset(Dataset[tuple[torch.Tensor, int]]):
    """Items are (float32 tensor (C, H, W) scaled to [0, 1], integer label), decoded on access."""

    def __init__(self, store: Store) -> None:
        self.store = store

    def __len__(self) -> int:
        return len(self.store)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, int]:
        image, label = self.store[i]
        tensor = (
            torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1))).float().div_(255.0)
        )
        return tensor, label
