"""Plain builders of fake dataset files for tests (IDX files, a CelebA tree, an image folder).

They write files independently of the library's readers (the IDX header is packed by hand here),
so reading them back is a real round trip. Other test modules may import these functions.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import signal
import struct
import subprocess
import sys
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from lossylearn.data.celeba import CELEBA_ATTRIBUTES

__all__ = [
    "kill_after_shards",
    "CelebaTree",
    "FolderImage",
    "idx_bytes",
    "idx_header",
    "make_celeba_tree",
    "make_image_folder",
    "make_mnist_folder",
    "png_claiming",
    "write_idx",
    "write_md5sums",
]

_IDX_CODES = {
    np.dtype(np.uint8): 0x08,
    np.dtype(np.int8): 0x09,
    np.dtype(np.int16): 0x0B,
    np.dtype(np.int32): 0x0C,
    np.dtype(np.float32): 0x0D,
    np.dtype(np.float64): 0x0E,
}


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX encoding of ``array``: magic 0x0000<type><ndim>, big-endian uint32 dims, big-endian data."""
    a = np.asarray(array)
    code = _IDX_CODES[a.dtype.newbyteorder("=")]
    header = struct.pack(">BBBB", 0, 0, code, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape)
    return header + a.astype(a.dtype.newbyteorder(">"), copy=False).tobytes(order="C")


def write_idx(path: str | Path, array: np.ndarray, gz: bool = True) -> Path:
    """Write ``array`` as an IDX file at ``path`` (gzip-compressed when ``gz``); return the path."""
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    data = idx_bytes(array)
    p.write_bytes(gzip.compress(data, mtime=0) if gz else data)
    return p


def write_md5sums(folder: str | Path, names: list[str]) -> Path:
    """Write ``folder/MD5SUMS`` in md5sum's format for the given file names."""
    folder = Path(folder)
    lines = [f"{hashlib.md5((folder / n).read_bytes()).hexdigest()}  {n}\n" for n in names]
    path = folder / "MD5SUMS"
    path.write_text("".join(lines))
    return path


def make_mnist_folder(
    root: str | Path,
    *,
    n_train: int | None = 20,
    n_test: int = 10,
    gz: bool = True,
    dot_names: bool = False,
    seed: int = 0,
) -> dict[str, np.ndarray]:
    """Write fake MNIST IDX files (random 28x28 uint8 digits, labels 0..9) into ``root``.

    ``n_train=None`` writes only the two t10k files. ``dot_names`` uses the ``t10k-images.idx3-ubyte``
    spelling. Returns the arrays written: keys train_images, train_labels, test_images, test_labels.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    suffix = ".gz" if gz else ""
    sep = "." if dot_names else "-"
    written: dict[str, np.ndarray] = {}
    splits = [("t10k", "test", n_test)] + ([] if n_train is None else [("train", "train", n_train)])
    for stem, role, n in splits:
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) * 7 + seed) % 10
        labels = labels.astype(np.uint8)
        write_idx(root / f"{stem}-images{sep}idx3-ubyte{suffix}", images, gz=gz)
        write_idx(root / f"{stem}-labels{sep}idx1-ubyte{suffix}", labels, gz=gz)
        written[f"{role}_images"], written[f"{role}_labels"] = images, labels
    return written


@dataclass(frozen=True)
class CelebaTree:
    """What :func:`make_celeba_tree` wrote: names in file order, their ±1 attributes, partitions."""

    root: Path
    names: tuple[str, ...]
    attributes: np.ndarray  # int (n, 40) of -1 / 1, columns in CELEBA_ATTRIBUTES order
    partition: np.ndarray  # int (n,) of 0 (train) / 1 (valid) / 2 (test)
    colours: np.ndarray  # uint8 (n, 3): the fill colour of each face square

    def column(self, attribute: str) -> np.ndarray:
        return self.attributes[:, CELEBA_ATTRIBUTES.index(attribute)]


def make_celeba_tree(
    root: str | Path, n: int = 12, size: tuple[int, int] = (218, 178)
) -> CelebaTree:
    """Write a fake aligned-CelebA tree: ``n`` JPEGs of (height, width) = ``size``, attributes, partitions.

    Each image is a solid colour in its centre square, with black bands filling the rest (so a
    missing centre crop shows). Partitions cycle 0, 0, 1, 2 (train, train, valid, test).
    """
    root = Path(root)
    h, w = size
    rng = np.random.default_rng(1234)
    names = tuple(f"{i + 1:06d}.jpg" for i in range(n))
    attributes = rng.choice(np.array([-1, 1]), size=(n, len(CELEBA_ATTRIBUTES)))
    partition = np.array([(0, 0, 1, 2)[i % 4] for i in range(n)])
    colours = np.stack(
        [np.full(n, 200), 40 + (np.arange(n) * 15) % 200, np.full(n, 60)], axis=1
    ).astype(np.uint8)
    img_dir = root / "img_align_celeba"
    img_dir.mkdir(parents=True, exist_ok=True)
    side = min(h, w)
    top, left = (h - side) // 2, (w - side) // 2
    for name, colour in zip(names, colours, strict=True):
        pixels = np.zeros((h, w, 3), dtype=np.uint8)
        pixels[top : top + side, left : left + side] = colour
        Image.fromarray(pixels).save(img_dir / name, quality=95)
    rows = [f"{n}\n", " ".join(CELEBA_ATTRIBUTES) + " \n"]
    rows += [
        f"{name} " + " ".join(f"{v:2d}" for v in attrs) + "\n"
        for name, attrs in zip(names, attributes, strict=True)
    ]
    (root / "list_attr_celeba.txt").write_text("".join(rows))
    (root / "list_eval_partition.txt").write_text(
        "".join(f"{name} {p}\n" for name, p in zip(names, partition, strict=True))
    )
    return CelebaTree(root, names, attributes, partition, colours)


@dataclass(frozen=True)
class FolderImage:
    """One image written by :func:`make_image_folder`."""

    path: Path
    class_name: str
    split: str | None  # "train" / "test" with a split level, else None
    pixels: np.ndarray  # uint8 (H, W) or (H, W, 3), as written (PNG, lossless)


def make_image_folder(
    root: str | Path,
    classes: tuple[str, ...] = ("cat", "dog", "eel"),
    per_class: int = 10,
    *,
    size: tuple[int, int] = (8, 6),
    mode: str = "RGB",
    split: tuple[int, int] | None = None,
    seed: int = 0,
) -> list[FolderImage]:
    """Write PNGs under ``root/<class>/`` (or ``root/{train,test}/<class>/`` when ``split`` is given).

    ``size`` is (height, width); ``mode`` "RGB" or "L". ``split`` = (per-class train, per-class test)
    replaces ``per_class`` (at most 256 per class). Pixel (0, 0) holds the class index and pixel
    (0, 1) the image's index within its class and split (so labels can be checked against content);
    the rest is random.
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    h, w = size
    plan = [(None, per_class)] if split is None else [("train", split[0]), ("test", split[1])]
    out: list[FolderImage] = []
    for split_name, count in plan:
        base = root if split_name is None else root / split_name
        for ci, cname in enumerate(classes):
            (base / cname).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                shape = (h, w) if mode == "L" else (h, w, 3)
                pixels = rng.integers(0, 256, size=shape, dtype=np.uint8)
                pixels[0, 0] = ci
                pixels[0, 1] = i
                path = base / cname / f"img{i:03d}.png"
                Image.fromarray(pixels).save(path)
                out.append(FolderImage(path, cname, split_name, pixels))
    return out


# ---------------------------------------------------------------- hostile files


def idx_header(type_code: int, dims: tuple[int, ...], ndim: int | None = None) -> bytes:
    """A hand-made IDX header: magic 0x0000<type><ndim> and big-endian uint32 ``dims``.

    ``ndim`` overrides the declared dimension count (to declare more or fewer than given).
    """
    n = len(dims) if ndim is None else ndim
    return struct.pack(">BBBB", 0, 0, type_code, n) + struct.pack(f">{len(dims)}I", *dims)


def png_claiming(width: int, height: int) -> bytes:
    """A tiny PNG whose header claims ``width`` x ``height`` 8-bit gray pixels (its data is short).

    Opening it reads only the header, so it stands for a decompression bomb without being one.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data) & 0xFFFFFFFF
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00" * 64)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def kill_after_shards(script: str, out: Path, shards: int, *, timeout: float) -> None:
    """Run ``python -c script out`` and SIGKILL it once ``out/shards`` holds ``shards`` shards.

    Fails the calling test if the run ends (or ``timeout`` seconds pass) before it could be killed.
    """
    proc = subprocess.Popen([sys.executable, "-c", script, str(out)])
    folder = Path(out) / "shards"
    deadline = time.time() + timeout
    while time.time() < deadline and proc.poll() is None:
        if folder.is_dir() and len(list(folder.glob("*.parquet"))) >= shards:
            break
        time.sleep(0.05)
    if proc.poll() is not None:
        raise AssertionError("run finished (or failed) before it could be killed")
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
