"""Hostile dataset files (issue 10): one-line DataErrors, nothing read outside the dataset folder.

Each case builds a malformed or malicious file in tmp_path and checks that the reader refuses it
with a :class:`DataError` naming the problem (and the file), never another exception; a few run the
real command line and check exit code 2 with a single ``error:`` line and no traceback.
"""

from __future__ import annotations

import gzip
import os
import subprocess
import sys
import warnings
import zlib
from pathlib import Path

import numpy as np
import pytest
from fixtures import (
    idx_bytes,
    idx_header,
    make_celeba_tree,
    make_image_folder,
    make_mnist_folder,
    png_claiming,
    write_idx,
)
from PIL import Image

from lossylearn.data import load_dataset, read_idx
from lossylearn.data.celeba import read_attribute, read_partition
from lossylearn.data.folder import load_folder
from lossylearn.data.idx import MAX_IDX_BYTES, verify_md5sums
from lossylearn.data.imaging import decode_images
from lossylearn.errors import DataError

T10K_IMAGES = "t10k-images-idx3-ubyte"
T10K_LABELS = "t10k-labels-idx1-ubyte"


def _one_line(exc: pytest.ExceptionInfo[DataError]) -> str:
    msg = str(exc.value)
    assert "\n" not in msg and "\r" not in msg and msg.isprintable(), repr(msg)
    msg.encode("utf-8")  # no lone surrogates: the CLI can print it
    return msg


def _cli(*args: object) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "lossylearn.cli", "compress", *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120)


def _assert_cli_error(proc: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]


def _mnist_t10k(root: Path) -> Path:
    make_mnist_folder(root, n_train=None, n_test=6, gz=False)
    return root


# ---------------------------------------------------------------- IDX headers


@pytest.mark.parametrize(
    ("dims", "needle"),
    [
        # product far beyond 2**64: numpy's int64 product used to wrap around
        ((2**32 - 1, 2**32 - 1, 2**32 - 1), "bytes of data, more than"),
        # 2**31 * 2**31 * 4 * 4 = 2**66, which wrapped to exactly 0 in int64
        ((2**31, 2**31, 4, 4), "more than"),
        ((0, 28, 28), "zero dimension: (0, 28, 28)"),
        ((6, 0, 28), "zero dimension"),
    ],
)
def test_idx_hostile_dims_refused_before_reading(
    tmp_path: Path, dims: tuple[int, ...], needle: str
) -> None:
    (tmp_path / "x").write_bytes(idx_header(0x08, dims) + b"\x00" * 16)
    with pytest.raises(DataError) as e:
        read_idx(tmp_path / "x")
    assert needle in _one_line(e) and "x:" in str(e.value)


def test_idx_dims_larger_than_the_file(tmp_path: Path) -> None:
    # 100,000 images of 28x28 declared, 16 bytes present: a length error from the header alone
    (tmp_path / "x").write_bytes(idx_header(0x08, (100_000, 28, 28)) + b"\x00" * 16)
    with pytest.raises(
        DataError, match="truncated IDX file: expected 78400000 bytes of data, found 16"
    ):
        read_idx(tmp_path / "x")
    gz = tmp_path / "x.gz"
    gz.write_bytes(gzip.compress(idx_header(0x08, (100_000, 28, 28)) + b"\x00" * 16))
    with pytest.raises(
        DataError, match="truncated IDX file: expected 78400000 bytes of data, found 16"
    ):
        read_idx(gz)


@pytest.mark.parametrize(
    ("ndim", "needle"), [(0, "declares 0 dimensions"), (200, "200 dimensions (at most 16")]
)
def test_idx_rank_out_of_range(tmp_path: Path, ndim: int, needle: str) -> None:
    (tmp_path / "x").write_bytes(idx_header(0x08, (1,) * ndim) + b"\x00")
    with pytest.raises(DataError) as e:
        read_idx(tmp_path / "x")
    assert needle in _one_line(e)


def test_mnist_image_file_of_wrong_rank_or_type(tmp_path: Path) -> None:
    root = _mnist_t10k(tmp_path)
    (root / T10K_IMAGES).write_bytes(idx_header(0x08, (6, 2, 28, 28)) + bytes(6 * 2 * 28 * 28))
    with pytest.raises(DataError) as e:
        load_dataset("mnist", root)
    assert "expected a uint8 IDX image file (N, H, W), got uint8 (6, 2, 28, 28)" in _one_line(e)
    write_idx(root / T10K_IMAGES, np.zeros((6, 28, 28), np.uint8), gz=False)
    write_idx(root / T10K_LABELS, np.zeros(6, np.int32), gz=False)
    with pytest.raises(
        DataError, match=r"expected a uint8 IDX label file \(N,\), got int32 \(6,\)"
    ):
        load_dataset("mnist", root)


def test_mnist_label_out_of_range_and_count_mismatch(tmp_path: Path) -> None:
    root = _mnist_t10k(tmp_path)
    write_idx(root / T10K_LABELS, np.array([1, 2, 3, 12, 4, 5], np.uint8), gz=False)
    with pytest.raises(DataError, match=r"label 12 at index 3 is outside 0\.\.9"):
        load_dataset("mnist", root)
    write_idx(root / T10K_LABELS, np.arange(4, dtype=np.uint8), gz=False)
    with pytest.raises(DataError, match="holds 6 images but .* holds 4 labels"):
        load_dataset("mnist", root)


def test_gz_that_is_not_gzip_or_is_corrupt(tmp_path: Path) -> None:
    bz = tmp_path / "t10k-images-idx3-ubyte.gz"
    bz.write_bytes(b"BZh91AY&SY" + bytes(40))  # a bzip2 file under a .gz name
    with pytest.raises(DataError, match=r"not an IDX file \(nor gzip-compressed\): magic 425a6839"):
        read_idx(bz)
    bad = tmp_path / "bad.gz"
    bad.write_bytes(b"\x1f\x8b" + os.urandom(200))  # gzip magic, then garbage
    with pytest.raises(DataError, match="corrupt gzip stream"):
        read_idx(bad)
    trailing = tmp_path / "trailing.gz"
    trailing.write_bytes(gzip.compress(idx_bytes(np.arange(5, dtype=np.uint8))) + b"junk")
    with pytest.raises(DataError, match="corrupt gzip stream"):
        read_idx(trailing)
    with pytest.raises(DataError, match="is a folder"):
        read_idx(tmp_path)


def test_gzip_bomb_is_not_inflated_past_the_declared_length(tmp_path: Path) -> None:
    # 10 small images declared, followed by 80 MiB of zeros (80 KiB compressed)
    comp = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    parts = [comp.compress(idx_bytes(np.zeros((10, 28, 28), np.uint8)))]
    zeros = bytes(1 << 20)
    parts += [comp.compress(zeros) for _ in range(80)]
    parts.append(comp.flush())
    (tmp_path / "bomb.gz").write_bytes(b"".join(parts))
    with pytest.raises(DataError) as e:
        read_idx(tmp_path / "bomb.gz")
    msg = _one_line(e)
    assert "malformed IDX file: expected 7840 bytes of data, found more than" in msg


def test_declared_size_cap(tmp_path: Path) -> None:
    dims = (MAX_IDX_BYTES // (28 * 28) + 1, 28, 28)
    (tmp_path / "x").write_bytes(idx_header(0x08, dims))
    with pytest.raises(DataError, match="this reader accepts"):
        read_idx(tmp_path / "x")


# ---------------------------------------------------------------- MD5SUMS


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (bytes(np.random.default_rng(0).integers(0, 256, 300, dtype=np.uint8)), "binary data"),
        ("é".encode("latin-1") + b"  t10k-images-idx3-ubyte\n", "not UTF-8 text (byte 0xe9"),
        (b"z" * 32 + b"  t10k-images-idx3-ubyte\n", "expected '<md5>  <file name>'"),
        (b"0" * (2 << 20), "not an md5sum list"),
    ],
    ids=["random", "latin1", "not-hex", "huge"],
)
def test_hostile_md5sums(tmp_path: Path, content: bytes, needle: str) -> None:
    root = _mnist_t10k(tmp_path)
    (root / "MD5SUMS").write_bytes(content)
    with pytest.raises(DataError) as e:
        load_dataset("mnist", root)
    msg = _one_line(e)
    assert needle in msg and "MD5SUMS" in msg


def test_md5sums_line_shown_on_one_line(tmp_path: Path) -> None:
    (tmp_path / "MD5SUMS").write_bytes(b"abc\x1b[31m red \x07 x" * 20 + b"\n")
    with pytest.raises(DataError) as e:
        verify_md5sums(tmp_path, [])
    assert "MD5SUMS:1: expected" in _one_line(e)


# ---------------------------------------------------------------- CelebA list files


def _celeba(tmp_path: Path) -> Path:
    return make_celeba_tree(tmp_path / "celeba", n=4, size=(24, 20)).root


def _replace_name(path: Path, old: str, new: str) -> None:
    path.write_bytes(
        path.read_bytes().replace(old.encode(), new.encode("utf-8", "surrogateescape"))
    )


ESCAPES = [
    "../../secret.jpg",
    "../secret.jpg",
    "..",
    "/etc/passwd",
    "sub/000001.jpg",
    "..\\secret.jpg",
    "C:secret.jpg",
    "a\x1bb.jpg",
    "\udcff.jpg",  # an undecodable byte; rejected as non-UTF-8 text before the name check
]


@pytest.mark.parametrize("name", ESCAPES)
def test_celeba_attribute_list_cannot_point_outside(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, name: str
) -> None:
    root = _celeba(tmp_path)
    secret = tmp_path / "secret.jpg"  # a readable face outside the dataset folder
    Image.new("RGB", (20, 24), (1, 2, 3)).save(secret)
    _replace_name(root / "list_attr_celeba.txt", "000001.jpg", name)
    _replace_name(root / "list_eval_partition.txt", "000001.jpg", name)
    opened: list[str] = []
    real_open = Image.open

    def spy(fp, *args, **kwargs):
        opened.append(str(fp))
        return real_open(fp, *args, **kwargs)

    monkeypatch.setattr(Image, "open", spy)
    with pytest.raises(DataError) as e:
        load_dataset("celeba", root, image_size=8)
    msg = _one_line(e)
    assert "list_attr_celeba.txt:3" in msg
    if name != "\udcff.jpg":
        assert repr(name) in msg and "not a plain file name inside img_align_celeba/" in msg
    assert opened == []


def test_celeba_partition_list_cannot_point_outside(tmp_path: Path) -> None:
    root = _celeba(tmp_path)
    (root / "list_eval_partition.txt").write_text("000001.jpg 0\n../../../etc/passwd 2\n")
    with pytest.raises(DataError) as e:
        read_partition(root / "list_eval_partition.txt")
    assert "list_eval_partition.txt:2: file name '../../../etc/passwd'" in _one_line(e)
    # and a Kaggle CSV with an absolute path
    (root / "list_eval_partition.csv").write_text("image_id,partition\n/etc/hostname,0\n")
    with pytest.raises(DataError, match="file name '/etc/hostname' is not a plain file name"):
        read_partition(root / "list_eval_partition.csv")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (bytes(np.random.default_rng(1).integers(0, 256, 4000, dtype=np.uint8)), ":1: "),
        ("4\n5_o_Clock_Shadow Male\n00001.jpg 1 -1\n".encode("utf-16"), "binary data"),
        ("202599\nMâle Young\n".encode("latin-1"), ":2: not UTF-8 text (byte 0xe2"),
        (b"x" * (100 << 10), "line longer than"),
        ("²\n".encode(), "expected the image count on line 1"),
        (b"9" * 5000 + b"\n", "expected the image count on line 1"),
        (b"4\nMale \x07Young\n", "attribute name '\\x07Young' is not printable"),
    ],
    ids=["random", "utf16", "latin1", "long-line", "superscript", "huge-count", "control"],
)
def test_hostile_celeba_attribute_file(tmp_path: Path, content: bytes, needle: str) -> None:
    root = _celeba(tmp_path)
    (root / "list_attr_celeba.txt").write_bytes(content)
    with pytest.raises(DataError) as e:
        load_dataset("celeba", root, image_size=8)
    msg = _one_line(e)
    assert "list_attr_celeba.txt" in msg and needle in msg


def test_hostile_celeba_partition_file(tmp_path: Path) -> None:
    path = tmp_path / "list_eval_partition.txt"
    path.write_bytes(b"000001.jpg 0\n\xff\xfe\x00\x01 2\n")
    with pytest.raises(DataError, match=r"list_eval_partition\.txt:2: binary data"):
        read_partition(path)
    path.write_bytes(b"000001.jpg 7\n")
    with pytest.raises(DataError, match=r":1: expected '<file> 0\|1\|2', got '000001.jpg 7'"):
        read_partition(path)
    attr = tmp_path / "list_attr_celeba.csv"
    attr.write_bytes(b"image_id,Male\n" + b"a.jpg," + b"1" * 500 + b"\n")
    with pytest.raises(DataError) as e:
        read_attribute(attr, "Male")
    assert "is not -1 or 1" in _one_line(e) and len(str(e.value)) < 400


def test_celeba_image_size_none_means_64_and_bad_sizes_refused(tmp_path: Path) -> None:
    root = _celeba(tmp_path)
    ds = load_dataset("celeba", root, image_size=None, limit=1)
    assert ds.image_shape == (64, 64, 3)
    for bad in (0, 5000, True, 2.5, "8"):
        with pytest.raises(DataError, match="image_size must be an integer in 1..4096"):
            load_dataset("celeba", root, image_size=bad)


def test_celeba_decompression_bomb_names_the_file(tmp_path: Path) -> None:
    root = _celeba(tmp_path)
    (root / "img_align_celeba" / "000001.jpg").write_bytes(png_claiming(100_000, 100_000))
    with pytest.raises(DataError) as e:
        load_dataset("celeba", root, image_size=8)
    assert "000001.jpg: refused as a possible decompression bomb" in _one_line(e)


# ---------------------------------------------------------------- image folders


@pytest.mark.parametrize("side", [100_000, 10_000])  # past Pillow's error / warning limit
def test_folder_decompression_bomb(tmp_path: Path, side: int) -> None:
    make_image_folder(tmp_path, ("a", "b"), per_class=3, size=(8, 8))
    (tmp_path / "a" / "bomb.png").write_bytes(png_claiming(side, side))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(DataError) as e:
            load_dataset("folder", tmp_path, image_size=8)
    msg = _one_line(e)
    assert "bomb.png: refused as a possible decompression bomb" in msg
    assert f"{side * side} pixels" in msg
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]
    if side == 10_000:  # the filter is restored: Pillow warns again outside the reader
        with pytest.warns(Image.DecompressionBombWarning):
            Image.open(tmp_path / "a" / "bomb.png").close()


def _corrupt(folder: Path, name: str) -> bytes:
    good = (folder / "img000.png").read_bytes()
    rgb = Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), np.uint8))
    jpeg = folder.parent / "x.jpg"
    rgb.save(jpeg, quality=90)
    return {
        "truncated.png": good[: len(good) // 2],
        "truncated.jpg": jpeg.read_bytes()[:400],
        "garbage.png": b"not an image at all",
        "badheader.ppm": b"P6\n`0 4\n255\n" + bytes(48),  # Pillow raises ValueError here
        "empty.jpg": b"",
    }[name]


@pytest.mark.parametrize(
    "name", ["truncated.png", "truncated.jpg", "garbage.png", "badheader.ppm", "empty.jpg"]
)
def test_folder_corrupt_image_names_the_file(tmp_path: Path, name: str) -> None:
    make_image_folder(tmp_path / "d", ("a", "b"), per_class=3, size=(8, 8))
    (tmp_path / "d" / "a" / name).write_bytes(_corrupt(tmp_path / "d" / "a", name))
    with pytest.raises(DataError) as e:
        load_dataset("folder", tmp_path / "d", image_size=8)
    msg = _one_line(e)
    assert f"a/{name}: " in msg
    assert "not a readable image" in msg or "cannot decode image" in msg


def test_folder_image_size_is_the_one_size_option(tmp_path: Path) -> None:
    make_image_folder(tmp_path, ("a",), per_class=3, size=(8, 8))
    make_image_folder(tmp_path, ("b",), per_class=3, size=(12, 10), seed=1)
    with pytest.raises(DataError) as e:
        load_dataset("folder", tmp_path)
    assert "pass --image-size N" in _one_line(e) and "resize=N" not in str(e.value)
    ds = load_folder(tmp_path, image_size=6)
    assert ds.image_shape == (6, 6, 3) and "Lanczos resize to 6x6" in ds.source
    for bad in (0, 4097, True, 3.0):
        with pytest.raises(DataError, match="image_size must be an integer in 1..4096 or None"):
            load_dataset("folder", tmp_path, image_size=bad)
    # MNIST sources ignore image_size (one default may be passed for every dataset)
    make_mnist_folder(tmp_path / "fm", n_train=4, n_test=2)
    assert load_dataset("fashion-mnist", tmp_path / "fm", image_size=32).image_shape == (28, 28, 1)


@pytest.mark.parametrize("bad", [b"\xffcat", b"line\nbreak", b"bell\x07"])
def test_folder_class_names_must_be_printable(tmp_path: Path, bad: bytes) -> None:
    make_image_folder(tmp_path, ("a",), per_class=2, size=(4, 4))
    os.rename(tmp_path / "a", os.path.join(os.fsencode(tmp_path), bad))
    make_image_folder(tmp_path, ("b",), per_class=2, size=(4, 4))
    with pytest.raises(DataError) as e:
        load_dataset("folder", tmp_path)
    assert "class folder name" in _one_line(e) and "not printable UTF-8 text" in str(e.value)


def test_folder_odd_file_name_in_error_stays_one_line(tmp_path: Path) -> None:
    make_image_folder(tmp_path, ("a", "b"), per_class=2, size=(4, 4))
    odd = os.path.join(os.fsencode(tmp_path / "a"), b"x\n\xff.png")
    with open(odd, "wb") as f:
        f.write(b"garbage")
    with pytest.raises(DataError) as e:
        load_dataset("folder", tmp_path)
    assert "x\\n\\udcff.png: not a readable image" in _one_line(e)


def test_folder_layout_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no class sub-folders"):
        load_dataset("folder", tmp_path)
    make_image_folder(tmp_path / "train", ("a", "b"), per_class=2, size=(4, 4))
    with pytest.raises(DataError, match="train: class folder holds no images.*needs both train"):
        load_dataset("folder", tmp_path)


def test_decode_images_refuses_impossible_allocation(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="not enough memory for 1,000 images of"):
        decode_images([tmp_path / "x.png"] * 1000, gray=False, size=None, shape=(2**20, 2**20))


# ---------------------------------------------------------------- the command line


@pytest.fixture(scope="module")
def hostile_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("hostile")
    celeba = make_celeba_tree(base / "celeba", n=4, size=(24, 20)).root
    _replace_name(celeba / "list_attr_celeba.txt", "000001.jpg", "../../../../etc/passwd")
    md5 = _mnist_t10k(base / "md5")
    (md5 / "MD5SUMS").write_bytes(bytes(range(256)))
    idx = _mnist_t10k(base / "idx")
    (idx / T10K_IMAGES).write_bytes(idx_header(0x08, (2**32 - 1, 2**32 - 1, 2**32 - 1)))
    bomb = base / "bomb"  # few images, so that --limit 4 keeps the bomb
    make_image_folder(bomb, ("a", "b"), per_class=1, size=(8, 8))
    (bomb / "a" / "bomb.png").write_bytes(png_claiming(100_000, 100_000))
    mixed = base / "mixed"
    make_image_folder(mixed, ("a",), per_class=3, size=(8, 8))
    make_image_folder(mixed, ("b",), per_class=3, size=(12, 10), seed=1)
    return {"celeba": celeba, "md5": md5, "idx": idx, "bomb": bomb, "mixed": mixed}


@pytest.mark.parametrize(
    ("dataset", "key", "needles"),
    [
        ("celeba", "celeba", ("'../../../../etc/passwd'", "not a plain file name")),
        ("mnist", "md5", ("MD5SUMS", "binary data")),
        ("mnist", "idx", ("t10k-images-idx3-ubyte", "more than")),
        ("folder", "bomb", ("bomb.png", "decompression bomb")),
        ("folder", "mixed", ("images differ in size", "--image-size N")),
    ],
)
def test_cli_one_line_error(
    hostile_dirs: dict[str, Path], tmp_path: Path, dataset: str, key: str, needles: tuple[str, ...]
) -> None:
    proc = _cli(
        "--dataset", dataset, "--data-dir", hostile_dirs[key], "--limit", "4", "--codec", "png",
        "--psnr", "20", "--out", tmp_path / "s",
    )  # fmt: skip
    _assert_cli_error(proc, *needles)
    assert not (tmp_path / "s" / "manifest.json").exists()
