"""End-to-end run of ``lossylearn study urdc`` (the sub-app) on a tiny quick profile."""

from __future__ import annotations

import json
import math
from pathlib import Path

from typer.testing import CliRunner

from lossylearn.cli import app as root
from lossylearn.cli.study import urdc_app as app

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
    for r in rows:
        for key in ("mse", "ce", "accuracy", "w1", "entropy_bits"):
            assert math.isfinite(r[key]), (key, r)
        assert 0 < r["mse"] < 0.5 and 0 <= r["accuracy"] <= 1
        assert r["entropy_bits"] <= r["rate_bits"] + 1e-9
        # the stored payload is within one byte of the nominal rate for the 120 test images
        assert 0 <= r["stored_bits_per_image"] - r["rate_bits"] < 8 / 120
        assert (out / "models" / r["model"] / "config.json").is_file()
    assert doc["penalties"] and doc["classifier"]["test_accuracy"] > 0
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
    for fig in ("fig_rdc.png", "fig_rdp.png", "fig_rdc_rates.png"):
        assert (out / fig).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    # a rerun with the same settings reloads every model and reproduces the rows exactly
    again = runner.invoke(app, [*TINY, "--out", str(out)])
    assert again.exit_code == 0, again.output
    assert json.loads((out / "results.json").read_text())["rows"] == rows


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
