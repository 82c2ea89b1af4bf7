"""CelebA (aligned and cropped) from its official folder layout, labelled by one binary attribute.

Layout under ``data_dir`` (the official Google Drive release; Kaggle's CSV variant also works)::

    img_align_celeba/000001.jpg ...        (Kaggle: img_align_celeba/img_align_celeba/...)
    list_attr_celeba.txt                   line 1: count, line 2: 40 attribute names,
                                           then "<file> v1 ... v40" with v = -1 or 1
    list_eval_partition.txt                "<file> 0|1|2" (0 train, 1 validation, 2 test)

Partition 0 is train and 2 is test; the validation partition (1) is not used.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from lossylearn.data._safe import (
    check_image_size,
    check_plain_name,
    decode_text,
    is_printable_name,
    quote,
)
from lossylearn.data.dataset import ImageDataset
from lossylearn.data.imaging import decode_images
from lossylearn.errors import DataError

__all__ = [
    "CELEBA_ATTRIBUTES",
    "CELEBA_DEFAULT_SIZE",
    "load_celeba",
    "read_attribute",
    "read_partition",
]

#: The 40 attribute names of list_attr_celeba.txt, in file order.
CELEBA_ATTRIBUTES: tuple[str, ...] = (
    "5_o_Clock_Shadow", "Arched_Eyebrows", "Attractive", "Bags_Under_Eyes", "Bald", "Bangs",
    "Big_Lips", "Big_Nose", "Black_Hair", "Blond_Hair", "Blurry", "Brown_Hair", "Bushy_Eyebrows",
    "Chubby", "Double_Chin", "Eyeglasses", "Goatee", "Gray_Hair", "Heavy_Makeup", "High_Cheekbones",
    "Male", "Mouth_Slightly_Open", "Mustache", "Narrow_Eyes", "No_Beard", "Oval_Face", "Pale_Skin",
    "Pointy_Nose", "Receding_Hairline", "Rosy_Cheeks", "Sideburns", "Smiling", "Straight_Hair",
    "Wavy_Hair", "Wearing_Earrings", "Wearing_Hat", "Wearing_Lipstick", "Wearing_Necklace",
    "Wearing_Necktie", "Young",
)  # fmt: skip

_PARTITIONS = {"0": "train", "1": "valid", "2": "test"}
#: Side length used when ``image_size`` is None.
CELEBA_DEFAULT_SIZE = 64
#: Longest line accepted in a CelebA list file (a real one is under 200 characters).
MAX_LINE_BYTES = 64 << 10
_IMAGE_FOLDER = "img_align_celeba/"
#: How a refusal of a list file's text ends.
_NOT_A_LIST = "not a CelebA text list"


def _find(folder: Path, stem: str) -> Path:
    for ext in (".txt", ".csv"):
        p = folder / (stem + ext)
        if p.is_file():
            return p
    raise DataError(f"{folder}: CelebA file {stem}.txt not found (nor {stem}.csv)")


def _rows(path: Path) -> Iterator[tuple[int, list[str]]]:
    """(line number, tokens) of each non-empty line; whitespace (.txt) or comma (.csv) separated.

    The file must be UTF-8 text (a leading byte-order mark is dropped) without NUL bytes or lines
    longer than :data:`MAX_LINE_BYTES`; anything else (a binary or foreign-encoded file) is a
    :class:`DataError` naming the line, before it is split into tokens.
    """
    sep = "," if path.suffix == ".csv" else None
    try:
        with path.open("rb") as f:
            lineno = 0
            while raw := f.readline(MAX_LINE_BYTES + 1):
                lineno += 1
                if len(raw) > MAX_LINE_BYTES:
                    raise DataError(
                        f"{path}:{lineno}: line longer than {MAX_LINE_BYTES:,} bytes; not a "
                        "CelebA list file"
                    )
                if lineno == 1 and raw.startswith(b"\xef\xbb\xbf"):
                    raw = raw[3:]
                line = decode_text(raw, f"{path}:{lineno}", _NOT_A_LIST, column=True)
                if line.strip():
                    yield lineno, [t.strip() for t in line.split(sep)]
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None


def _plain_name(path: Path, lineno: int, name: str) -> str:
    return check_plain_name(name, f"{path}:{lineno}", _IMAGE_FOLDER)


def _unknown_attribute(path: Path, attribute: str, names: list[str]) -> DataError:
    lower = {n.lower(): n for n in names}
    close = [
        lower[m] for m in difflib.get_close_matches(attribute.lower(), list(lower), n=3, cutoff=0.6)
    ]
    shown = names if len(names) <= 60 else [*names[:40], f"... ({len(names)} names)"]
    hint = f"close matches: {', '.join(close)}" if close else f"available: {', '.join(shown)}"
    return DataError(f"unknown CelebA attribute {attribute!r} in {path.name}; {hint}")


def read_attribute(path: Path, attribute: str) -> dict[str, int]:
    """Map image file name -> 1 if ``attribute`` is 1 in ``path`` (list_attr_celeba), else 0."""
    rows = _rows(path)
    declared: int | None = None
    if path.suffix != ".csv":
        first = next(rows, None)
        count = first[1][0] if first is not None and len(first[1]) == 1 else ""
        if not (count.isascii() and count.isdigit() and len(count) <= 12):
            raise DataError(f"{path}: expected the image count on line 1")
        declared = int(count)
    header = next(rows, None)
    if header is None:
        raise DataError(f"{path}: attribute names missing")
    names = header[1][1:] if path.suffix == ".csv" else header[1]
    odd = next((n for n in names if not n or not is_printable_name(n)), None)
    if odd is not None:
        raise DataError(
            f"{path}:{header[0]}: attribute name {quote(odd)} is not printable text; "
            "not a CelebA attribute list"
        )
    if attribute not in names:
        raise _unknown_attribute(path, attribute, names)
    col = names.index(attribute) + 1
    labels: dict[str, int] = {}
    for lineno, row in rows:
        if len(row) != len(names) + 1:
            raise DataError(
                f"{path}:{lineno}: expected a file name and {len(names)} values, got {len(row) - 1}"
            )
        v = row[col]
        if v not in ("1", "-1", "0"):
            raise DataError(f"{path}:{lineno}: {attribute} value {quote(v)} is not -1 or 1")
        labels[_plain_name(path, lineno, row[0])] = 1 if v == "1" else 0
    if declared is not None and declared != len(labels):
        raise DataError(f"{path}: line 1 declares {declared} images but {len(labels)} rows follow")
    return labels


def read_partition(path: Path) -> dict[str, list[str]]:
    """Image file names per partition ("train", "valid", "test"), in file order."""
    parts: dict[str, list[str]] = {"train": [], "valid": [], "test": []}
    for lineno, row in _rows(path):
        if lineno == 1 and path.suffix == ".csv" and row[-1] == "partition":
            continue
        if len(row) != 2 or row[1] not in _PARTITIONS:
            raise DataError(f"{path}:{lineno}: expected '<file> 0|1|2', got {quote(' '.join(row))}")
        parts[_PARTITIONS[row[1]]].append(_plain_name(path, lineno, row[0]))
    return parts


def _image_folder(folder: Path) -> Path:
    images = folder / "img_align_celeba"
    if (images / "img_align_celeba").is_dir():
        images = images / "img_align_celeba"
    if not images.is_dir():
        raise DataError(f"{folder}: CelebA image folder img_align_celeba/ not found")
    return images


def load_celeba(
    data_dir: str | Path | None,
    *,
    attribute: str = "Male",
    image_size: int | None = CELEBA_DEFAULT_SIZE,
    limit: int | None = None,
) -> ImageDataset:
    """CelebA aligned faces, centre-cropped to a square and resized to ``image_size`` (RGB).

    ``image_size`` None means :data:`CELEBA_DEFAULT_SIZE` (64). Label 1 means ``attribute`` is 1
    for that image, 0 means -1. Train is partition 0, test is partition 2, both in partition-file
    order; ``limit`` keeps the first ``limit`` of each, and only those are decoded. Every file name
    in the list files must be a plain name inside img_align_celeba/ (no folders, no '..').
    """
    if data_dir is None:
        raise DataError(
            "celeba needs data_dir: a folder with img_align_celeba/, list_attr_celeba.txt and "
            "list_eval_partition.txt (the official aligned CelebA release)"
        )
    size = check_image_size(image_size)
    if size is None:
        size = CELEBA_DEFAULT_SIZE
    folder = Path(data_dir).expanduser()
    if not folder.is_dir():
        raise DataError(f"data folder {folder} does not exist or is not a folder")
    attr_path = _find(folder, "list_attr_celeba")
    labels_by_name = read_attribute(attr_path, attribute)
    parts = read_partition(_find(folder, "list_eval_partition"))
    images_dir = _image_folder(folder)

    splits: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for split in ("train", "test"):
        names = parts[split][:limit]
        unlabelled = [n for n in names if n not in labels_by_name]
        if unlabelled:
            raise DataError(
                f"{attr_path}: no {attribute} value for {len(unlabelled)} {split} image(s), "
                f"first {unlabelled[0]}"
            )
        paths = [images_dir / n for n in names]
        missing = [p for p in paths if not p.is_file()]
        if missing:
            raise DataError(
                f"{images_dir}: {len(missing)} of {len(paths)} {split} images missing, first "
                f"{missing[0].name}"
            )
        images = decode_images(paths, gray=False, size=size, description=f"CelebA {split}")
        labels = np.fromiter((labels_by_name[n] for n in names), dtype=np.int64, count=len(names))
        splits[split] = (images, labels)

    n_valid = len(parts["valid"])
    cap_note = "" if limit is None else f", capped to the first {limit} of each split"
    source = (
        f"CelebA in {folder}: train = partition 0 ({len(parts['train']):,}), test = partition 2 "
        f"({len(parts['test']):,}), validation partition 1 ({n_valid:,}) unused{cap_note}; "
        f"label = {attribute} == 1; centre square crop, Lanczos resize to {size}x{size}"
    )
    return ImageDataset(
        name="celeba",
        train_images=splits["train"][0],
        train_labels=splits["train"][1],
        test_images=splits["test"][0],
        test_labels=splits["test"][1],
        classes=(f"not {attribute}", attribute),
        source=source,
    )
