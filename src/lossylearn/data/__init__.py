"""Dataset sources: embedded MNIST, IDX folders (MNIST, Fashion-MNIST), CelebA, image folders.

Every source yields an :class:`ImageDataset` of uint8 (N, H, W, C) images and int64 labels with a
fixed train/test split; :func:`load_dataset` picks one by name.
"""

from __future__ import annotations

from lossylearn.data.dataset import ImageDataset
from lossylearn.data.idx import read_idx
from lossylearn.data.registry import DATASETS, load_dataset

__all__ = ["DATASETS", "ImageDataset", "load_dataset", "read_idx"]
