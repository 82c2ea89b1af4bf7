"""A store that opens lazily: no shard read at open, checksums per shard on first read, a bounded
cache of decoded shards, and the index columns by column projection."""

from __future__ import annotations

import importlib.util
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import lossylearn
from lossylearn.errors import StoreError
from lossylearn.store import open_store

ROOT = Path(__file__).resolve().parents[1]
N, CHUNK = 200, 32


@pytest.fixture(scope="module")
def made(tmp_path_factory):
    out = tmp_path_factory.mktemp("scale") / "s"
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (N, 8, 8, 3), dtype=np.uint8)
    y = rng.integers(0, 5, N)
    lossylearn.compress(
        out=out, images=x, labels=y, sigma=20, codec="jpeg", seed=0, chunk_size=CHUNK,
        progress=False, warn=lambda _: None,
    )  # fmt: skip
    return out, x, y


def copy_of(made, tmp_path) -> Path:
    import shutil

    out = tmp_path / "s"
    shutil.copytree(made[0], out)
    return out


def flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def test_the_reader_gives_what_compress_stored(made):
    out, x, y = made
    store = open_store(out)
    assert store.verify_mode == "full"  # a small store is checked in full at open
    assert len(store) == N and store.shard_sizes == (32,) * 6 + (8,)
    assert np.array_equal(store.labels, y[store.indices])
    assert sorted(store.indices.tolist()) == list(range(N))
    images, labels = store.arrays()
    assert np.array_equal(labels, store.labels)
    for i in (0, 31, 32, N - 1, -1):
        image, label = store[i]
        assert np.array_equal(image, images[i]) and label == labels[i]
    assert [int(lab) for _, lab in store] == labels.tolist()
    with pytest.raises(IndexError):
        store[N]


def test_open_reads_no_shard_and_each_is_checked_when_first_read(made, tmp_path):
    out = copy_of(made, tmp_path)
    flip_a_byte(out / "shards" / "shard-00003.parquet")
    (out / "shards" / "shard-00005.parquet").unlink()
    with pytest.raises(StoreError, match="shard-00003.parquet does not match its checksum"):
        open_store(out)  # small store: verified in full at open
    store = open_store(out, verify="lazy")
    assert len(store) == N
    store[0]
    store[2 * CHUNK]
    with pytest.raises(StoreError, match="shard-00003.parquet does not match its checksum"):
        store[3 * CHUNK]
    with pytest.raises(
        StoreError, match="shard-00005.parquet is listed in the manifest but missing"
    ):
        store[5 * CHUNK]
    with pytest.raises(StoreError, match="does not match its checksum"):
        _ = store.labels  # the index columns come from checked shards too
    with pytest.raises(StoreError, match="does not match its checksum"):
        store.verify()


def test_a_shard_replaced_by_a_larger_file_is_refused_before_reading_it(made, tmp_path):
    out = copy_of(made, tmp_path)
    shard = out / "shards" / "shard-00001.parquet"
    shard.write_bytes(shard.read_bytes() + b"\0" * 10_000)
    store = open_store(out, verify="lazy")
    with pytest.raises(StoreError, match=r"shard-00001.parquet has \d+ bytes, the manifest says"):
        store[CHUNK]


def test_the_shard_cache_is_bounded(made):
    out, _, _ = made
    store = open_store(out, cache_shards=2)
    rng = np.random.default_rng(0)
    for i in rng.permutation(N):
        store[int(i)]
        assert len(store._cache) <= 2
    tiny = open_store(out, cache_bytes=1)  # always keeps the shard in use, nothing more
    for i in range(0, N, CHUNK):
        tiny[i]
        assert len(tiny._cache) == 1


def test_a_store_pickles_without_its_cache(made):
    out, _, _ = made
    store = open_store(out)
    store[0]
    again = pickle.loads(pickle.dumps(store))
    assert len(again._cache) == 0
    assert np.array_equal(again[5][0], store[5][0])


def test_verify_modes(made):
    out, _, _ = made
    assert open_store(out, verify=True).verify_mode == "full"
    assert open_store(out, verify=False).verify_mode == "none"
    assert open_store(out, verify="lazy").verify_mode == "lazy"
    with pytest.raises(StoreError, match="verify must be one of"):
        open_store(out, verify="sometimes")


def test_inspect_verifies_everything_and_no_verify_only_what_it_reads(made, tmp_path):
    out = copy_of(made, tmp_path)
    flip_a_byte(out / "shards" / "shard-00004.parquet")

    def inspect(*extra):
        return subprocess.run(
            [sys.executable, "-m", "lossylearn.cli", "inspect", str(out), "--grid",
             str(tmp_path / "g.png"), "--n", "4", *extra], capture_output=True, text=True,
            timeout=300,
        )  # fmt: skip

    proc = inspect()
    assert proc.returncode == 2 and "shard-00004.parquet does not match its checksum" in proc.stderr
    assert inspect("--no-verify").returncode == 0  # the grid reads shard 0 only


def _scale_benchmark():
    spec = importlib.util.spec_from_file_location("scale", ROOT / "benchmarks" / "scale.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_big_synthetic_store_opens_without_touching_its_shards(tmp_path):
    bench = _scale_benchmark()
    out = tmp_path / "big"
    rng = np.random.default_rng(0)
    pool = rng.integers(0, 256, (16, 8, 8, 1), dtype=np.uint8)
    bench.synthetic_store(out, pool, np.arange(16) % 10, 20_000, chunk=256)
    store = open_store(out)
    first = store[0]
    assert store.verify_mode == "full" and len(store) == 20_000
    for shard in (out / "shards").iterdir():  # gone: an open that read any shard would fail
        shard.unlink()
    lazy = open_store(out, verify="lazy")
    assert len(lazy) == 20_000 and lazy.shard_sizes[-1] == 20_000 - 78 * 256
    with pytest.raises(StoreError, match="missing"):
        lazy[19_999]
    assert first[1] == 0 and np.array_equal(first[0], pool[0])
