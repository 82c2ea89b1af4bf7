"""``study private`` end to end on a tiny profile: rows, summary, figure, report, no weights."""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path

import pytest

from lossylearn.errors import LossylearnError
from lossylearn.studies.private.profiles import PROFILES, get_profile
from lossylearn.studies.private.run import run_private_study
from lossylearn.universal.train import TrainProfile, train_universal

ROW_FIELDS = {"method", "epsilon", "delta", "unit", "label_epsilon", "accuracy", "bits_per_image",
              "seed", "decoder", "classifier", "total_epsilon"}  # fmt: skip


@pytest.fixture(scope="module")
def result(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("private")
    u = root / "U"
    train_universal(u, profile=TrainProfile("tiny", latent_dim=3, levels=4, n_public=300,
                                            epochs=1, classifier_epochs=1, lambda_c=0.05))  # fmt: skip
    prof = replace(PROFILES["quick"], epsilons=(8.0, math.inf), rr_epsilons=(8.0,),
                   classifier_epochs=1, test_limit=200, private_limit=150, decoders=("mse", "ce"))  # fmt: skip
    out = root / "out"
    run_private_study(prof, out=out, checkpoint=u, command="test")
    return out, json.loads((out / "results.json").read_text())


def test_rows_cover_every_method_and_label_mode(result):
    out, doc = result
    rows = doc["rows"]
    assert all(ROW_FIELDS <= set(r) and r["unit"] == "image" for r in rows)
    assert {r["method"] for r in rows} == {"latent-lcon", "latent-noisy", "pixel-lcon"}
    clear = [r for r in rows if r["label_epsilon"] is None]
    rr = [r for r in rows if r["label_epsilon"] is not None]
    assert {r["epsilon"] for r in clear} == {8.0, None}
    assert rr and all(r["total_epsilon"] == pytest.approx(8.0) for r in rr)
    assert all(r["epsilon"] + r["label_epsilon"] == pytest.approx(8.0) for r in rr)
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in rows)
    lcon = [r for r in rows if r["method"] == "latent-lcon" and r["epsilon"] == 8.0]
    assert {r["decoder"] for r in lcon} == {"mse", "ce", None}  # two decoders + the latent MLP
    assert all(r["bits_per_image"] < 3 * 8 for r in lcon)  # d = 3 latents on a coarse grid
    noisy = [r for r in rows if r["method"] == "latent-noisy"]
    assert all(r["bits_per_image"] == 96.0 for r in noisy)  # float32 latents
    # no noise: pixel-lcon is the clean private set, i.e. the ceiling
    ceiling = doc["meta"]["references"]["ceiling_clean_private"]
    clean_pixel = [r for r in clear if r["method"] == "pixel-lcon" and r["epsilon"] is None]
    assert clean_pixel[0]["accuracy"] == pytest.approx(ceiling)
    assert doc["meta"]["private_images"] == 150


def test_outputs_hold_a_report_and_no_weights(result):
    out, doc = result
    assert (out / "report.html").read_text().count("<table>") == 1
    assert (out / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not [p for p in out.rglob("*") if p.suffix in (".pt", ".parquet", ".bin")]
    assert doc["summary"] and all(s["n_seeds"] == 1 for s in doc["summary"])


def test_unknown_profile_is_one_error():
    with pytest.raises(LossylearnError, match="unknown profile"):
        get_profile("huge")
