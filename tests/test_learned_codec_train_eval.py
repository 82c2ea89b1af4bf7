"""Learned codec: lambda search, BD-rate, evaluation rows, and the ``codec`` CLI."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from learned_codec_support import TINY, mnist, one_thread, tiny_checkpoint
from typer.testing import CliRunner

from lossylearn.cli import app as root
from lossylearn.cli.codec import app
from lossylearn.codecs.learned.checkpoint import load_checkpoint
from lossylearn.codecs.learned.codec import LearnedCodec
from lossylearn.codecs.learned.evaluate import bd_rate, evaluate, write_evaluation
from lossylearn.codecs.learned.fitting import (
    _next_lambda,
    fit_target,
    initial_lambda,
    train_codec,
)
from lossylearn.codecs.learned.train import CodecTrainConfig as TrainConfig
from lossylearn.errors import CodecError


@pytest.fixture(autouse=True)
def _one_thread():
    with one_thread():
        yield


def _curve(scale: float, psnrs: np.ndarray) -> list[tuple[float, float]]:
    return [(scale * 0.05 * math.exp(p / 8.0), float(p)) for p in psnrs]


def test_bd_rate_closed_forms() -> None:
    psnr = np.arange(20.0, 41.0, 4.0)
    value, span = bd_rate(_curve(1.0, psnr), _curve(0.5, psnr))
    assert value == pytest.approx(-50.0, abs=1e-6) and span == (20.0, 40.0)
    assert bd_rate(_curve(1.0, psnr), _curve(1.0, psnr))[0] == pytest.approx(0.0, abs=1e-9)
    # log-rate linear in PSNR: a constant factor on a partly overlapping range is still exact
    value, span = bd_rate(_curve(1.0, psnr), _curve(1.3, psnr + 10.0))
    assert value == pytest.approx(30.0, abs=1e-6) and span == (30.0, 40.0)
    # points that spend more bits for less PSNR are not on the curve and do not count
    noisy = _curve(0.5, psnr) + [(100.0, 21.0)]
    assert bd_rate(_curve(1.0, psnr), noisy)[0] == pytest.approx(-50.0, abs=1e-6)
    assert bd_rate(_curve(1.0, psnr), _curve(1.0, psnr + 30.0)) == (None, None)
    assert bd_rate(_curve(1.0, psnr), _curve(1.0, psnr[:1])) == (None, None)


def test_lambda_search_steps() -> None:
    assert initial_lambda("mse", 100.0) == pytest.approx(1.0 / (2.0 * math.log(2.0) * 100.0))
    assert initial_lambda("mae", 10.0) == pytest.approx(1.0 / (math.log(2.0) * 10.0))
    with pytest.raises(CodecError):
        initial_lambda("mse", 0.0)
    # D = 50 / lambda: one secant step with the default slope -1 lands on the answer
    new = _next_lambda(1.0, 50.0, 10.0, [(1.0, 50.0, None)], lo=(1.0, 50.0), hi=None)  # type: ignore[list-item]
    assert new == pytest.approx(5.0)
    # until the target is bracketed, steps are at least a factor of 2
    new = _next_lambda(1.0, 50.0, 45.0, [(1.0, 50.0, None)], lo=(1.0, 50.0), hi=None)  # type: ignore[list-item]
    assert new == pytest.approx(2.0)
    # bracketed, the slope is measured: D = 50 / lambda^2 -> lambda = sqrt(2.5) for D = 20
    tried = [(1.0, 50.0, None), (2.0, 12.5, None)]
    new = _next_lambda(2.0, 12.5, 20.0, tried, lo=(1.0, 50.0), hi=(2.0, 12.5))  # type: ignore[arg-type]
    assert new == pytest.approx(math.sqrt(2.5))
    # a step outside the bracket falls back to its geometric middle
    new = _next_lambda(2.0, 12.5, 20.0, tried, lo=(1.9, 21.0), hi=(2.0, 12.5))  # type: ignore[arg-type]
    assert new == pytest.approx(math.sqrt(1.9 * 2.0))


def test_fit_target_keeps_every_rung_and_reports() -> None:
    train, test = mnist()
    config = TrainConfig(distortion="mae", epochs=1, batch_size=16, lr=5e-3, max_steps=5)
    fit = fit_target(
        train[:128], TINY["factorized"], 25.0, config, validation=test[:32], max_rounds=2
    )
    assert 1 <= len(fit.rungs) <= 2 and len(fit.trace) == len(fit.rungs)
    assert [r.lmbda for r in fit.rungs] == sorted(r.lmbda for r in fit.rungs)
    assert fit.trace[0]["lmbda"] == pytest.approx(initial_lambda("mae", 25.0))
    best = fit.rungs[fit.best].info["validation"]["mae"]
    assert best == min((t["mae"] for t in fit.trace), key=lambda d: abs(d - 25.0))
    assert fit.reached == (abs(best - 25.0) <= 0.05 * 25.0) and "25" in fit.message
    with pytest.raises(CodecError, match="either lambdas or a target"):
        train_codec(train[:8], model_config=TINY["factorized"], config=config)


def test_evaluation_counts_real_bytes_and_writes_results(tmp_path: Path) -> None:
    codec = LearnedCodec(tiny_checkpoint("factorized"))
    _, test = mnist()
    images = test[:16]
    result = evaluate(
        codec, images, baselines=("jpeg",), baseline_qualities=(5, 50, 95), dataset="mnist"
    )
    learned = [r for r in result.rows if r.codec == "learned"]
    jpeg = [r for r in result.rows if r.codec == "jpeg"]
    assert [r.quality for r in learned] == [0, 1] and [r.quality for r in jpeg] == [5, 50, 95]
    for r in learned:
        payloads = codec.encode_batch(images, r.quality)
        assert r.payload_bytes == sum(map(len, payloads)) and r.shared_header_bytes == 0
        assert r.bpp == pytest.approx(8 * r.payload_bytes / (16 * 784))
        assert r.bpp_estimated is not None and r.lmbda == codec.lmbda(r.quality)
    for r in jpeg:
        assert r.shared_header_bytes > 0 and r.bpp_estimated is None
        assert r.bpp == pytest.approx(8 * (r.payload_bytes + r.shared_header_bytes) / (16 * 784))
    assert jpeg[0].psnr < jpeg[-1].psnr
    assert set(result.bd_rate) == {"jpeg"}
    json_path, png_path = write_evaluation(result, tmp_path / "eval")
    saved = json.loads(json_path.read_text())
    assert len(saved["rows"]) == 5 and "jpeg" in saved["bd_rate"]
    assert png_path.stat().st_size > 1000


def test_cli_train_and_eval(tmp_path: Path) -> None:
    runner = CliRunner()
    ck = tmp_path / "ck"
    common = ["--dataset", "mnist", "--limit", "64", "--epochs", "1", "--max-steps", "3",
              "--no-progress", "--threads", "1"]  # fmt: skip
    res = runner.invoke(
        app, ["train", *common, "--lmbda", "0.01", "--lmbda", "0.001", "--out", str(ck)]
    )
    assert res.exit_code == 0, res.output
    assert (ck / "config.json").is_file() and (ck / "weights.pt").is_file()
    cfg = json.loads((ck / "config.json").read_text())
    assert [r["lmbda"] for r in cfg["rungs"]] == [0.001, 0.01] and cfg["model"]["in_channels"] == 1
    res = runner.invoke(root, ["codec", "train", *common, "--lmbda", "0.01", "--out", str(ck)])
    assert res.exit_code == 2 and "already holds" in res.output

    noisy = tmp_path / "noisy"
    res = runner.invoke(
        app, ["train", *common, "--noise", "laplace", "--noise-scale", "30", "--max-rounds", "1",
              "--out", str(noisy)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    loaded = load_checkpoint(noisy)
    assert loaded.distortion == "mae" and loaded.meta["target"]["value"] == 30.0
    assert loaded.meta["noise"]["kind"] == "laplace"

    out = tmp_path / "eval"
    res = runner.invoke(
        app, ["eval", "--checkpoint", str(ck), "--dataset", "mnist", "--limit", "8",
              "--baselines", "jpeg", "--baseline-qualities", "10,50,90", "--out", str(out)],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    saved = json.loads((out / "results.json").read_text())
    assert {r["codec"] for r in saved["rows"]} == {"learned", "jpeg"} and "jpeg" in saved["bd_rate"]
    assert (out / "rd.png").is_file() and "BD-rate vs jpeg" in res.output

    res = runner.invoke(
        root,
        ["codec", "eval", "--checkpoint", str(tmp_path), "--dataset", "mnist", "--out", str(out)],
    )
    assert res.exit_code == 2 and "not a learned-codec checkpoint" in res.output
