"""End-to-end LCoN study: the quick profile on embedded MNIST, and a CelebA-layout fixture."""

from __future__ import annotations

import csv
import json
from html import escape as html_escape
from pathlib import Path

import pytest
from fixtures import make_celeba_tree
from typer.testing import CliRunner

from lossylearn.studies.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lcon") / "quick"
    res = runner.invoke(
        app, ["--profile", "quick", "--out", str(out), "--threads", "1", "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    return out


@pytest.mark.slow
def test_quick_profile_results_cover_schemes_test_sets_and_calibration(quick: Path) -> None:
    res = json.loads((quick / "results.json").read_text())
    assert res["complete"] is True and not (quick / "results.partial.json").exists()
    rows = res["rows"]
    noise = [r for r in rows if r["sweep"] == "noise"]
    assert {r["train"] for r in noise} == {"clean", "noisy", "lcon"}
    assert {r["test"] for r in noise} == {"clean", "noisy", "lcon", "fgsm", "lcon-fgsm", "pgd"}
    assert sorted({r["psnr"] for r in noise}) == [10.1, 16.1, 22.1]
    assert {r["epsilon"] for r in noise if r["test"] == "fgsm"} == {0.05, 0.1, 0.2}
    for r in rows:
        for key in ("psnr", "train", "test", "accuracy", "n_train", "train_bits", "seed", "sweep"):
            assert key in r
        assert 0.0 <= r["accuracy"] <= 1.0

    # Storage calibrated within 15% at each noise level; LCoN keeps its whole store.
    stores = {s["psnr"]: s for s in res["stores"] if s["sweep"] == "noise"}
    for cal in res["calibration"]:
        budget = {v["budget_bits"] for v in cal["schemes"].values()}
        assert len(budget) == 1
        for v in cal["schemes"].values():
            assert v["train_bits"] <= v["budget_bits"]
            assert v["relative_gap"] < 0.15, cal
        assert cal["schemes"]["lcon"]["train_bits"] == 8 * stores[cal["psnr"]]["stored_bytes"]
        # Noisy images are the most expensive losslessly: the noisy baseline gets the fewest examples.
        n = {k: v["n_train"] for k, v in cal["schemes"].items()}
        assert n["noisy"] < n["clean"] <= n["lcon"] == 1000
    for r in noise:
        assert (
            r["n_train"]
            == next(c for c in res["calibration"] if c["psnr"] == r["psnr"])["schemes"][r["train"]][
                "n_train"
            ]
        )

    # Learning happened: at the highest PSNR every scheme beats chance (10%) by far on clean digits.
    top = {r["train"]: r["accuracy"] for r in noise if r["psnr"] == 22.1 and r["test"] == "clean"}
    assert min(top.values()) > 0.5, top
    # FGSM hurts: accuracy falls with epsilon for the clean-trained model.
    fg = {
        r["epsilon"]: r["accuracy"]
        for r in noise
        if r["psnr"] == 22.1 and r["train"] == "clean" and r["test"] == "fgsm"
    }
    assert fg[0.2] < top["clean"]

    dist = [r for r in rows if r["sweep"] == "distortion"]
    assert sorted({r["target_distortion"] for r in dist}) == [400.0, 1600.0, 6400.0]
    assert {r["train"] for r in dist} == {"lcon"}
    assert {c["name"] for c in res["claims"]} == {
        "lcon_beats_noisy",
        "lcon_close_to_clean",
        "lcon_more_robust_fgsm",
        "fig3_peak_at_matched",
    }

    with (quick / "results.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == len(rows)


@pytest.mark.slow
def test_quick_profile_writes_figures_and_self_contained_report(quick: Path) -> None:
    figs = {p.name for p in (quick / "figures").glob("*.png")}
    for name in ("fig2a_clean.png", "fig2b_noisy.png", "fig2c_lcon.png", "fig2d_fgsm.png", "fig3_distortion.png",
                 "samples_noise.png", "samples_distortion.png"):  # fmt: skip
        assert name in figs
    html = (quick / "report.html").read_text()
    assert html.count("data:image/png;base64,") >= 7
    assert 'src="http' not in html and 'href="http' not in html and "<script" not in html
    assert "lossylearn study lcon --profile quick" in html
    assert "differential" in html.lower() or "privacy" in html.lower()
    res = json.loads((quick / "results.json").read_text())
    assert html_escape(res["stores"][0]["privacy"]["statement"]) in html


@pytest.mark.slow
def test_rerun_with_other_settings_is_refused(quick: Path) -> None:
    res = runner.invoke(
        app, ["--profile", "quick", "--out", str(quick), "--psnr", "12", "--no-progress"]
    )
    assert res.exit_code == 2
    assert "different settings" in res.output


@pytest.mark.slow
def test_celeba_layout_fixture_runs_end_to_end(tmp_path: Path) -> None:
    make_celeba_tree(tmp_path / "celeba", n=24)
    out = tmp_path / "out"
    res = runner.invoke(
        app,
        ["--profile", "quick", "--dataset", "celeba", "--data-dir", str(tmp_path / "celeba"), "--out", str(out),
         "--psnr", "16.1", "--sweep-factors", "0.5,1,2", "--epochs", "1", "--no-calibrate", "--threads", "1", "--no-progress"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads((out / "results.json").read_text())
    assert data["dataset"]["name"] == "celeba"
    assert data["dataset"]["image_shape"] == [32, 32, 3]
    assert data["model"]["name"] == "resnet18"
    assert {r["train"] for r in data["rows"]} == {"clean", "noisy", "lcon"}
    assert all(
        r["n_train"] == 12 and r["n_test"] == 6 for r in data["rows"] if r["sweep"] == "noise"
    )
    assert (out / "report.html").is_file()


@pytest.mark.slow
def test_laplace_with_learned_codec_trains_it_on_a_held_out_split(tmp_path: Path) -> None:
    out = tmp_path / "lap"
    res = runner.invoke(
        app,
        ["--profile", "quick", "--noise", "laplace", "--codec", "learned", "--out", str(out),
         "--n-train", "400", "--n-test", "100", "--psnr", "22.1", "--epochs", "1", "--adv-n-test", "40",
         "--fgsm-eps", "0.1", "--match-noise", "effective", "--threads", "1", "--no-progress"],
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    data = json.loads((out / "results.json").read_text())
    assert data["dataset"]["n_codec_train"] == 80 and data["dataset"]["n_train_pool"] == 320
    assert data["config"]["distortion_sweep"] is False  # Fig. 4 has no sweep
    [rec] = data["codec_training"]
    assert rec["metric"] == "mae" and rec["train_images"] + rec["validation_images"] == 80
    assert rec["rounds"] and not rec["reused"]
    ckpt = json.loads((out / rec["path"] / "config.json").read_text())
    assert ckpt["distortion"] == "mae" and ckpt["meta"]["target"]["value"] == rec["target"]
    [store] = data["stores"]
    assert store["metric"] == "mae" and store["target_distortion"] == rec["target"]
    # matched to the noise left after clipping on black digits' background: about b / 2
    assert 0.4 * store["noise"]["b"] < rec["target"] < 0.65 * store["noise"]["b"]
    manifest = json.loads((out / store["path"] / "manifest.json").read_text())
    assert manifest["codec"]["name"] == "learned"
    # no classifier saw the codec's 80 images: every scheme trains on at most the other 320
    assert max(r["n_train"] for r in data["rows"]) <= 320
    assert "Learned codecs" in (out / "report.html").read_text()
