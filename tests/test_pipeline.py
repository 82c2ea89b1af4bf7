"""The LCoN run end to end: matched distortion, honest rates, determinism, atomic commit, resume."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from fixtures import kill_after_shards

import lossylearn
from lossylearn.data import load_dataset
from lossylearn.errors import LossylearnError, StoreError
from lossylearn.pipeline import chunks as chunks_module
from lossylearn.pipeline import lcon_transform
from lossylearn.privacy import NoiseSource, add_noise, resolve_noise
from lossylearn.store import RUN_STATE, open_store
from lossylearn.store.owner import owner_path, read_clean_stats


@pytest.fixture(scope="module")
def mnist():
    return load_dataset("mnist")


@pytest.fixture(scope="module")
def psnr20(tmp_path_factory, mnist):
    out = tmp_path_factory.mktemp("s") / "psnr20"
    images, labels = mnist.split("train")
    manifest = lossylearn.compress(
        images=images[:1500], labels=labels[:1500], noise="gaussian", psnr=20, codec="jpeg",
        out=out, seed=1, chunk_size=512, progress=False,
    )  # fmt: skip
    return out, manifest


def store_bytes(directory: Path) -> dict[str, bytes]:
    """Every file of a store except the run section of the manifest (id, timing, worker count)
    and the integrity digest that covers it."""
    files = {}
    for p in sorted(directory.rglob("*")):
        if p.is_file():
            data = p.read_bytes()
            if p.name == "manifest.json":
                m = json.loads(data)
                m.pop("run")
                m.pop("integrity")
                data = json.dumps(m, sort_keys=True).encode()
            files[str(p.relative_to(directory))] = data
    return files


def test_matched_jpeg_reaches_sigma_squared(psnr20):
    _, m = psnr20
    sigma2 = (255 * 10 ** (-20 / 20)) ** 2
    assert m.codec["target_metric"] == "mse"
    assert m.codec["target_distortion"] == pytest.approx(sigma2)
    assert m.stats.distortion_to_noisy.mse == pytest.approx(sigma2, rel=0.10)
    assert m.codec["target_reached"] is True
    assert m.noise["sigma"] == pytest.approx(25.5)


def test_rates_are_counted_from_stored_bytes(psnr20):
    out, m = psnr20
    store = open_store(out)
    payload = sum(len(store.payload(i)) for i in range(len(store)))
    header = sum(p.stat().st_size for p in (out / "headers").iterdir())
    assert header > 100  # JPEG tables stored once
    assert m.stats.stored_bytes == payload + header
    assert m.stats.bits_per_pixel == pytest.approx(8 * (payload + header) / (1500 * 28 * 28))
    # Shared tables: far fewer bits than one standalone file per image.
    assert m.stats.bits_per_pixel < 0.6 * m.stats.container_bits_per_pixel
    assert m.stats.container_bytes == sum(len(store.container(i)) for i in range(len(store)))


def test_manifest_contract(psnr20):
    out, _ = psnr20
    d = json.loads((out / "manifest.json").read_text())
    assert d["format"] == "lossylearn-store/2"
    assert d["n_images"] == 1500 and d["image_shape"] == [28, 28, 1]
    for key in ("kind", "sigma", "discrete", "range_handling", "entropy_bits"):
        assert key in d["noise"]
    # seeded: no guarantee is claimed; what the same noise would give unseeded is shown apart
    assert d["privacy"]["guarantee"] is False and "epsilon" not in d["privacy"]
    for key in ("mechanism", "epsilon", "delta", "sensitivity", "unit"):
        assert key in d["privacy"]["if_unseeded"]
    for key in ("name", "quality", "target_distortion", "target_reached"):
        assert key in d["codec"]
    s = d["stats"]
    for key in ("bits_per_pixel", "container_bits_per_pixel"):
        assert key in s
    assert set(s["distortion_to_noisy"]) == {"mse", "mae"}
    assert d["privacy"]["if_unseeded"]["unit"] == "pixel"
    assert d["privacy"]["if_unseeded"]["delta"] == pytest.approx(1e-5)
    # nothing derived from the clean images, and no seed, in the store
    assert not any("clean" in k or "psnr" in k for k in s)
    assert "seed" not in d["run"] and d["run"]["seeded"] is True
    # the clean-side figures are the owner's: psnr 20 nominal; clipping removes some noise energy
    clean = read_clean_stats(out)
    assert 20.0 <= clean.psnr_noisy_db < 23.0
    assert json.loads(owner_path(out).read_text())["seed"] == 1


def test_reader(psnr20, mnist):
    out, m = psnr20
    store = open_store(out)
    assert len(store) == 1500
    images, labels = store.arrays()
    assert images.shape == (1500, 28, 28, 1) and images.dtype == np.uint8
    img, label = store[7]
    assert np.array_equal(img, images[7]) and label == labels[7]
    _, train_labels = mnist.split("train")
    assert np.array_equal(labels, train_labels[:1500][store.indices])
    ds = store.torch_dataset()
    x, y = ds[3]
    assert tuple(x.shape) == (1, 28, 28) and 0.0 <= float(x.min()) and float(x.max()) <= 1.0
    assert y == labels[3]
    assert np.allclose(x.numpy()[0] * 255, images[3, :, :, 0], atol=1e-3)


def test_unreachable_target_warns_and_still_writes(tmp_path, mnist):
    images, labels = mnist.split("train")
    warnings: list[str] = []
    m = lossylearn.compress(
        images=images[:300], labels=labels[:300], psnr=8, codec="jpeg", out=tmp_path / "s",
        seed=0, progress=False, warn=warnings.append,
    )  # fmt: skip
    assert m.codec["target_reached"] is False
    assert m.codec["quality"] == 1  # the closest JPEG gets: its lowest quality
    assert len(warnings) == 1 and "could not reach MSE" in warnings[0]
    assert len(open_store(tmp_path / "s")) == 300


def test_epsilon_calibration_lands_in_manifest(tmp_path, mnist):
    images, labels = mnist.split("train")
    m = lossylearn.compress(
        images=images[:64], labels=labels[:64], epsilon=1, delta=1e-5, unit="pixel", out=tmp_path / "s",
        seed=0, progress=False, warn=lambda _: None,
    )  # fmt: skip
    assert m.noise["sigma"] == pytest.approx(3.73 * 255, rel=0.01)
    assert m.privacy["if_unseeded"]["epsilon"] == 1
    assert m.privacy["if_unseeded"]["sensitivity"] == 255
    unseeded = lossylearn.compress(
        images=images[:64], labels=labels[:64], epsilon=1, delta=1e-5, unit="pixel",
        out=tmp_path / "u", progress=False, warn=lambda _: None,
    )  # fmt: skip
    assert unseeded.has_guarantee and unseeded.privacy["epsilon"] == 1
    assert unseeded.privacy["sensitivity"] == 255


def test_workers_do_not_change_bytes(tmp_path, mnist):
    images, labels = mnist.split("train")
    kw = dict(
        images=images[:900],
        labels=labels[:900],
        psnr=16,
        out=None,
        seed=7,
        chunk_size=200,
        progress=False,
    )
    kw["out"] = tmp_path / "one"
    lossylearn.compress(**kw, workers=1)
    kw["out"] = tmp_path / "two"
    lossylearn.compress(**kw, workers=2)
    assert store_bytes(tmp_path / "one") == store_bytes(tmp_path / "two")


def test_per_image_matching(tmp_path, mnist):
    images, labels = mnist.split("train")
    m = lossylearn.compress(
        images=images[:120], labels=labels[:120], psnr=20, match="image", out=tmp_path / "s",
        seed=3, progress=False,
    )  # fmt: skip
    assert m.codec["match"]["method"] == "image"
    assert len(m.codec["qualities"]) > 1
    store = open_store(tmp_path / "s")
    assert len(set(store.qualities.tolist())) > 1
    assert m.stats.distortion_to_noisy.mse == pytest.approx(650.25, rel=0.10)


def test_clean_images_never_enter_the_store(tmp_path, mnist):
    images, labels = mnist.split("train")
    images, labels = images[:50], labels[:50]
    out = tmp_path / "s"
    lossylearn.compress(
        images=images,
        labels=labels,
        psnr=20,
        codec="png",
        out=out,
        seed=5,
        progress=False,
        warn=lambda _: None,
    )
    names = sorted(str(p.relative_to(out)) for p in out.rglob("*") if p.is_file())
    assert names == ["manifest.json", "shards/shard-00000.parquet"]
    store = open_store(out)
    stored, _ = store.arrays()
    # png is lossless: the store holds exactly the noisy images of that chunk's noise stream
    spec, _ = resolve_noise(kind="gaussian", psnr=20, image_shape=(28, 28, 1), seeded=True)
    noisy = add_noise(images[store.indices], spec, NoiseSource.create(5, 0))
    assert np.array_equal(stored, noisy)
    assert not any(np.array_equal(stored[i], images[store.indices[i]]) for i in range(50))
    raw = (out / "shards/shard-00000.parquet").read_bytes()
    assert images[store.indices[0]].tobytes() not in raw


def test_refuses_a_folder_holding_a_store(psnr20, mnist):
    out, _ = psnr20
    images, labels = mnist.split("train")
    with pytest.raises(StoreError, match="already holds a lossylearn store"):
        lossylearn.compress(
            images=images[:10], labels=labels[:10], psnr=20, out=out, progress=False
        )


def test_refuses_foreign_folder_and_overwrites_own(tmp_path, mnist):
    images, labels = mnist.split("train")
    (tmp_path / "f").mkdir()
    (tmp_path / "f" / "thesis.tex").write_text("precious")
    with pytest.raises(StoreError, match="holds other files"):
        lossylearn.compress(
            images=images[:10], labels=labels[:10], psnr=20, out=tmp_path / "f", progress=False
        )
    with pytest.raises(StoreError, match="never removes what it did not write"):
        lossylearn.compress(
            images=images[:10],
            labels=labels[:10],
            psnr=20,
            out=tmp_path / "f",
            overwrite=True,
            progress=False,
        )
    assert (tmp_path / "f" / "thesis.tex").read_text() == "precious"
    kw = dict(images=images[:10], labels=labels[:10], psnr=20, out=tmp_path / "g", progress=False)
    lossylearn.compress(**kw, seed=1)
    m = lossylearn.compress(**kw, seed=2, overwrite=True)
    assert m.n_images == 10


def test_bad_arrays_are_refused(tmp_path):
    with pytest.raises(LossylearnError, match="uint8"):
        lossylearn.compress(
            images=np.zeros((4, 28, 28, 1), np.float32),
            labels=np.zeros(4),
            psnr=20,
            out=tmp_path / "a",
        )
    with pytest.raises(LossylearnError, match="labels"):
        lossylearn.compress(
            images=np.zeros((4, 28, 28, 1), np.uint8),
            labels=np.zeros(3),
            psnr=20,
            out=tmp_path / "b",
        )


def test_interrupted_run_is_not_a_store_and_resumes_to_identical_bytes(
    tmp_path, mnist, monkeypatch
):
    images, labels = mnist.split("train")
    kw = dict(
        images=images[:800], labels=labels[:800], psnr=18, seed=11, chunk_size=200, progress=False
    )
    lossylearn.compress(**kw, out=tmp_path / "full")

    real = chunks_module.run_chunk
    calls = {"n": 0}

    def dying(task):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # as if the user pressed Ctrl-C mid-run
        return real(task)

    import lossylearn.pipeline.runner as compress_module

    monkeypatch.setattr(compress_module, "run_chunk", dying)
    with pytest.raises(KeyboardInterrupt):
        lossylearn.compress(**kw, out=tmp_path / "cut")
    monkeypatch.setattr(compress_module, "run_chunk", real)
    assert (tmp_path / "cut" / RUN_STATE).exists()
    assert not (tmp_path / "cut" / "manifest.json").exists()
    with pytest.raises(StoreError):
        open_store(tmp_path / "cut")
    with pytest.raises(StoreError, match="--resume"):
        lossylearn.compress(**kw, out=tmp_path / "cut")
    # what a writer killed between write and rename leaves behind
    (tmp_path / "cut" / ".lossylearn-run.json.x1.tmp").write_bytes(b"{half")
    (tmp_path / "cut" / "shards" / ".shard-00003.parquet.x2.tmp").write_bytes(b"PAR1")
    lossylearn.compress(**kw, out=tmp_path / "cut", resume=True)
    assert store_bytes(tmp_path / "cut") == store_bytes(tmp_path / "full")
    assert not (tmp_path / "cut" / RUN_STATE).exists()
    assert read_clean_stats(tmp_path / "cut") == read_clean_stats(tmp_path / "full")


def test_resume_refuses_other_settings(tmp_path, mnist, monkeypatch):
    images, labels = mnist.split("train")
    import lossylearn.pipeline.runner as compress_module

    def die(task):
        raise KeyboardInterrupt

    monkeypatch.setattr(compress_module, "run_chunk", die)
    with pytest.raises(KeyboardInterrupt):
        lossylearn.compress(
            images=images[:400],
            labels=labels[:400],
            psnr=18,
            seed=1,
            chunk_size=100,
            out=tmp_path / "s",
            progress=False,
        )
    monkeypatch.undo()
    with pytest.raises(StoreError, match="different settings"):
        lossylearn.compress(
            images=images[:400],
            labels=labels[:400],
            psnr=12,
            seed=1,
            chunk_size=100,
            out=tmp_path / "s",
            resume=True,
            progress=False,
        )


KILL_SCRIPT = """
import sys, lossylearn
from lossylearn.data import load_dataset
x, y = load_dataset("mnist").split("train")
lossylearn.compress(images=x[:3000], labels=y[:3000], psnr=16, seed=4, chunk_size=100,
                    match="image", out=sys.argv[1], progress=False)
"""


def test_sigkill_midway_then_resume(tmp_path):
    """A real kill -9 part-way: nothing open_store accepts, and --resume gives the same bytes."""
    cut = tmp_path / "cut"
    kill_after_shards(KILL_SCRIPT, cut, 3, timeout=120)
    assert not (cut / "manifest.json").exists()
    with pytest.raises(StoreError):
        open_store(cut)
    x, y = load_dataset("mnist").split("train")
    kw = dict(
        images=x[:3000],
        labels=y[:3000],
        psnr=16,
        seed=4,
        chunk_size=100,
        match="image",
        progress=False,
    )
    lossylearn.compress(**kw, out=cut, resume=True)
    lossylearn.compress(**kw, out=tmp_path / "full")
    assert store_bytes(cut) == store_bytes(tmp_path / "full")


def test_corrupt_shard_is_detected(tmp_path, mnist):
    images, labels = mnist.split("train")
    out = tmp_path / "s"
    lossylearn.compress(images=images[:20], labels=labels[:20], psnr=20, out=out, progress=False)
    shard = out / "shards" / "shard-00000.parquet"
    data = bytearray(shard.read_bytes())
    data[len(data) // 2] ^= 0xFF
    shard.write_bytes(bytes(data))
    with pytest.raises(StoreError, match="checksum"):
        open_store(out)


def test_lcon_transform_matches_the_store_path(tmp_path, mnist):
    """The in-memory transform (used by the studies on test sets) gives exactly what a store of the
    same images, seed and quality decodes to."""
    from lossylearn.codecs import get_codec

    images, labels = mnist.split("test")
    m = lossylearn.compress(
        images=images[:40], labels=labels[:40], psnr=20, codec="jpeg", seed=2, chunk_size=64,
        out=tmp_path / "s", progress=False,
    )  # fmt: skip
    store = open_store(tmp_path / "s")
    stored, _ = store.arrays()
    batch = lcon_transform(
        images[:40][store.indices], spec=m.noise_spec, codec=get_codec("jpeg"),
        quality=m.codec["quality"], seed=2, stream=0,
    )  # fmt: skip
    assert np.array_equal(batch.reconstructed, stored)
    assert batch.shared_header_bytes == m.stats.shared_header_bytes
    assert 8 * m.stats.stored_bytes == pytest.approx(batch.bits_per_pixel * 40 * 28 * 28)


def test_manifest_measures_the_noise_left_after_clipping(tmp_path):
    # Laplace b = 20: on mid-grey pixels clipping rarely bites, so the noise keeps MAE ~ b; on black
    # pixels every negative draw is clipped to 0, leaving MAE ~ b / 2 (what a matched codec must meet)
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, size=64)
    for level, expected in ((128, 20.0), (0, 10.0)):
        images = np.full((64, 16, 16, 1), level, dtype=np.uint8)
        lossylearn.compress(
            images=images, labels=labels, noise="laplace", b=20, codec="png",
            out=tmp_path / f"g{level}", seed=3, progress=False, warn=lambda _: None,
        )  # fmt: skip
        clean = read_clean_stats(tmp_path / f"g{level}")
        assert clean.mae_noisy_to_clean == pytest.approx(expected, rel=0.05)
        assert clean.mse_noisy_to_clean == pytest.approx(2 * 20.0**2 if level else 20.0**2, rel=0.1)


def test_match_noise_effective_targets_the_noise_left_after_clipping(tmp_path, mnist):
    images, labels = mnist.split("train")
    kw = dict(images=images[:300], labels=labels[:300], noise="laplace", psnr=11.9, codec="jpeg",
              match_noise="effective", progress=False, warn=lambda _: None)  # fmt: skip
    m = lossylearn.compress(out=tmp_path / "eff", seed=0, **kw)
    assert m.codec["target_basis"] == "effective"
    # estimated from the stored noisy images alone, it agrees with the clean-data measurement
    clean = read_clean_stats(tmp_path / "eff")
    assert m.codec["target_distortion"] == pytest.approx(clean.mae_noisy_to_clean, rel=0.03)
    assert m.codec["target_distortion"] < 0.6 * m.noise["b"]
    # unseeded too: the estimate comes from chunk 0's stored noisy images themselves
    u = lossylearn.compress(out=tmp_path / "unseeded", seed=None, **kw)
    assert u.codec["target_basis"] == "effective" and u.has_guarantee
    assert u.codec["target_distortion"] == pytest.approx(m.codec["target_distortion"], rel=0.05)
    with pytest.raises(LossylearnError, match="target basis"):
        lossylearn.compress(out=tmp_path / "bad", seed=0, **{**kw, "match_noise": "typical"})


def test_the_main_job_keeps_its_bytes(tmp_path):
    """The README's main job with --seed 0 decodes to exactly what it did before the redesign
    (pinned from lossylearn at commit 25ef18b): noise, order, codec and quality search unchanged."""
    import hashlib

    store_dir = tmp_path / "s"
    lossylearn.compress(
        dataset="mnist", noise="gaussian", psnr=20, codec="jpeg", seed=0, out=store_dir,
        progress=False,
    )  # fmt: skip
    s = open_store(store_dir)
    x, y = s.arrays()
    order = np.argsort(s.indices)
    digest = hashlib.sha256(x[order].tobytes() + y[order].astype(np.int64).tobytes()).hexdigest()
    assert digest == "08c8886bcc3950e253184fc7d763aa00026008f2bd2b98eb94cfabef43e6724e"
    payloads = hashlib.sha256(b"".join(s.payload(i) for i in range(len(s)))).hexdigest()
    assert payloads == "d9e1a7817ad693a2502afc0342d9be864dd2e7691ddf5068cee6e4778afc5ffb"


def test_manifest_sections_round_trip_typed(psnr20, tmp_path):
    from lossylearn.privacy import PrivacyGuarantee
    from lossylearn.store.manifest import Manifest

    out, m = psnr20
    assert Manifest.from_dict(m.to_dict()) == m
    assert Manifest.from_dict(json.loads((out / "manifest.json").read_text())) == m
    spec = m.noise_spec
    assert spec.kind == "gaussian" and spec.scale == pytest.approx(25.5)
    assert type(spec).from_dict(spec.to_dict()) == spec
    assert m.guarantee is None  # seeded
    would = m.unseeded_guarantee
    assert would is not None and PrivacyGuarantee.from_dict(would.to_dict()) == would
    x, y = mnist_small()
    u = lossylearn.compress(images=x, labels=y, psnr=20, out=tmp_path / "u", progress=False)
    g = u.guarantee
    assert g is not None and g.unit == "pixel" and g.epsilon == u.privacy["epsilon"]


def mnist_small():
    x, y = load_dataset("mnist").split("train")
    return x[:64], y[:64]
