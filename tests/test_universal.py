"""Universal stores: the per-image latent mechanism, matched quantization, bits, decoders, data split."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy.stats import norm

from lossylearn.data import load_dataset
from lossylearn.errors import LossylearnError, PrivacyError, StoreError
from lossylearn.pipeline.plan import DataSource
from lossylearn.privacy.source import NoiseSource
from lossylearn.store import open_store
from lossylearn.universal.checkpoint import load_checkpoint
from lossylearn.universal.latent_noise import LatentMechanism, clip_l2, matched_grid
from lossylearn.universal.store import UniversalRequest, compress_universal
from lossylearn.universal.train import TrainProfile, image_ids, train_universal

TINY = TrainProfile("tiny", latent_dim=3, levels=4, n_public=300, epochs=1, classifier_epochs=1,
                    lambda_c=0.05, latent_ce=1.0)  # fmt: skip
N_PUBLIC = TINY.n_public


@pytest.fixture(scope="module")
def ck_dir(tmp_path_factory) -> Path:
    u = tmp_path_factory.mktemp("universal") / "U"
    train_universal(u, profile=TINY)
    return u


@pytest.fixture(scope="module")
def pool() -> tuple[np.ndarray, np.ndarray]:
    return load_dataset("mnist").split("train")


def private_source(pool, n: int = 200) -> DataSource:
    x, y = pool
    return DataSource(images=x[N_PUBLIC : N_PUBLIC + n], labels=y[N_PUBLIC : N_PUBLIC + n])


# -- the mechanism -----------------------------------------------------------------------------


def test_clip_bounds_the_sensitivity_for_any_input():
    rng = np.random.default_rng(0)
    c = 0.7
    y = rng.standard_normal((500, 5)) * 10.0 ** rng.uniform(-4, 8, size=(500, 1))
    y[0] = 0.0
    clipped = clip_l2(y, c)
    assert np.all(np.linalg.norm(clipped, axis=1) <= c * (1 + 1e-12))
    small = np.linalg.norm(y, axis=1) <= c
    np.testing.assert_array_equal(clipped[small], y[small])  # inside the ball: unchanged
    diff = np.linalg.norm(clipped[:, None, :] - clipped[None, :, :], axis=2)
    assert diff.max() <= 2 * c * (1 + 1e-12)  # replace-one sensitivity 2C
    # the release is clip first, then noise: subtracting the same seeded draws leaves the clip
    mech = LatentMechanism(8.0, 1e-5, c, 5)
    released = mech.release(y, NoiseSource.create(3, 0))
    noise = NoiseSource.create(3, 0).normal(mech.sigma, y.size).reshape(y.shape)
    np.testing.assert_allclose(released - noise, clipped, atol=1e-9)
    with pytest.raises(PrivacyError):
        clip_l2(np.array([[np.inf, 0.0]]), c)


@pytest.mark.parametrize("eps,delta,c", [(1.0, 1e-5, 1.0), (8.0, 1e-5, 0.5), (32.0, 1e-6, 2.0)])
def test_sigma_matches_dp_accounting_and_the_analytic_gaussian(eps, delta, c):
    from dp_accounting import get_sigma_gaussian

    mech = LatentMechanism(eps, delta, c, 4)
    assert mech.sensitivity == 2 * c
    assert mech.sigma == pytest.approx(get_sigma_gaussian(eps, delta) * 2 * c, rel=1e-6)
    # Balle & Wang (2018) Thm. 8, computed here independently: delta(eps) at this sigma <= delta
    s, d = mech.sigma, mech.sensitivity
    achieved = norm.cdf(d / (2 * s) - eps * s / d) - math.exp(eps) * norm.cdf(
        -d / (2 * s) - eps * s / d
    )
    assert achieved <= delta * (1 + 1e-6)
    assert achieved >= delta * 0.9  # and not wastefully large: the smallest such sigma


def test_matched_grid_distortion_equals_the_noise_variance():
    sigma, c = 0.3, 1.0
    grid = matched_grid(sigma, c)
    assert grid.distortion == pytest.approx(sigma**2, rel=1e-12)
    assert grid.radius >= c + 2 * sigma
    from lossylearn.universal.codec import LatentCode

    code = LatentCode(4, grid.levels, grid.radius)
    rng = np.random.default_rng(1)
    z = rng.uniform(-c, c, size=(20000, 4))
    pos = np.arange(len(z))
    deq = code.dequantize(code.indices(z, 99, pos), 99, pos).double().numpy()
    mse = float(((deq - z) ** 2).mean())
    assert mse == pytest.approx(sigma**2, rel=0.05)  # 80,000 uniform errors: ~0.6% spread


# -- stores ------------------------------------------------------------------------------------


def test_stored_bits_equal_d_log2_l_plus_the_stated_overhead(ck_dir, pool, tmp_path):
    m = compress_universal(
        UniversalRequest(ck_dir, noise_space="latent", epsilon=8.0, delta=1e-5),
        out=tmp_path / "s", source=private_source(pool, 250), seed=1, chunk_size=100,
    )  # fmt: skip
    d, levels = m.codec["grid"]["latent_dim"], m.codec["grid"]["levels"]
    rate = d * math.log2(levels)
    assert m.codec["rate_bits"] == pytest.approx(rate)
    sizes = [100, 100, 50]
    files = sorted((tmp_path / "s" / "headers").glob("universal-bits-*.bin"))
    assert [f.stat().st_size for f in files] == [24 + math.ceil(n * rate / 8) for n in sizes]
    bits = m.codec["bits"]
    assert bits["payload_bytes"] == sum(math.ceil(n * rate / 8) for n in sizes)
    assert bits["bitstream_header_bytes"] == 24 * 3
    assert rate <= bits["stored_bits_per_image"] < rate + 8 * 3 / 250
    assert m.stats.stored_bytes == bits["payload_bytes"] + 72
    # the matched grid: quantization MSE per dimension ~ sigma^2 against the released latent
    assert m.codec["achieved_distortion"] == pytest.approx(m.noise["sigma"] ** 2, rel=0.2)


def test_two_decoders_give_different_images_from_one_store(ck_dir, pool, tmp_path):
    compress_universal(
        UniversalRequest(ck_dir), out=tmp_path / "s", source=private_source(pool, 64)
    )
    a = open_store(tmp_path / "s", decoder="mse")
    b = open_store(tmp_path / "s", decoder="ce")
    assert set(a.decoders) == {"mse", "ce"} and a.decoder == "mse" and b.decoder == "ce"
    xa, la = a.arrays()
    xb, lb = b.arrays()
    assert xa.shape == (64, 28, 28, 1) and xa.dtype == np.uint8
    np.testing.assert_array_equal(la, lb)
    assert np.abs(xa.astype(int) - xb.astype(int)).mean() > 1.0
    np.testing.assert_array_equal(a[5][0], xa[5])
    np.testing.assert_array_equal(np.stack([img for img, _ in a]), xa)
    # one image on its own: a one-image bitstream that the codec decodes to the same image
    one = a.container(5)
    assert len(one) == 24 + math.ceil(3 * math.log2(4) / 8)
    np.testing.assert_array_equal(a.codec.decode(one, 0, (28, 28, 1)), xa[5])
    with pytest.raises(LossylearnError, match="no decoder 'w9'"):
        open_store(tmp_path / "s", decoder="w9")


def test_a_decoder_added_later_reads_existing_stores(ck_dir, pool, tmp_path):
    import shutil

    from lossylearn.universal.robust import train_robust_decoder

    u = tmp_path / "U"
    shutil.copytree(ck_dir, u)
    before = load_checkpoint(u).fingerprint
    compress_universal(UniversalRequest(u, noise_space="latent", epsilon=8.0, delta=1e-5),
                       out=tmp_path / "s", source=private_source(pool, 64), seed=2)  # fmt: skip
    train_robust_decoder(u, epochs=1, epsilon=8.0)
    assert load_checkpoint(u).fingerprint == before
    s = open_store(tmp_path / "s", decoder="robust")
    assert "robust" in s.decoders and s.arrays()[0].shape == (64, 28, 28, 1)


def test_no_private_image_reaches_the_encoders_training_data(ck_dir, pool, tmp_path):
    config = load_checkpoint(ck_dir).config
    pub = config["data"]["public"]
    assert pub["positions"] == [0, N_PUBLIC]
    assert config["data"]["private"]["positions"] == [N_PUBLIC, len(pool[0])]
    assert pub["image_sha256_prefixes"] == image_ids(pool[0][:N_PUBLIC])
    assert not set(image_ids(pool[0][N_PUBLIC:])) & set(pub["image_sha256_prefixes"])
    # a store with a guarantee refuses the encoder's training images, or leaves them out
    mixed = DataSource(images=pool[0][N_PUBLIC - 10 : N_PUBLIC + 40],
                       labels=pool[1][N_PUBLIC - 10 : N_PUBLIC + 40])  # fmt: skip
    req = UniversalRequest(ck_dir, noise_space="latent", epsilon=8.0, delta=1e-5)
    with pytest.raises(LossylearnError, match="10 of the 50 images were used to train"):
        compress_universal(req, out=tmp_path / "s", source=mixed, seed=0)
    assert not (tmp_path / "s").exists()
    req = UniversalRequest(ck_dir, noise_space="latent", epsilon=8.0, delta=1e-5, skip_public=True)
    m = compress_universal(req, out=tmp_path / "s", source=mixed, seed=0)
    assert m.n_images == 40
    np.testing.assert_array_equal(open_store(tmp_path / "s").indices, np.arange(10, 50))


def test_manifest_states_image_and_record_guarantees(ck_dir, pool, tmp_path):
    req = UniversalRequest(ck_dir, noise_space="latent", epsilon=4.0, delta=1e-6, clip_norm=0.8)
    p = compress_universal(req, out=tmp_path / "a", source=private_source(pool, 40)).privacy
    assert p["guarantee"] is True and p["unit"] == "image" and p["space"] == "latent"
    assert (p["epsilon"], p["delta"], p["clip_norm"]) == (4.0, 1e-6, 0.8)
    assert p["sensitivity"] == pytest.approx(1.6) and p["norm"] == "L2"
    assert "replace-one" in p["neighbouring"] and "Gaussian" in p["mechanism"]
    assert p["per_record"] is None and "No per-record guarantee" in p["statement"]
    assert "per record" not in p["statement"].replace("No per-record", "")
    req = UniversalRequest(ck_dir, noise_space="latent", epsilon=4.0, delta=1e-6, label_epsilon=1.5)
    p = compress_universal(req, out=tmp_path / "b", source=private_source(pool, 40)).privacy
    assert p["per_record"]["epsilon"] == pytest.approx(5.5) and p["per_record"]["delta"] == 1e-6
    assert p["labels"]["epsilon"] == 1.5 and "randomized response" in p["labels"]["mechanism"]
    p = compress_universal(req, out=tmp_path / "c", source=private_source(pool, 40), seed=0).privacy
    assert p["guarantee"] is False and p["if_unseeded"]["per_record"]["epsilon"] == pytest.approx(
        5.5
    )


def test_randomized_response_keeps_the_stated_share():
    from lossylearn.universal.labels import keep_probability, randomized_response

    y = np.repeat(np.arange(10), 3000)
    out = randomized_response(y, 10, 1.0, NoiseSource.create(0, 0))
    p = keep_probability(1.0, 10)
    assert p == pytest.approx(math.e / (math.e + 9))
    kept = (out == y).mean()
    assert abs(kept - p) < 4 * math.sqrt(p * (1 - p) / y.size)
    flipped = out[(out != y) & (y == 0)]
    counts = np.bincount(flipped, minlength=10)[1:]
    assert counts.min() > 0.6 * counts.mean()  # uniform over the other nine labels


def test_a_tampered_bitstream_is_refused(ck_dir, pool, tmp_path):
    compress_universal(
        UniversalRequest(ck_dir), out=tmp_path / "s", source=private_source(pool, 30)
    )
    f = next((tmp_path / "s" / "headers").glob("universal-bits-*.bin"))
    data = bytearray(f.read_bytes())
    data[-1] ^= 1
    f.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="checksum"):
        open_store(tmp_path / "s", decoder="mse")


def test_cli_refuses_mismatched_options_with_one_line(ck_dir, tmp_path):
    from typer.testing import CliRunner

    from lossylearn.cli.main import app

    def run(*args: str) -> Any:
        return CliRunner().invoke(app, ["compress", *args])

    base = ["--codec", "universal", "--codec-checkpoint", str(ck_dir), "--out", str(tmp_path / "s")]
    for args, needle in [
        (["--noise-space", "latent", "--epsilon", "8", "--delta", "1e-5"], "--unit image"),
        (["--noise-space", "latent", "--epsilon", "8", "--delta", "1e-5", "--unit", "image",
          "--psnr", "20"], "--psnr does not apply"),
        (["--epsilon", "8", "--delta", "1e-5", "--unit", "image"], "--noise-space latent"),
    ]:  # fmt: skip
        res = run(*base, *args)
        assert res.exit_code == 2 and "Traceback" not in res.output
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and needle in " ".join(lines), res.output
    res = run("--noise-space", "latent", "--out", str(tmp_path / "t"))
    assert res.exit_code == 2 and "--codec universal" in res.output
    assert not (tmp_path / "s").exists() and not (tmp_path / "t").exists()


def test_decoder_is_refused_on_a_pixel_store(tmp_path):
    from lossylearn.pipeline import compress

    compress(out=tmp_path / "j", limit=20, psnr=20, codec="png", seed=0, progress=False)
    with pytest.raises(StoreError, match="universal stores"):
        open_store(tmp_path / "j", decoder="mse")
    assert len(open_store(tmp_path / "j")) == 20
