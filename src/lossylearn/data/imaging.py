"""Decoding image files into uint8 arrays: colour mode, centre crop, resize, progress bar."""

from __future__ import annotations

import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from lossylearn.errors import DataError

__all__ = ["ImageInfo", "probe_image", "decode_images", "PROGRESS_THRESHOLD"]

#: Decoding more images than this shows a (transient) progress bar on a terminal.
PROGRESS_THRESHOLD = 300

_GRAY_MODES = frozenset({"1", "L", "LA", "La"})
_HIGH_DEPTH_MODES = frozenset({"I", "F", "I;16", "I;16L", "I;16B", "I;16N"})


@dataclass(frozen=True)
class ImageInfo:
    """What an image header says: pixel size (width, height) and whether it is grayscale."""

    path: Path
    size: tuple[int, int]
    gray: bool


def probe_image(path: Path) -> ImageInfo:
    """Read only the header of ``path``; raise :class:`DataError` if it is not a usable image."""
    try:
        with Image.open(path) as img:
            mode, size = img.mode, img.size
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None
    if mode in _HIGH_DEPTH_MODES:
        raise DataError(
            f"{path}: {mode} images (16-bit or float) are not supported; convert to 8-bit"
        )
    return ImageInfo(path=path, size=(int(size[0]), int(size[1])), gray=mode in _GRAY_MODES)


def _centre_square(width: int, height: int) -> tuple[int, int, int, int]:
    side = min(width, height)
    left = (width - side) // 2
    top = (height - side) // 2
    return (left, top, left + side, top + side)


def _decode_one(path: Path, mode: str, size: int | None) -> np.ndarray:
    try:
        with Image.open(path) as img:
            img = img.convert(mode)
            if size is not None:
                # crop first: resize(box=...) would let the filter read pixels outside the box
                img = img.crop(_centre_square(*img.size))
                if img.size != (size, size):
                    img = img.resize((size, size), Image.Resampling.LANCZOS)
            arr = np.asarray(img, dtype=np.uint8)
    except FileNotFoundError:
        raise DataError(f"{path}: image file not found") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: cannot decode image ({exc})") from None
    return arr if arr.ndim == 3 else arr[:, :, None]


def decode_images(
    paths: Sequence[Path],
    *,
    gray: bool,
    size: int | None,
    shape: tuple[int, int] | None = None,
    description: str = "decoding images",
) -> np.ndarray:
    """Decode ``paths`` into one uint8 array (N, H, W, C), C = 1 if ``gray`` else 3.

    With ``size``, each image is centre-cropped to a square and resized to ``size`` x ``size``
    (Lanczos); without it, every image must already be ``shape`` = (height, width). Decoding runs on
    a few threads (Pillow releases the GIL) and shows a transient progress bar on a terminal when
    there are more than :data:`PROGRESS_THRESHOLD` images.
    """
    if size is None and shape is None:
        raise ValueError("decode_images needs size or shape")
    h, w = (size, size) if size is not None else shape  # type: ignore[misc]
    channels = 1 if gray else 3
    out = np.empty((len(paths), h, w, channels), dtype=np.uint8)
    if not paths:
        return out
    mode = "L" if gray else "RGB"

    def work(i: int) -> None:
        arr = _decode_one(paths[i], mode, size)
        if arr.shape != (h, w, channels):
            raise DataError(
                f"{paths[i]}: decoded to shape {arr.shape}, expected {(h, w, channels)}"
            )
        out[i] = arr

    n = len(paths)
    workers = 1 if n < 64 else max(1, min(8, os.cpu_count() or 1))
    console = Console(stderr=True)
    progress = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=n <= PROGRESS_THRESHOLD or not console.is_terminal,
    )
    with progress:
        task = progress.add_task(description, total=n)
        if workers == 1:
            for i in range(n):
                work(i)
                progress.advance(task)
        else:
            pool = ThreadPoolExecutor(max_workers=workers)
            try:
                for _ in pool.map(work, range(n)):
                    progress.advance(task)
            finally:  # on an error, drop the queued images instead of decoding them all
                pool.shutdown(wait=True, cancel_futures=True)
    return out
