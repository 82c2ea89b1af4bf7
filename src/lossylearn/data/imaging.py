"""Decoding image files into uint8 arrays: colour mode, centre crop, resize, progress bar."""

from __future__ import annotations

import os
import warnings
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from lossylearn.data._safe import quote, show_path
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


@contextmanager
def _bombs_are_errors() -> Iterator[None]:
    """Turn Pillow's DecompressionBombWarning into an exception while decoding.

    Pillow warns when an image header claims more than ``Image.MAX_IMAGE_PIXELS`` pixels (about
    89 million) and raises DecompressionBombError past twice that; both mean "refuse this file".
    Entered on the calling thread around the decoding threads, which see the same filter.
    """
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        yield


def _unreadable(path: Path, exc: BaseException, doing: str) -> DataError:
    """The one-line error for an image file Pillow could not open or decode."""
    where = show_path(path)
    if isinstance(exc, FileNotFoundError):
        return DataError(f"{where}: image file not found")
    if isinstance(exc, MemoryError):
        return DataError(f"{where}: not enough memory to decode this image")
    if isinstance(exc, UnidentifiedImageError):  # its message repeats the path
        return DataError(f"{where}: {doing} (unknown format or corrupt header)")
    bomb = isinstance(exc, Image.DecompressionBombError | Image.DecompressionBombWarning)
    detail = str(exc) or type(exc).__name__
    if not (bomb or isinstance(exc, OSError)):  # Pillow's errors are OSErrors; name the rest
        detail = f"{type(exc).__name__}: {detail}"
    if not detail.isprintable() or len(detail) > 200:
        detail = quote(detail, 200)
    if bomb:
        return DataError(f"{where}: refused as a possible decompression bomb ({detail})")
    return DataError(f"{where}: {doing} ({detail})")


def probe_image(path: Path) -> ImageInfo:
    """Read only the header of ``path``; raise :class:`DataError` if it is not a usable image.

    Unreadable, corrupt and oversized headers (a possible decompression bomb) are errors naming
    the file.
    """
    try:
        with _bombs_are_errors(), Image.open(path) as img:
            mode, size = img.mode, img.size
    except Exception as exc:  # Pillow's parsers raise many types on hostile bytes
        raise _unreadable(path, exc, "not a readable image") from None
    if mode in _HIGH_DEPTH_MODES:
        raise DataError(
            f"{show_path(path)}: {mode} images (16-bit or float) are not supported; "
            "convert to 8-bit"
        )
    return ImageInfo(path=path, size=(int(size[0]), int(size[1])), gray=mode in _GRAY_MODES)


def _centre_square(width: int, height: int) -> tuple[int, int, int, int]:
    side = min(width, height)
    left = (width - side) // 2
    top = (height - side) // 2
    return (left, top, left + side, top + side)


def _decode_one(path: Path, mode: str, size: int | None) -> np.ndarray:
    """Decode one image (a caller holds :func:`_bombs_are_errors`); errors name the file."""
    try:
        with Image.open(path) as img:
            img = img.convert(mode)
            if size is not None:
                # crop first: resize(box=...) would let the filter read pixels outside the box
                img = img.crop(_centre_square(*img.size))
                if img.size != (size, size):
                    img = img.resize((size, size), Image.Resampling.LANCZOS)
            arr = np.asarray(img, dtype=np.uint8)
    except Exception as exc:  # truncated data, corrupt chunks, unsupported modes, bombs, ...
        raise _unreadable(path, exc, "cannot decode image") from None
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
    try:
        out = np.empty((len(paths), h, w, channels), dtype=np.uint8)
    except (MemoryError, ValueError):  # numpy: ValueError when the size overflows its index
        raise DataError(
            f"not enough memory for {len(paths):,} images of {w}x{h}x{channels} "
            f"({len(paths) * h * w * channels / 2**30:,.1f} GiB); use a smaller limit or image size"
        ) from None
    if not paths:
        return out
    mode = "L" if gray else "RGB"

    def work(i: int) -> None:
        arr = _decode_one(paths[i], mode, size)
        if arr.shape != (h, w, channels):
            raise DataError(
                f"{show_path(paths[i])}: decoded to shape {arr.shape}, expected {(h, w, channels)}"
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
    with _bombs_are_errors(), progress:
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
