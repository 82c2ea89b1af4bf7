"""``lossylearn audit``: planted stores (sigma 0.5 is re-identified, sigma 5000 is not), the
leakage bound's two sides, the membership AUC, and the owner-side rules (never into the store)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import lossylearn
from lossylearn.audit import AuditConfig, CleanPool, audit, audit_store
from lossylearn.audit.bound import leakage_bound
from lossylearn.audit.linkage import Ranking
from lossylearn.audit.membership import auc
from lossylearn.cli.main import app
from lossylearn.errors import LossylearnError
from lossylearn.store import open_store
from lossylearn.store.owner import OwnerFile, owner_path

N = 300  # the first 300 embedded MNIST training digits are stored; the pool adds 300 distractors
FAST = AuditConfig(
    pool=2 * N, progress=False, feature_epochs=2, membership_epochs=4, membership_n=200
)


@pytest.fixture(scope="module")
def stores(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("audit")
    out = {}
    for name, sigma in (("weak", 0.5), ("saturated", 5000.0)):
        out[name] = root / name
        lossylearn.compress(
            dataset="mnist", limit=N, noise="gaussian", sigma=sigma, codec="png",
            out=out[name], seed=3, allow_weak_noise=True, progress=False, workers=1,
        )  # fmt: skip
    out["jpeg"] = root / "jpeg"
    lossylearn.compress(
        dataset="mnist", limit=N, noise="gaussian", psnr=16.1, codec="jpeg", out=out["jpeg"],
        seed=3, progress=False, workers=1,
    )  # fmt: skip
    return out


def _files(d: Path) -> dict[str, bytes]:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def test_sigma_half_png_store_is_reidentified(stores: dict[str, Path], tmp_path: Path) -> None:
    before = _files(stores["weak"])
    r = audit(stores["weak"], tmp_path / "a", config=FAST)
    reid = r.doc["reidentification"]
    assert reid["pool_size"] == 2 * N and reid["n_queries"] == N
    assert reid["top1"] >= 0.95
    names = {a["name"] for a in reid["attacks"]}
    assert names == {"pixel-nn", "denoised-nn", "likelihood", "feature-nn"}
    # the audit is the owner's: files beside the store, nothing into it
    assert _files(stores["weak"]) == before
    doc = json.loads((tmp_path / "a" / "audit.json").read_text())
    assert doc["format"] == "lossylearn-audit/1" and "clean" in doc["warning"]
    assert (tmp_path / "a" / "audit.html").read_text().count("<img") >= 2
    assert doc["pool"]["fingerprint_checked"] is True


def test_saturating_noise_sits_near_chance(stores: dict[str, Path]) -> None:
    store = open_store(stores["saturated"])
    r = audit_store(store, _pool(store), FAST)
    reid = r.doc["reidentification"]
    chance = reid["chance_top1"]
    # 300 queries at chance 1/600: 0.5 expected top-1 hits, 2.5 top-5 hits per attack
    for a in reid["attacks"]:
        assert a["top1"] <= 8 * chance, a
        assert a["top5"] <= 4 * 5 * chance, a
    lb = r.doc["leakage_bound"]
    assert lb["basis"] == "noise channel" and lb["bits_per_pixel"] < 1e-3


def _pool(store: object) -> CleanPool:
    from lossylearn.audit.pool import clean_pool_for_store

    return clean_pool_for_store(store, store.directory)  # type: ignore[attr-defined]


def test_leakage_bound_is_min_of_stored_bits_and_channel(stores: dict[str, Path]) -> None:
    for name in ("weak", "jpeg"):
        store = open_store(stores[name])
        clean = _pool(store).sources[store.indices]
        lb = leakage_bound(store.manifest, clean)
        assert lb.bits_per_pixel == min(lb.stored_bits_per_pixel, lb.channel_bits_per_pixel)
        assert lb.stored_bits_per_pixel == store.manifest.stats.bits_per_pixel
        var = clean.reshape(len(clean), -1).astype(np.float64).var(0)
        sigma = store.manifest.noise["sigma"]
        assert lb.channel_bits_per_pixel == pytest.approx(
            np.sum(0.5 * np.log2(1 + var / sigma**2)) / 784
        )
    # sigma 0.5: the channel would allow ~10 bits/pixel, the png bytes far fewer
    assert leakage_bound(open_store(stores["weak"]).manifest, clean).basis == "stored bits"


def test_auc_matches_pairwise_count_and_ranking_ties() -> None:
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 5, 40).astype(float), rng.integers(0, 5, 30).astype(float)
    pairs = (a[:, None] > b[None, :]).mean() + 0.5 * (a[:, None] == b[None, :]).mean()
    assert auc(a, b) == pytest.approx(pairs)
    assert auc(np.array([2.0, 3.0]), np.array([0.0, 1.0])) == 1.0
    r = Ranking(better=np.array([0, 0, 3]), tied=np.array([0, 1, 0]), best=np.zeros(3, int))
    assert r.topk(1) == pytest.approx((1 + 0.5 + 0) / 3)
    assert r.topk(4) == 1.0


def test_membership_auc_is_reported(stores: dict[str, Path]) -> None:
    store = open_store(stores["jpeg"])
    cfg = AuditConfig(progress=False, attacks=("pixel-nn",), membership=True, membership_epochs=3,
                      membership_n=150)  # fmt: skip
    mem = audit_store(store, _pool(store), cfg).doc["membership"]
    assert mem["n_members"] == mem["n_nonmembers"] == 150
    assert 0.0 <= mem["auc"] <= 1.0 and 0.0 <= mem["advantage"] <= 1.0
    assert mem["train_accuracy"] > 0.3  # it learned something: the attack has a target


def test_refusals(stores: dict[str, Path], tmp_path: Path) -> None:
    with pytest.raises(LossylearnError, match="inside the store"):
        audit(stores["jpeg"], stores["jpeg"] / "audit", config=FAST)
    with pytest.raises(LossylearnError, match="smaller than"):
        audit(stores["jpeg"], tmp_path / "x", config=AuditConfig(pool=10, progress=False))
    with pytest.raises(LossylearnError, match="unknown attack"):
        AuditConfig(attacks=("psychic",))
    # other clean data than the store's: the owner file's fingerprint refuses it
    copy = tmp_path / "copy"
    lossylearn.compress(dataset="mnist", limit=N, noise="gaussian", psnr=16.1, codec="png",
                        out=copy, seed=1, progress=False, workers=1)  # fmt: skip
    owner = OwnerFile.load(owner_path(copy))
    owner.data_sha256 = "0" * 64
    owner.save()
    with pytest.raises(LossylearnError, match="fingerprint"):
        audit(copy, tmp_path / "y", config=FAST)
    assert not (tmp_path / "y" / "audit.json").exists()


def test_cli_audit_and_inspect_link(stores: dict[str, Path], tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "cli"
    res = runner.invoke(app, ["audit", str(stores["jpeg"]), "--out", str(out), "--no-progress",
                              "--attacks", "pixel-nn,denoised-nn", "--queries", "100"])  # fmt: skip
    assert res.exit_code == 0, res.output
    assert "re-identified" in res.output and (out / "audit.json").is_file()
    doc = json.loads((out / "audit.json").read_text())
    assert doc["reidentification"]["n_queries"] == 100
    res = runner.invoke(app, ["inspect", str(stores["jpeg"]), "--grid", str(tmp_path / "g.png")])
    assert res.exit_code == 0 and "audit: top-1 re-identification" in res.output
    res = runner.invoke(app, ["audit", str(stores["jpeg"]), "--out", str(stores["jpeg"] / "a")])
    assert res.exit_code == 2 and "inside the store" in res.output
