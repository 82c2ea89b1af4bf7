"""Exports for Hugging Face datasets and WebDataset (issue 16), read back with the real libraries."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from PIL import Image

import lossylearn
from lossylearn import export_hf
from lossylearn.data import ImageDataset
from lossylearn.errors import CodecError, LossylearnError, StoreError
from lossylearn.export import export_store
from lossylearn.store import open_store
from lossylearn.store.reader import Store

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # local folders only: never the network
datasets = pytest.importorskip("datasets")
wds = pytest.importorskip("webdataset")
yaml = pytest.importorskip("yaml")
datasets.disable_progress_bars()

HOSTILE = ("..", 'say "hi"\\', "line\nbreak", "é \u2028 \x85 \U0001f600", "- a: b # c", "Cat")


def _store(root: Path, name: str, channels: int, codec: str, classes: tuple[str, ...]) -> Path:
    rng = np.random.default_rng(channels)
    n = 30
    images = rng.integers(0, 256, (n, 12, 10, channels), dtype=np.uint8)
    labels = (np.arange(n) % len(classes)).astype(np.int64)
    ds = ImageDataset(name="toy", train_images=images, train_labels=labels,
                      test_images=images[:2].copy(), test_labels=labels[:2].copy(),
                      classes=classes, source="test arrays")  # fmt: skip
    out = root / name
    lossylearn.compress(out=out, dataset=ds, sigma=20, codec=codec, seed=0, progress=False)
    return out


@pytest.fixture(scope="module")
def stores(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf")
    return {
        "jpeg": _store(root, "colour-jpeg", 3, "jpeg", HOSTILE),
        "png": _store(root, "grey-png", 1, "png", ("zero", "one", "two")),
    }


def _pixels(image: Image.Image) -> np.ndarray:
    a = np.asarray(image)
    return a[..., None] if a.ndim == 2 else a


def _assert_rows_match(rows, store: Store) -> None:
    """Rows (dicts with image, label, source_index) in store order hold the store's images."""
    rows = list(rows)
    assert len(rows) == len(store)
    for i, row in enumerate(rows):
        image, label = store[i]
        assert row["source_index"] == int(store.indices[i]) and row["label"] == label
        assert np.array_equal(_pixels(row["image"]), image)


@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_datasets_loads_the_hf_export(stores, kind, tmp_path) -> None:
    store = open_store(stores[kind])
    dest = tmp_path / "hf"
    assert export_store(stores[kind], dest, fmt="hf") == len(store)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*")) == [
        "README.md", "data", "data/train-00000-of-00001.parquet"]  # fmt: skip
    classes = store.manifest.dataset["classes"]
    for loaded in (
        datasets.load_dataset(str(dest), cache_dir=str(tmp_path / "cache")),
        datasets.load_dataset("parquet", data_dir=str(dest), cache_dir=str(tmp_path / "cache2")),
    ):
        split = loaded["train"]
        assert split.features["label"].names == classes  # exact names, hostile ones included
        assert isinstance(split.features["image"], datasets.Image)
        _assert_rows_match(split, store)
    table = pq.read_table(dest / "data" / "train-00000-of-00001.parquet")
    features = datasets.Features.from_arrow_schema(table.schema)
    assert features["label"].names == classes
    if kind == "jpeg":  # the store's own JPEG files, tables put back: no second loss
        assert table["image"][0].as_py()["bytes"] == store.container(0)
        assert table["image"][0].as_py()["path"].endswith(".jpg")
    card = (dest / "README.md").read_text(encoding="utf-8")
    header = yaml.safe_load(card.split("---\n")[1])
    names = header["dataset_info"]["features"][1]["dtype"]["class_label"]["names"]
    assert [names[str(i)] for i in range(len(classes))] == classes
    assert header["dataset_info"]["splits"][0]["num_examples"] == len(store)
    assert header["configs"][0]["data_files"][0]["path"] == "data/train-*"
    assert "No differential-privacy guarantee" in card  # the seeded store's statement
    assert store.manifest.integrity["sha256"] in card


def test_to_hf_dataset_matches_the_store(stores, monkeypatch) -> None:
    store = open_store(stores["jpeg"])
    ds = store.to_hf_dataset()
    assert ds.features["label"].names == list(HOSTILE) and ds.split == "train"
    _assert_rows_match(ds, store)
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if it were not installed
    with pytest.raises(LossylearnError, match="pip install datasets"):
        store.to_hf_dataset()


@pytest.mark.parametrize("kind", ["jpeg", "png"])
def test_webdataset_reads_the_tar_shards(stores, kind, tmp_path, monkeypatch) -> None:
    store = open_store(stores[kind])
    monkeypatch.setattr(export_hf, "SHARD_BYTES", 2000)  # several shards
    dest = tmp_path / "wds"
    export_store(stores[kind], dest, fmt="webdataset")
    shards = sorted(dest.glob("train-*.tar"))
    assert len(shards) > 1 and shards[0].name == "train-000000.tar"
    url = str(dest / f"train-{{000000..{len(shards) - 1:06d}}}.tar")
    spec = "rgb8" if store.image_shape[2] == 3 else "l8"
    pipeline = wds.WebDataset(url, shardshuffle=False).decode(spec)
    samples = list(pipeline.to_tuple("__key__", "jpg;png", "cls", "json"))
    assert len(samples) == len(store)
    names = json.loads((dest / "labels.json").read_text(encoding="utf-8"))["classes"]
    assert names == store.manifest.dataset["classes"]
    for i, (key, pixels, cls, meta) in enumerate(samples):
        image, label = store[i]
        assert key == f"{int(store.indices[i]):07d}" and cls == label == meta["label"]
        assert meta["class"] == names[label] and meta["source_index"] == int(store.indices[i])
        assert np.array_equal(pixels.reshape(image.shape), image)
    assert "wds.WebDataset" in (dest / "README.md").read_text(encoding="utf-8")


def test_many_parquet_files_load_as_one_split(stores, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(export_hf, "SHARD_BYTES", 3000)
    dest = tmp_path / "hf"
    export_store(stores["png"], dest, fmt="hf")
    files = sorted(p.name for p in (dest / "data").iterdir())
    assert len(files) > 1 and files[-1] == f"train-{len(files) - 1:05d}-of-{len(files):05d}.parquet"
    loaded = datasets.load_dataset(str(dest), cache_dir=str(tmp_path / "cache"))
    _assert_rows_match(loaded["train"], open_store(stores["png"]))


@pytest.mark.parametrize("fmt", ["hf", "webdataset"])
def test_a_failed_export_leaves_nothing(stores, fmt, tmp_path, monkeypatch) -> None:
    real = Store.container

    def flaky(self, i):
        if i == len(self) - 1:
            raise CodecError("payload is corrupt (simulated)")
        return real(self, i)

    monkeypatch.setattr(Store, "container", flaky)
    dest = tmp_path / "out" / "dest"
    with pytest.raises(StoreError, match=r"image 29 .*payload is corrupt.*nothing was written"):
        export_store(stores["jpeg"], dest, fmt=fmt)
    assert list(tmp_path.iterdir()) == []  # no partial export, temporary or created parent


def test_yaml_strings_read_back_exactly() -> None:
    hostile = [*HOSTILE, "".join(chr(c) for c in range(1, 0x3000)), "\ufeff", "'", "null", ""]
    for text in hostile:
        assert yaml.safe_load(f"k: {export_hf.yaml_str(text)}") == {"k": text}


def test_cli_export_hf(stores, tmp_path) -> None:
    dest = tmp_path / "cli"
    proc = subprocess.run(
        [sys.executable, "-m", "lossylearn.cli", "export", str(stores["png"]), str(dest),
         "--format", "hf"],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    table = pq.read_table(dest / "data" / "train-00000-of-00001.parquet")
    first = table["image"][0].as_py()["bytes"]
    assert Image.open(io.BytesIO(first)).format == "PNG" and table.num_rows == 30
