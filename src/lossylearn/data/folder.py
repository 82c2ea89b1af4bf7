"""Labelled images from a folder tree: one sub-folder per class, optionally under train/ and test/."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lossylearn.data._safe import check_image_size, is_printable_name, quote, show_path
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


def _listdir(folder: Path) -> list[Path]:
    try:
        return list(folder.iterdir())
    except OSError as exc:
        raise DataError(
            f"{show_path(folder)}: cannot list folder ({exc.strerror or exc})"
        ) from None


def list_classes(root: Path) -> dict[str, list[Path]]:
    """Class name -> sorted image files, for each non-hidden sub-folder of ``root`` (sorted names).

    Files whose extension is not in :data:`IMAGE_EXTENSIONS` and hidden files are ignored; a class
    folder without images is an error, and so is a class folder whose name is not printable UTF-8
    text (class names end up in manifests, exports and messages).
    """
    dirs = sorted(p for p in _listdir(root) if p.is_dir() and not p.name.startswith("."))
    if not dirs:
        raise DataError(
            f"{show_path(root)}: no class sub-folders (expected one sub-folder of images per class)"
        )
    classes: dict[str, list[Path]] = {}
    for d in dirs:
        if not is_printable_name(d.name):
            raise DataError(
                f"{show_path(root)}: class folder name {quote(d.name)} is not printable UTF-8 text "
                "(undecodable bytes or control characters); rename it"
            )
        entries = _listdir(d)
        files = sorted(
            p
            for p in entries
            if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_EXTENSIONS
        )
        if not files:
            hint = ""
            if d.name in ("train", "test") and any(p.is_dir() for p in entries):
                hint = (
                    "; it holds sub-folders: a split layout needs both train/<class>/ and "
                    "test/<class>/"
                )
            raise DataError(
                f"{show_path(d)}: class folder holds no images ({', '.join(sorted(IMAGE_EXTENSIONS))}){hint}"
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
        (folder / s).is_dir() and any(p.is_dir() for p in _listdir(folder / s))
        for s in ("train", "test")
    )


def load_folder(
    data_dir: str | Path | None,
    *,
    image_size: int | None = None,
    limit: int | None = None,
) -> ImageDataset:
    """Images from ``data_dir/<class>/*`` or ``data_dir/{train,test}/<class>/*``; class = folder name.

    Without a train/ and test/ level, each class is split 90/10 (stratified, fixed seed). Both splits
    come in a fixed shuffled order, so ``limit`` (first ``limit`` of each split) mixes classes, and only
    the kept images are decoded. With ``image_size`` every image is centre-cropped to a square and
    Lanczos-resized to ``image_size`` x ``image_size`` (as for CelebA); without it (None) images keep
    their native size, which must be the same for all. All-grayscale folders give C = 1; if any image is in colour, all are converted
    to RGB (C = 3). Unreadable, corrupt or oversized images (decompression bombs) are errors naming
    the file.
    """
    if data_dir is None:
        raise DataError("folder needs data_dir: a folder with one sub-folder of images per class")
    size = check_image_size(image_size)
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
    if size is None and infos:
        first = infos[0]
        other = next((info for info in infos if info.size != first.size), None)
        if other is not None:
            raise DataError(
                f"images differ in size: {show_path(first.path)} is {first.size[0]}x{first.size[1]}, "
                f"{show_path(other.path)} is {other.size[0]}x{other.size[1]}; pass --image-size N "
                "(image_size=N) to centre-crop and resize all to NxN"
            )
        shape = (first.size[1], first.size[0])
    train_images = decode_images(
        train_sel, gray=gray, size=size, shape=shape, description="train images"
    )
    test_images = decode_images(
        test_sel, gray=gray, size=size, shape=shape, description="test images"
    )

    notes = [f"image folder {folder}: {len(class_names)} classes, {split_note}"]
    if size is not None:
        notes.append(f"centre square crop, Lanczos resize to {size}x{size}")
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
