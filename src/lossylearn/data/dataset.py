"""The in-memory image dataset every source yields."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from lossylearn.errors import DataError, LossylearnError

__all__ = ["ImageDataset", "SPLITS"]

SPLITS: tuple[str, ...] = ("train", "test")


def _check_split(name: str, images: np.ndarray, labels: np.ndarray, n_classes: int) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8:
        raise DataError(f"{name} images must be a uint8 numpy array")
    if images.ndim != 4 or images.shape[3] not in (1, 3):
        raise DataError(
            f"{name} images must have shape (N, H, W, C) with C = 1 or 3, got {images.shape}"
        )
    if not images.flags.c_contiguous:
        raise DataError(f"{name} images must be C-contiguous")
    if not isinstance(labels, np.ndarray) or labels.dtype != np.int64 or labels.ndim != 1:
        raise DataError(f"{name} labels must be a 1-D int64 numpy array")
    if labels.shape[0] != images.shape[0]:
        raise DataError(f"{name} has {images.shape[0]} images but {labels.shape[0]} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(
            f"{name} labels span {labels.min()}..{labels.max()}, outside 0..{n_classes - 1}"
        )


@dataclass(frozen=True, eq=False)
class ImageDataset:
    """A labelled image dataset with a fixed train/test split.

    Images are uint8 arrays of shape (N, H, W, C), C = 1 (grayscale) or 3 (RGB), C-contiguous;
    labels are int64 class indices into ``classes``. ``source`` says in one line where both splits
    came from (files, split rule, seed, caps).
    """

    name: str
    train_images: np.ndarray
    train_labels: np.ndarray
    test_images: np.ndarray
    test_labels: np.ndarray
    classes: tuple[str, ...]
    source: str

    def __post_init__(self) -> None:
        if not self.classes:
            raise DataError(f"dataset {self.name!r} has no classes")
        _check_split("train", self.train_images, self.train_labels, len(self.classes))
        _check_split("test", self.test_images, self.test_labels, len(self.classes))
        if self.train_images.shape[1:] != self.test_images.shape[1:]:
            raise DataError(
                f"train images are {self.train_images.shape[1:]} but test images are "
                f"{self.test_images.shape[1:]}"
            )

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(H, W, C) of every image."""
        h, w, c = self.train_images.shape[1:]
        return (int(h), int(w), int(c))

    def split(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(images, labels)`` of the split ``"train"`` or ``"test"``."""
        if name == "train":
            return self.train_images, self.train_labels
        if name == "test":
            return self.test_images, self.test_labels
        raise LossylearnError(f"unknown split {name!r}; known splits: {', '.join(SPLITS)}")

    def __repr__(self) -> str:
        h, w, c = self.image_shape
        return (
            f"ImageDataset(name={self.name!r}, train={len(self.train_labels)}, "
            f"test={len(self.test_labels)}, image_shape=({h}, {w}, {c}), "
            f"classes={len(self.classes)}, source={self.source!r})"
        )
