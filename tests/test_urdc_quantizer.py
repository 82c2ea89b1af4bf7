"""Dithered quantizer and bitstream contract of lossylearn.studies.urdc (values, byte-exact round trips)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from lossylearn.errors import CodecError, LossylearnError
from lossylearn.studies.urdc.quantizer import (
    HEADER_BYTES,
    BitstreamHeader,
    DitheredQuantizer,
    _splitmix64,
    decode_bitstream,
    empirical_entropy_bits,
    encode_bitstream,
    pack_symbols,
    payload_bits,
    shared_dither,
    unpack_symbols,
)


def test_splitmix64_matches_reference_output() -> None:
    # First outputs of the reference SplitMix64 generator seeded with 0.
    state = np.array([0], dtype=np.uint64)
    assert int(_splitmix64(state)[0]) == 0xE220A8397B1DCDAF
    state2 = np.array([0x9E3779B97F4A7C15], dtype=np.uint64)
    assert int(_splitmix64(state2)[0]) == 0x6E789E6AA1B965F4


@pytest.mark.parametrize(
    ("d", "levels", "bits"), [(3, 3, 4.754887502163468), (3, 4, 6.0), (4, 4, 8.0)]
)
def test_nominal_rates(d: int, levels: int, bits: float) -> None:
    q = DitheredQuantizer(d, levels)
    assert q.rate_bits == pytest.approx(bits, abs=1e-12)
    assert q.alphabet_size == levels**d
    assert q.step == pytest.approx(2 / (levels - 1))


def test_shared_dither_is_a_function_of_seed_and_index_only() -> None:
    full = shared_dither(123, np.arange(1000), 3, 3)
    part = shared_dither(123, np.array([7, 500, 999]), 3, 3)
    np.testing.assert_array_equal(part, full[[7, 500, 999]])
    assert not np.array_equal(shared_dither(124, np.arange(1000), 3, 3), full)
    # uniform on [-1/(L-1), 1/(L-1)) = [-0.5, 0.5) for L = 3: mean 0, variance 1/12
    assert full.min() >= -0.5 and full.max() < 0.5
    big = shared_dither(9, np.arange(40000), 3, 3)
    assert abs(big.mean()) < 0.005
    assert big.var() == pytest.approx(1 / 12, rel=0.02)
    with pytest.raises(LossylearnError):
        shared_dither(-1, np.arange(3), 3, 3)


def test_subtractive_dither_error_is_uniform_and_independent_of_the_input() -> None:
    q = DitheredQuantizer(1, 4)
    gen = torch.Generator().manual_seed(0)
    for y0 in (-0.9, -0.13, 0.0, 0.41, 0.95):
        y = torch.full((50000, 1), y0)
        u = q.random_dither(50000, gen)
        err = q.dequantize(q.indices(y, u), u) - y
        assert err.abs().max() <= q.step / 2 + 1e-6
        assert float(err.mean()) == pytest.approx(0.0, abs=0.004)
        assert float(err.var()) == pytest.approx(q.step**2 / 12, rel=0.03)


def test_straight_through_gradient_is_identity() -> None:
    q = DitheredQuantizer(3, 3)
    y = torch.tensor([[0.2, -0.7, 0.9]], requires_grad=True)
    u = torch.tensor([[0.1, 0.2, -0.3]])
    z = q.quantize_ste(y, u)
    expected = q.dequantize(q.indices(y.detach(), u), u)
    torch.testing.assert_close(z.detach(), expected)
    (z * torch.tensor([[1.0, 2.0, 3.0]])).sum().backward()
    torch.testing.assert_close(y.grad, torch.tensor([[1.0, 2.0, 3.0]]))


def test_symbols_order_latent_zero_most_significant() -> None:
    q = DitheredQuantizer(3, 3)
    idx = np.array([[1, 0, 2], [2, 2, 2], [0, 0, 0]])
    np.testing.assert_array_equal(q.symbols(idx), [11, 26, 0])
    np.testing.assert_array_equal(q.indices_from_symbols(np.array([11, 26, 0])), idx)
    with pytest.raises(CodecError):
        q.symbols(np.array([[0, 0, 3]]))


def test_pack_known_value_and_sizes() -> None:
    # V = 1 + 2 * 3 = 7 fits in bit_length(3**2 - 1) = 4 bits -> one byte 0x07
    assert pack_symbols(np.array([1, 2]), 3) == b"\x07"
    assert payload_bits(10000, 27) == math.ceil(10000 * math.log2(27))
    assert payload_bits(8, 16) == 32


@pytest.mark.parametrize(
    ("alphabet", "n"), [(27, 1), (27, 13), (27, 5000), (64, 777), (256, 300), (2, 9), (81, 0)]
)
def test_pack_unpack_round_trip_is_byte_exact(alphabet: int, n: int) -> None:
    rng = np.random.default_rng(alphabet + n)
    s = rng.integers(0, alphabet, n)
    payload = pack_symbols(s, alphabet)
    assert len(payload) == (payload_bits(n, alphabet) + 7) // 8
    np.testing.assert_array_equal(unpack_symbols(payload, n, alphabet), s)
    assert pack_symbols(unpack_symbols(payload, n, alphabet), alphabet) == payload


def test_payload_reaches_the_nominal_rate() -> None:
    n = 10000
    s = np.random.default_rng(1).integers(0, 27, n)
    payload = pack_symbols(s, 27)
    assert 8 * len(payload) - n * math.log2(27) < 8  # less than one byte over the nominal rate


def test_bitstream_round_trip_and_errors() -> None:
    rng = np.random.default_rng(3)
    idx = rng.integers(0, 4, (257, 4))
    header = BitstreamHeader(latent_dim=4, levels=4, count=257, seed=2**63 + 5, first_index=1000)
    data, size = encode_bitstream(idx, header)
    assert size.header_bytes == HEADER_BYTES == 24
    assert size.payload_bytes == 257 and size.payload_bits == 257 * 8  # 8 bits per image exactly
    assert size.stored_bits_per_image == 8.0
    assert len(data) == HEADER_BYTES + size.payload_bytes
    back, head = decode_bitstream(data)
    np.testing.assert_array_equal(back, idx)
    assert head == header
    with pytest.raises(CodecError):
        decode_bitstream(b"XXXX" + data[4:])
    with pytest.raises(CodecError):
        decode_bitstream(data[:-1])
    with pytest.raises(CodecError):
        decode_bitstream(data[:10])
    # an all-ones payload is >= 27**N: a corrupt stream, not garbage symbols
    _, size3 = encode_bitstream(np.zeros((5, 3), int), BitstreamHeader(3, 3, 5, 0))
    bad = (
        encode_bitstream(np.zeros((5, 3), int), BitstreamHeader(3, 3, 5, 0))[0][:HEADER_BYTES]
        + b"\xff" * size3.payload_bytes
    )
    with pytest.raises(CodecError):
        decode_bitstream(bad)


def test_empirical_entropy() -> None:
    assert empirical_entropy_bits(np.array([0, 1, 2, 3] * 10), 27) == pytest.approx(2.0)
    assert empirical_entropy_bits(np.zeros(50, int), 27) == 0.0
    assert empirical_entropy_bits(np.array([], int), 27) == 0.0
