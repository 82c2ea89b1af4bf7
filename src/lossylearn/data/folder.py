"""Labelled images from a folder tree: one sub-folder per class, optionally under train/ and test/."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lossylearn.data.dataset import ImageDataset
from lossylearn.data.imaging import decode_images, probe_image
from lossylearn.data.split import cap, stratified_split
from lossylearn.errors import DataError

__all__ = [
    "IMAGE_EXTENSIONS",
    "FOLDER_SPLIT_SEED",
    "FOLDER_TEST_FRACTION",
    "list_classes",
    "load_folder",
]

IMAGE_EXTENSIONS = frozenset(
    {
        ".png",
        ".jpg",
        ".jpeg",
        ".bmp",
        ".gif",
        ".webp",
        ".tif",
        ".tiff",
        ".ppm",
        ".pgm",
        ".pbm",
        ".pnm",
    }
)
#: Seed of the fixed permutations behind the split and the order of the images.
FOLDER_SPLIT_SEED = 0
#: Share of each class put in test when the folder has no train/ and test/ level.
FOLDER_TEST_FRACTION = 0.1


def list_classes(root: Path) -> dict[str, list[Path]]:
    """Class name -> sorted image files, for each non-hidden sub-folder of ``root`` (sorted names).

    Files whose extension is not in :data:`IMAGE_EXTENSIONS` and hidden files are ignored; a class
    folder without images is an error.
    """
    dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not dirs:
        raise DataError(
            f"{root}: no class sub-folders (expected one sub-folder of images per class)"
        )
    classes: dict[str, list[Path]] = {}
    for d in dirs:
        files = sorted(
            p
            for p in d.iterdir()
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        if not files:
            raise DataError(
                f"{d}: class folder holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))})"
            )
        classes[d.name] = files
    return classes


def _flatten(
    classes: dict[str, list[Path]], index: dict[str, int]
) -> tuple[list[Path], np.ndarray]:
    paths = [p for name in classes for p in classes[name]]
    labels = np.array([index[name] for name in classes for _ in classes[name]], dtype=np.int64)
    return paths, labels


def _has_split_level(folder: Path) -> bool:
    return all(
        (folder / s).is_dir() and any(p.is_dir() for p in (folder / s).iterdir())
        for s in ("train", "test")
    )


def load_folder(
    data_dir: str | Path | None, *, resize: int | None = None, limit: int | None = None
) -> ImageDataset:
    """Images from ``data_dir/<class>/*`` or ``data_dir/{train,test}/<class>/*``; class = folder name.

    Without a train/ and test/ level, each class is split 90/10 (stratified, fixed seed). Both splits
    come in a fixed shuffled order, so ``limit`` (first ``limit`` of each split) mixes classes, and only
    the kept images are decoded. All images must share one size unless ``resize`` is given (centre
    square crop, then Lanczos resize to ``resize`` x ``resize``). All-grayscale folders give C = 1;
    if any image is in colour, all are converted to RGB (C = 3).
    """
    if data_dir is None:
        raise DataError("folder needs data_dir: a folder with one sub-folder of images per class")
    if resize is not None and (
        isinstance(resize, bool) or not isinstance(resize, int) or not 1 <= resize <= 4096
    ):
        raise DataError(f"resize must be an integer in 1..4096 or None, got {resize!r}")
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist or is not a folder")
    rng = np.random.default_rng(FOLDER_SPLIT_SEED)

    if _has_split_level(folder):
        train_classes = list_classes(folder / "train")
        test_classes = list_classes(folder / "test")
        extra = sorted(set(test_classes) - set(train_classes))
        if extra:
            raise DataError(f"{folder / 'test'}: classes {', '.join(extra)} have no train/ folder")
        class_names = tuple(train_classes)
        index = {c: i for i, c in enumerate(class_names)}
        train_paths, train_labels = _flatten(train_classes, index)
        test_paths, test_labels = _flatten(test_classes, index)
        train_idx = rng.permutation(len(train_paths))
        test_idx = rng.permutation(len(test_paths))
        split_note = "explicit train/ and test/ folders"
    else:
        classes = list_classes(folder)
        class_names = tuple(classes)
        index = {c: i for i, c in enumerate(class_names)}
        train_paths, train_labels = _flatten(classes, index)
        test_paths, test_labels = train_paths, train_labels
        train_idx, test_idx = stratified_split(train_labels, FOLDER_TEST_FRACTION, rng)
        split_note = f"stratified 90/10 split, numpy default_rng({FOLDER_SPLIT_SEED})"
    train_idx, test_idx = cap(train_idx, limit), cap(test_idx, limit)
    train_sel = [train_paths[i] for i in train_idx]
    test_sel = [test_paths[i] for i in test_idx]

    infos = [probe_image(p) for p in train_sel + test_sel]
    gray = all(info.gray for info in infos)
    shape: tuple[int, int] | None = None
    if resize is None and infos:
        first = infos[0]
        other = next((info for info in infos if info.size != first.size), None)
        if other is not None:
            raise DataError(
                f"images differ in size: {first.path} is {first.size[0]}x{first.size[1]}, "
                f"{other.path} is {other.size[0]}x{other.size[1]}; pass resize=N to centre-crop "
                "and resize all to NxN"
            )
        shape = (first.size[1], first.size[0])
    train_images = decode_images(
        train_sel, gray=gray, size=resize, shape=shape, description="train images"
    )
    test_images = decode_images(
        test_sel, gray=gray, size=resize, shape=shape, description="test images"
    )

    notes = [f"image folder {folder}: {len(class_names)} classes, {split_note}"]
    if resize is not None:
        notes.append(f"centre square crop, Lanczos resize to {resize}x{resize}")
    if not gray:
        notes.append("RGB")
    if limit is not None:
        notes.append(f"capped to the first {limit} of each split")
    return ImageDataset(
        name="folder",
        train_images=train_images,
        train_labels=train_labels[train_idx],
        test_images=test_images,
        test_labels=test_labels[test_idx],
        classes=class_names,
        source="; ".join(notes),
    )
