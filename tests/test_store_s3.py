"""Stores in object storage, against a real S3 endpoint started here (moto's standalone server on
127.0.0.1): compress writes to s3://, open_store reads from it, training runs from it. Nothing inside
lossylearn is mocked: every byte goes through s3fs and HTTP."""

from __future__ import annotations

import json
import logging
import os
import socket
import subprocess
import sys

import numpy as np
import pytest

import lossylearn
from lossylearn.errors import StoreError
from lossylearn.store import open_store

moto_server = pytest.importorskip("moto.server", reason="needs moto[server] (the dev extra)")
s3fs = pytest.importorskip("s3fs", reason="needs s3fs (the s3 extra)")
boto3 = pytest.importorskip("boto3", reason="needs boto3 (installed with moto)")

N = 300


@pytest.fixture(scope="module")
def s3():
    """storage_options of a fresh S3 endpoint holding an empty bucket ``bucket``."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="testing",
        aws_secret_access_key="testing",
    ).create_bucket(Bucket="bucket")  # fmt: skip
    yield {
        "endpoint_url": endpoint, "key": "testing", "secret": "testing",
        "client_kwargs": {"region_name": "us-east-1"},
    }  # fmt: skip
    server.stop()


@pytest.fixture(autouse=True)
def staging(tmp_path, monkeypatch):
    monkeypatch.setenv("LOSSYLEARN_STAGING", str(tmp_path / "staging"))
    return tmp_path / "staging"


@pytest.fixture(scope="module")
def digits():
    from lossylearn.data import load_dataset

    x, y = load_dataset("mnist").split("train")
    return x[:N], y[:N]


def _bucket(opts) -> s3fs.S3FileSystem:
    fs = s3fs.S3FileSystem(skip_instance_cache=True, **opts)
    fs.invalidate_cache()
    return fs


def _compress(url, digits, opts, **kw):
    x, y = digits
    return lossylearn.compress(
        out=url, images=x, labels=y, psnr=20, codec="jpeg", seed=0, chunk_size=64,
        progress=False, warn=lambda _: None, storage_options=opts, **kw,
    )  # fmt: skip


def test_compress_to_s3_then_train_one_epoch_from_it(s3, digits, staging):
    import torch
    from torch import nn

    from lossylearn.learn.models import ModelConfig, build_model

    manifest = _compress("s3://bucket/mnist", digits, s3)
    fs = _bucket(s3)
    keys = fs.find("bucket")
    assert "bucket/mnist/manifest.json" in keys and "bucket/mnist.owner.json" in keys
    assert sum(k.startswith("bucket/mnist/shards/") for k in keys) == 5
    assert not any(staging.glob("*/store")), "the staged store is removed after the upload"
    assert json.loads(fs.cat_file("bucket/mnist/manifest.json")) == manifest.to_dict()

    store = open_store("s3://bucket/mnist", storage_options=s3, verify="lazy")
    assert len(store) == N and store.verify_mode == "lazy"
    ds = store.torch_iterable(batch_size=32, seed=1, return_index=True)
    loader = torch.utils.data.DataLoader(ds, batch_size=32, num_workers=2)
    model = build_model(ModelConfig("cnn", 1, (28, 28), 10), seed=0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    rows, losses = [], []
    for x, y, i in loader:  # one epoch, two workers, each with its own S3 connection
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        rows += i.tolist()
        losses.append(loss.item())
    assert sorted(rows) == list(range(N)) and rows == ds.order().tolist()
    assert all(np.isfinite(losses)) and len(losses) == (N + 31) // 32
    assert np.array_equal(store.labels, digits[1][store.indices])  # read by column projection


def test_a_tampered_s3_shard_is_caught_when_first_read(s3, digits):
    _compress("s3://bucket/tamper", digits, s3)
    fs = _bucket(s3)
    key = "bucket/tamper/shards/shard-00002.parquet"
    blob = bytearray(fs.cat_file(key))
    blob[len(blob) // 2] ^= 0xFF
    fs.pipe_file(key, bytes(blob))
    store = open_store("s3://bucket/tamper", storage_options=s3, verify="lazy")
    store[0]  # shard 0 is sound
    with pytest.raises(StoreError, match="shard-00002.parquet does not match its checksum"):
        store[2 * 64]
    with pytest.raises(StoreError, match="does not match its checksum"):
        open_store("s3://bucket/tamper", storage_options=s3, verify="full")
    manifest = json.loads(fs.cat_file("bucket/tamper/manifest.json"))
    manifest["privacy"]["mechanism"] = "forged"
    fs.pipe_file("bucket/tamper/manifest.json", json.dumps(manifest).encode())
    with pytest.raises(StoreError, match="integrity digest"):
        open_store("s3://bucket/tamper", storage_options=s3)


def test_s3_output_rules_match_the_local_ones(s3, digits):
    fs = _bucket(s3)
    fs.pipe_file("bucket/theirs/notes.txt", b"mine")
    with pytest.raises(StoreError, match="holds other objects.*notes.txt"):
        _compress("s3://bucket/theirs", digits, s3, overwrite=True)
    assert fs.cat_file("bucket/theirs/notes.txt") == b"mine"

    _compress("s3://bucket/again", digits, s3)
    with pytest.raises(StoreError, match="already holds a lossylearn store"):
        _compress("s3://bucket/again", digits, s3)
    x, y = digits
    small = (x[:100], y[:100])
    _compress("s3://bucket/again", small, s3, overwrite=True)
    fs.invalidate_cache()
    assert len(fs.find("bucket/again/shards")) == 2  # the old store's extra shards are gone
    assert len(open_store("s3://bucket/again", storage_options=s3)) == 100


def test_inspect_verifies_an_s3_store(s3, digits, tmp_path):
    env = {**os.environ, "FSSPEC_S3": json.dumps(s3)}
    made = subprocess.run(
        [sys.executable, "-m", "lossylearn.cli", "compress", "--limit", "100", "--psnr", "20",
         "--out", "s3://bucket/cli"], capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert "s3://bucket/cli.owner.json" in " ".join(made.stderr.split())
    proc = subprocess.run(
        [sys.executable, "-m", "lossylearn.cli", "inspect", "s3://bucket/cli", "--grid",
         str(tmp_path / "g.png")], capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "g.png").stat().st_size > 0


def test_a_run_killed_before_its_upload_resumes_to_the_same_store(s3, digits, monkeypatch):
    import lossylearn.pipeline.runner as runner

    _compress("s3://bucket/whole", digits, s3)
    real, calls = runner.run_chunk, {"n": 0}

    def dying(task):
        calls["n"] += 1
        if calls["n"] == 3:
            raise KeyboardInterrupt
        return real(task)

    monkeypatch.setattr(runner, "run_chunk", dying)
    with pytest.raises(KeyboardInterrupt):
        _compress("s3://bucket/cut", digits, s3)
    monkeypatch.setattr(runner, "run_chunk", real)
    fs = _bucket(s3)
    assert not fs.exists("bucket/cut/manifest.json")  # nothing looks complete
    with pytest.raises(StoreError, match="did not finish.*--resume"):
        _compress("s3://bucket/cut", digits, s3)
    _compress("s3://bucket/cut", digits, s3, resume=True)
    fs.invalidate_cache()
    for k in range(5):  # the same seed gives the same shards, however the run went
        rel = f"shards/shard-{k:05d}.parquet"
        assert fs.cat_file(f"bucket/whole/{rel}") == fs.cat_file(f"bucket/cut/{rel}")
    whole, cut = (open_store(f"s3://bucket/{k}", storage_options=s3) for k in ("whole", "cut"))
    assert [whole.payload(i) for i in range(N)] == [cut.payload(i) for i in range(N)]
