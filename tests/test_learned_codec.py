"""The learned codec end to end: real bytes, bit-exact decoding, integrity, checkpoint, Codec adapter."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import constriction
import numpy as np
import pytest
import torch
from learned_codec_support import TINY, mnist, one_thread, tiny_checkpoint

from lossylearn.codecs import Codec, get_codec, match_quality
from lossylearn.codecs.learned import register
from lossylearn.codecs.learned.checkpoint import (
    CONFIG_NAME,
    WEIGHTS_NAME,
    load_checkpoint,
    save_checkpoint,
)
from lossylearn.codecs.learned.codec import LearnedCodec
from lossylearn.codecs.learned.coding import CompressionModel, EntropyParameters
from lossylearn.codecs.learned.models import build_codec_model
from lossylearn.codecs.learned.table_coder import TableCoder
from lossylearn.codecs.learned.tables import quantize_pmf, stack_tables
from lossylearn.errors import CodecError

ARCHS = ["factorized", "hyperprior"]


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


@pytest.fixture(params=ARCHS)
def codec(request: pytest.FixtureRequest) -> LearnedCodec:
    return LearnedCodec(tiny_checkpoint(request.param))


def test_round_trip_is_the_model_reconstruction(codec: LearnedCodec) -> None:
    _, test = mnist()
    for q in codec.qualities:
        payloads = codec.encode_batch(test, q)
        decoded = codec.decode_batch(payloads, q, (28, 28, 1))
        assert decoded.dtype == np.uint8 and decoded.shape == test.shape
        assert np.array_equal(decoded, codec.model(q).reconstruct(test))
        # single-image calls give the same bytes and pixels as the batch
        assert codec.encode(test[3], q) == payloads[3]
        assert np.array_equal(codec.decode(payloads[3], q, (28, 28, 1)), decoded[3])


def test_real_bits_are_within_2_percent_or_001_bpp_of_the_estimate() -> None:
    """The done criterion of the issue, on the factorized model (see the overhead test below for
    the hyperprior: its barely trained fixture has many far-tail latents, which the float
    likelihood prices at its 1e-9 floor, ~30 bits, while the coder escapes them in ~20)."""
    codec = LearnedCodec(tiny_checkpoint("factorized"))
    _, test = mnist()
    pixels = 28 * 28
    for q in codec.qualities:
        real = np.array([8 * len(p) for p in codec.encode_batch(test, q)]) / pixels
        est = codec.estimate_bits(test, q) / pixels
        gap = abs(real.mean() - est.mean())
        assert gap <= max(0.02 * est.mean(), 0.01), (q, real.mean(), est.mean())


@pytest.mark.parametrize("arch", ARCHS)
def test_stream_overhead_over_the_integer_tables_is_a_few_bits(arch: str) -> None:
    """Byte trimming: real bits exceed the ideal code length under the integer tables (escapes
    included) by a few bits per image (sealing plus byte rounding), not by whole 32-bit words."""
    cm = LearnedCodec(tiny_checkpoint(arch)).model(1)
    _, test = mnist()
    overhead = []
    for lat, payload in zip(cm._analyse(test), cm.compress(test), strict=True):
        ideal = cm.z_coder.estimate_bits(lat.z, lat.z_ids)
        if cm.y_coder is not None:
            ideal += cm.y_coder.estimate_bits(lat.y, lat.y_ids)
        overhead.append(8 * len(payload) - ideal)
    overhead = np.array(overhead)
    # the shortest string that decodes can by luck be a few bits under the information content
    assert overhead.min() > -10.0 and overhead.max() < 12.0
    assert 0.5 < overhead.mean() < 8.0


def test_table_coder_round_trips_escaped_values() -> None:
    rows = [quantize_pmf(np.array([0.2, 0.6, 0.2]), 1e-3), quantize_pmf(np.array([0.9, 0.1]), 1e-4)]
    tables = stack_tables(rows, [-1, 0])
    coder = TableCoder(tables)
    values = np.array([0, 1, -1, 5000, -70000, 0, 1, 2**30, -3], dtype=np.int64)
    ids = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1], dtype=np.int64)
    enc = constriction.stream.queue.RangeEncoder()
    coder.encode(enc, values, ids)
    dec = constriction.stream.queue.RangeDecoder(enc.get_compressed())
    assert np.array_equal(coder.decode(dec, ids), values)
    with pytest.raises(CodecError, match="too large"):
        coder.encode(constriction.stream.queue.RangeEncoder(), np.array([2**45]), np.array([1]))


@pytest.mark.parametrize("arch", ARCHS)
def test_sizes_that_are_not_a_multiple_of_the_stride(arch: str) -> None:
    codec = LearnedCodec(tiny_checkpoint(arch))
    rng = np.random.default_rng(0)
    for shape in [(30, 27, 1), (5, 3, 1), (1, 1, 1)]:
        img = rng.integers(0, 256, size=shape, dtype=np.uint8)
        out = codec.decode(codec.encode(img, 1), 1, shape)
        assert out.shape == shape
        assert np.array_equal(out, codec.model(1).reconstruct(img[None])[0])


def test_truncated_and_corrupted_payloads_raise_codec_error(codec: LearnedCodec) -> None:
    _, test = mnist()
    payloads = codec.encode_batch(test[:40], 1)
    shape = (28, 28, 1)
    with pytest.raises(CodecError):
        codec.decode(b"", 1, shape)
    with pytest.raises(CodecError):
        codec.decode(payloads[0][: len(payloads[0]) // 2], 1, shape)
    rng = np.random.default_rng(1)
    caught = 0
    for p in payloads:
        bad = bytearray(p)
        bad[int(rng.integers(len(bad)))] ^= 1 << int(rng.integers(8))
        try:
            codec.decode(bytes(bad), 1, shape)
        except CodecError:
            caught += 1
    # without check bits detection comes only from requiring the canonical stream: most flips
    # (57-71% on trained MNIST ladders), few truncations; check_bits and containers do better
    assert caught >= 0.5 * len(payloads)


def test_check_bits_cost_their_bits_and_catch_damage() -> None:
    path = tiny_checkpoint("factorized")
    plain, checked = LearnedCodec(path), LearnedCodec(path, check_bits=8)
    _, test = mnist()
    shape = (28, 28, 1)
    a, b = plain.encode_batch(test, 1), checked.encode_batch(test, 1)
    assert np.array_equal(checked.decode_batch(b, 1, shape), plain.decode_batch(a, 1, shape))
    extra = 8 * (sum(map(len, b)) - sum(map(len, a))) / len(test)
    assert 5.0 < extra < 11.0  # about 8 bits per image, not whole words
    rng = np.random.default_rng(2)
    damaged = [p[: len(p) - 1 - int(rng.integers(3))] for p in b]
    for p in b:
        bad = bytearray(p)
        bad[int(rng.integers(len(bad)))] ^= 1 << int(rng.integers(8))
        damaged.append(bytes(bad))
    caught = 0
    for p in damaged:
        try:
            checked.decode(p, 1, shape)
        except CodecError:
            caught += 1
    assert caught >= 0.95 * len(damaged)
    # a container records its check bits, so any codec instance of the checkpoint opens it
    blob = checked.container(b[0], 1, shape)
    assert np.array_equal(plain.decode_container(blob), checked.decode(b[0], 1, shape))


def test_container_is_self_describing_and_checked(codec: LearnedCodec) -> None:
    _, test = mnist()
    payload = codec.encode(test[0], 1)
    blob = codec.container(payload, 1, (28, 28, 1))
    assert len(blob) == 28 + len(payload) and blob[:4] == b"LLC1"
    assert codec.read_container(blob) == (payload, 1, (28, 28, 1), 0)
    assert np.array_equal(codec.decode_container(blob), codec.decode(payload, 1, (28, 28, 1)))
    with pytest.raises(CodecError, match="truncated"):
        codec.read_container(blob[:-1])
    flipped = bytearray(blob)
    flipped[-1] ^= 0x10
    with pytest.raises(CodecError, match="CRC"):
        codec.read_container(bytes(flipped))
    other = LearnedCodec(
        tiny_checkpoint(
            "hyperprior"
            if codec.checkpoint.model_config.architecture == "factorized"
            else "factorized"
        )
    )
    with pytest.raises(CodecError, match="different learned-codec checkpoint"):
        other.read_container(blob)


def test_codec_protocol_registry_and_matching() -> None:
    register()
    path = tiny_checkpoint("factorized")
    codec = get_codec("learned", checkpoint=str(path))
    assert isinstance(codec, Codec) and isinstance(codec, LearnedCodec)
    assert codec.qualities == (0, 1) and codec.shared_header(0, (28, 28, 1)) == b""
    cfg = codec.config()
    json.dumps(cfg)
    assert cfg["lmbdas"] == sorted(cfg["lmbdas"]) and len(cfg["checkpoint_sha256"]) == 64
    with pytest.raises(CodecError, match="needs checkpoint"):
        get_codec("learned")
    with pytest.raises(CodecError, match="quality 5"):
        codec.encode(mnist()[1][0], 5)
    with pytest.raises(CodecError, match="1-channel"):
        codec.encode(np.zeros((28, 28, 3), np.uint8), 0)
    _, test = mnist()
    dists = {}
    for q in codec.qualities:
        dec = codec.decode_batch(codec.encode_batch(test[:16], q), q, (28, 28, 1))
        dists[q] = float(((dec.astype(float) - test[:16]) ** 2).mean())
    assert dists[0] != dists[1]
    for q in codec.qualities:  # the rung whose distortion is the target is the one picked
        result = match_quality(codec, test[:16], dists[q], "mse")
        assert (
            result.quality == q and result.reached and result.distortion == pytest.approx(dists[q])
        )


def test_checkpoint_round_trip_and_refusals(tmp_path: Path) -> None:
    src = tiny_checkpoint("hyperprior")
    ck = load_checkpoint(src)
    out = save_checkpoint(ck, tmp_path / "copy")
    _, test = mnist()
    a = LearnedCodec(src).encode_batch(test[:8], 1)
    assert LearnedCodec(out).encode_batch(test[:8], 1) == a
    with pytest.raises(CodecError, match="already holds"):
        save_checkpoint(ck, out)
    # a config that disagrees with the weights is refused (shapes come from the config only)
    cfg = json.loads((out / CONFIG_NAME).read_text())
    cfg["model"]["channels"] = 24
    (out / CONFIG_NAME).write_text(json.dumps(cfg))
    with pytest.raises(CodecError, match="do not fit the configured model"):
        load_checkpoint(out)
    # weights that are not the ones the config names are refused
    (out / WEIGHTS_NAME).write_bytes((out / WEIGHTS_NAME).read_bytes() + b"\0")
    with pytest.raises(CodecError, match="checksum"):
        load_checkpoint(out)
    with pytest.raises(CodecError, match="not a learned-codec checkpoint"):
        load_checkpoint(tmp_path)


def test_entropy_parameters_must_match_the_model() -> None:
    torch.manual_seed(0)
    fact = build_codec_model(TINY["factorized"]).eval()
    hyper = build_codec_model(TINY["hyperprior"]).eval()
    with pytest.raises(CodecError, match="architecture"):
        CompressionModel(fact, EntropyParameters.build(hyper))


_DECODE = textwrap.dedent(
    """
    import sys, numpy as np, torch
    torch.set_num_threads(int(sys.argv[1]))
    from lossylearn.codecs.learned.codec import LearnedCodec
    data = np.load(sys.argv[3], allow_pickle=False)
    codec = LearnedCodec(sys.argv[2])
    payloads = [bytes(data[f"p{i}"]) for i in range(int(data["n"]))]
    one = np.stack([codec.decode(p, 1, (28, 28, 1)) for p in payloads[:5]])
    batch = codec.decode_batch(payloads, 1, (28, 28, 1))
    assert np.array_equal(one, batch[:5])
    np.save(sys.argv[4], batch)
    """
)


def test_decoding_is_bit_exact_across_processes_and_thread_counts(tmp_path: Path) -> None:
    path = tiny_checkpoint("hyperprior")
    codec = LearnedCodec(path)
    _, test = mnist()
    payloads = codec.encode_batch(test, 1)
    here = codec.decode_batch(payloads, 1, (28, 28, 1))
    np.savez(tmp_path / "p.npz", n=len(payloads),
             **{f"p{i}": np.frombuffer(p, np.uint8) for i, p in enumerate(payloads)})  # fmt: skip
    procs, dsts = [], []
    for threads in (1, 2):  # both run at once: two fresh processes, different thread counts
        dsts.append(tmp_path / f"out{threads}.npy")
        procs.append(subprocess.Popen(
            [sys.executable, "-c", _DECODE, str(threads), str(path), str(tmp_path / "p.npz"), str(dsts[-1])],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        ))  # fmt: skip
    for proc in procs:
        _, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err.decode()[-2000:]
    outs = [np.load(d) for d in dsts]
    assert np.array_equal(outs[0], outs[1])
    assert np.array_equal(outs[0], here)
