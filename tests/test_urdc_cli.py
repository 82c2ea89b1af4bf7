"""End-to-end run of ``lossylearn study urdc`` (the sub-app) on a tiny quick profile."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from lossylearn.cli import app as root
from lossylearn.cli.study import urdc_app as app
from lossylearn.data import load_dataset
from lossylearn.learn import build_model, images_to_tensor
from lossylearn.studies.urdc.metrics import (
    classifier_scores,
    codec_metrics,
    critic_gap,
    estimate_w1,
    receive,
    transmit,
)
from lossylearn.studies.urdc.models import CLASSIFIER, Critic, Encoder, NetConfig, build_decoder
from lossylearn.studies.urdc.quantizer import DitheredQuantizer

TINY = [
    "--profile",
    "quick",
    "--limit",
    "120",
    "--epochs",
    "1",
    "--w1-steps",
    "3",
    "--no-progress",
    "--threads",
    "1",
]


def _load(module: torch.nn.Module, path: Path) -> torch.nn.Module:
    module.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return module.eval()


def _check_against_saved_models(out: Path, doc: dict) -> None:
    """Every number of results.json is what the saved weights give again on the same test split:
    the classifier's scores, and each row's metrics through a fresh bitstream (W1 from a fresh
    critic with the study's seed, equal up to float rounding)."""
    ds = load_dataset("mnist", None, limit=120)
    x_tr, x_te = images_to_tensor(ds.train_images), images_to_tensor(ds.test_images)
    y_te = torch.from_numpy(ds.test_labels)
    classifier = _load(build_model(CLASSIFIER), out / "models" / "classifier" / "weights.pt")
    ce, acc = classifier_scores(classifier, x_te, y_te)
    assert doc["classifier"] == {"test_ce": pytest.approx(ce), "test_accuracy": acc}
    for r in doc["rows"]:
        folder = out / "models" / r["model"]
        config = json.loads((folder / "config.json").read_text())
        net = NetConfig.from_dict(config["net"])
        enc_path = folder / config.get("encoder_weights", "encoder.pt")
        enc = _load(Encoder(net.latent_dim, net.encoder_width), enc_path)
        dec = _load(build_decoder(net), folder / "decoder.pt")
        q = DitheredQuantizer(net.latent_dim, net.levels)
        data, size = transmit(enc, q, x_te, seed=0)  # the study's dither seed is its --seed
        rec, symbols = receive(data, dec)
        rec_tr, _ = receive(transmit(enc, q, x_tr, seed=0)[0], dec)
        w1 = estimate_w1(x_tr, rec_tr, x_te, rec, steps=3, seed=7)  # --w1-steps 3, seed + 7
        # a decoder trained with a W1 term also reports its own training critic's test gap
        trained_critic = None
        if (folder / "critic.pt").is_file():
            trained_critic = critic_gap(_load(Critic(), folder / "critic.pt"), x_te, rec)
        assert (trained_critic is None) == (r["lambda_p"] == 0), r["model"]
        m = codec_metrics(
            recon=rec,
            originals=x_te,
            labels=y_te,
            symbols=symbols,
            size=size,
            quantizer=q,
            classifier=classifier,
            w1=w1,
            w1_training_critic=trained_critic,
        ).to_dict()
        assert {k: r[k] for k in m} == {
            **{k: v if v is None else pytest.approx(v, rel=1e-6) for k, v in m.items()},
            "w1": pytest.approx(w1, rel=1e-3),
            "w1_training_critic": None
            if trained_critic is None
            else pytest.approx(trained_critic, rel=1e-3, abs=1e-5),
        }, r["model"]
        assert r["rate_bits"] == net.latent_dim * math.log2(net.levels)


def test_quick_profile_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "urdc"
    runner = CliRunner()
    res = runner.invoke(app, [*TINY, "--out", str(out)])
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "results.json").read_text())
    rows = doc["rows"]
    at_rate = [r for r in rows if abs(r["rate_bits"] - 3 * math.log2(3)) < 1e-9]
    assert {r["mode"] for r in at_rate} == {"end-to-end", "universal"}
    assert {r["objective"] for r in at_rate} == {"classification", "perception"}
    _check_against_saved_models(out, doc)
    for r in rows:
        assert r["entropy_bits"] <= r["rate_bits"] + 1e-9
        # the stored payload is within one byte of the nominal rate for the 120 test images
        assert 0 <= r["stored_bits_per_image"] - r["rate_bits"] < 8 / 120
        assert (out / "models" / r["model"] / "config.json").is_file()
    assert doc["penalties"] and doc["classifier"]["test_accuracy"] > 0
    # the run says how to repeat it, and with what
    assert doc["meta"]["command"].startswith("lossylearn study urdc --profile quick --out ")
    assert (
        doc["meta"]["versions"]["torch"]
        and "urdc --profile quick" in (out / "report.html").read_text()
    )
    universal = [r for r in rows if r["mode"] == "universal"]
    assert {r["encoder"] for r in universal} >= {"e2e-3x3-c0.015-p0", "shared-3x3-c0-p0+c0.015-p0"}
    # configuration JSON next to every set of weights
    for weights in (out / "models").rglob("*.pt"):
        assert (weights.parent / "config.json").is_file()
    cfg = json.loads((out / "models" / "e2e-3x3-c0-p0.015" / "config.json").read_text())
    assert cfg["net"]["latent_dim"] == 3 and cfg["objectives"] == [
        {"lambda_c": 0.0, "lambda_p": 0.015}
    ]
    page = (out / "report.html").read_text()
    assert "data:image/png;base64," in page and "src='http" not in page
    for fig in ("fig_rdc.png", "fig_rdp.png", "fig_rdc_rates.png", "fig_penalty.png"):
        assert (out / fig).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # a rerun with the same settings reloads every model and reproduces the rows exactly
    again = runner.invoke(app, [*TINY, "--out", str(out)])
    assert again.exit_code == 0, again.output
    again_doc = json.loads((out / "results.json").read_text())
    assert again_doc["rows"] == rows
    # and keeps the first run's time beside its own
    assert doc["meta"]["earlier_runs_elapsed_s"] == []
    assert again_doc["meta"]["earlier_runs_elapsed_s"] == [doc["meta"]["elapsed_s"]]


def test_user_errors_are_one_line(tmp_path: Path) -> None:
    runner = CliRunner()
    # user errors reach the root command's one error path (lossylearn.cli.main)
    res = runner.invoke(root, ["study", "urdc", "--profile", "huge", "--out", str(tmp_path / "x")])
    assert res.exit_code == 2
    assert "unknown profile 'huge'; known profiles: quick, paper" in res.output
    assert "Traceback" not in res.output
    args = ["--profile", "quick", "--decoder", "resnet", "--out", str(tmp_path / "y")]
    res = runner.invoke(root, ["study", "urdc", *args])
    assert res.exit_code == 2 and "unknown decoder" in res.output
