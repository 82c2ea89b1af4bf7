"""End-to-end LCoN study: the quick profile on embedded MNIST, and a CelebA-layout fixture."""

from __future__ import annotations

import csv
import json
import math
import re
from html import escape as html_escape
from pathlib import Path

import pytest
from fixtures import make_celeba_tree
from typer.testing import CliRunner

from lossylearn.cli import app as root
from lossylearn.cli.study import lcon_app as app

runner = CliRunner()


@pytest.fixture(scope="module")
def quick(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lcon") / "quick"
    res = runner.invoke(
        app, ["--profile", "quick", "--out", str(out), "--threads", "1", "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    return out


def _manifest(out: Path, store: dict) -> dict:
    return json.loads((out / store["path"] / "manifest.json").read_text())


def _section(html: str, title: str) -> str:
    start = html.index(f"<h2>{title}</h2>")
    end = html.find("<h2>", start + 1)
    return html[start : end if end > 0 else len(html)]


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

    # Every store's figures are its manifest's, and so are the rows' bits and distortions.
    manifests = {s["name"]: _manifest(quick, s) for s in res["stores"]}
    for s in res["stores"]:
        m = manifests[s["name"]]
        assert s["bits_per_pixel"] == m["stats"]["bits_per_pixel"]
        assert s["stored_bytes"] == m["stats"]["stored_bytes"]
        assert 8 * m["stats"]["stored_bytes"] == round(
            m["stats"]["bits_per_pixel"] * 1000 * 28 * 28
        )
        for key in ("quality", "target_distortion", "achieved_distortion", "target_reached"):
            assert s[key] == m["codec"][key], key
        assert s["target_basis"] == m["codec"]["target_basis"]
        assert m["privacy"]["guarantee"] is False  # seeded study stores claim no guarantee
    stores = {s["psnr"]: s for s in res["stores"] if s["sweep"] == "noise"}
    sweep = {s["target_distortion"]: s for s in res["stores"] if s["sweep"] == "distortion"}
    for r in rows:
        s = stores[r["psnr"]] if r["sweep"] == "noise" else sweep[r["target_distortion"]]
        m = manifests[s["name"]]
        assert r["bits_per_pixel"] == m["stats"]["bits_per_pixel"]
        assert r["quality"] == m["codec"]["quality"]
        assert r["target_distortion"] == m["codec"]["target_distortion"]
        assert r["achieved_distortion"] == m["codec"]["achieved_distortion"]
        if r["train"] == "lcon":  # LCoN trains on its whole store: the store's own bytes
            assert r["train_bits"] == 8 * m["stats"]["stored_bytes"] and r["n_train"] == 1000
    # The one target rule: the nominal sigma^2 at every matched store, multiples of it elsewhere.
    for p, s in stores.items():
        assert s["target_basis"] == "nominal"
        assert math.isclose(s["target_distortion"], (255 * 10 ** (-p / 20)) ** 2, rel_tol=1e-9)
    assert res["sweep_matched_distortion"] == 1600.0
    assert {t: s["target_basis"] for t, s in sweep.items()} == {
        400.0: "given",
        1600.0: "nominal",
        6400.0: "given",
    }

    # Storage calibrated within 15% at each noise level; LCoN keeps its whole store, which sets
    # the budget; each baseline's kept prefix costs what its whole PNG set costs per image.
    for cal in res["calibration"]:
        lcon_bits = 8 * stores[cal["psnr"]]["stored_bytes"]
        assert cal["lcon_bits_per_pixel"] == stores[cal["psnr"]]["bits_per_pixel"]
        for v in cal["schemes"].values():
            assert v["budget_bits"] == lcon_bits
            assert v["train_bits"] <= v["budget_bits"]
            assert v["relative_gap"] < 0.15, cal
            assert math.isclose(v["relative_gap"], 1 - v["train_bits"] / lcon_bits, abs_tol=1e-12)
        assert cal["schemes"]["lcon"]["train_bits"] == lcon_bits
        for k in ("clean", "noisy"):
            v = cal["schemes"][k]
            kept_bpp = v["train_bits"] / (v["n_train"] * 28 * 28)
            assert abs(kept_bpp / cal["png_bits_per_pixel"][k] - 1) < 0.1, (k, cal)
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
        "fig3_matched_cheapest_without_loss",
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
    # The privacy section states plainly that the seeded stores carry no guarantee, and shows
    # each store's would-be epsilon and unit exactly as its manifest records them.
    privacy = _section(html, "Privacy")
    assert "carry no privacy guarantee" in privacy
    res = json.loads((quick / "results.json").read_text())
    for s in res["stores"]:
        p = _manifest(quick, s)["privacy"]
        assert p["guarantee"] is False
        g = p["if_unseeded"]
        [row] = re.findall(rf'<tr><td class="l">{re.escape(s["name"])}</td>.*?</tr>', privacy)
        assert "none (seeded)" in row
        assert f"<td>{g['epsilon']:.4g}</td>" in row, row
        assert f"<td>{g['unit']}</td>" in row and g["unit"] == "pixel"
        assert f"<td>{g['per_image']['epsilon']:.4g}</td>" in row
        assert html_escape(p["statement"]) in privacy


@pytest.mark.slow
def test_quick_profile_reproduces_the_committed_results(quick: Path) -> None:
    """results/lcon-quick/ holds this profile's committed run: the same settings, and accuracies
    within 3 points per (sweep, training scheme, test set), averaged over the grid (single models
    trained on 68 to 1,000 digits can move more than that between processors)."""
    committed = json.loads(
        (Path(__file__).resolve().parent.parent / "results" / "lcon-quick" / "results.json").read_text()
    )
    ours = json.loads((quick / "results.json").read_text())
    ignore = ("device", "threads", "workers", "progress")
    assert {k: v for k, v in ours["config"].items() if k not in ignore} == {
        k: v for k, v in committed["config"].items() if k not in ignore
    }

    def means(res: dict) -> dict[tuple[str, str, str], float]:
        groups: dict[tuple[str, str, str], list[float]] = {}
        for r in res["rows"]:
            groups.setdefault((r["sweep"], r["train"], r["test"]), []).append(r["accuracy"])
        return {k: sum(v) / len(v) for k, v in groups.items()}

    a, b = means(ours), means(committed)
    assert a.keys() == b.keys()
    off = {k: round(100 * (a[k] - b[k]), 1) for k in a if abs(a[k] - b[k]) > 0.03}
    assert not off, f"accuracy points off the committed run: {off}"


@pytest.mark.slow
def test_rerun_with_other_settings_is_refused(quick: Path) -> None:
    args = ["--profile", "quick", "--out", str(quick), "--psnr", "12", "--no-progress"]
    res = runner.invoke(root, ["study", "lcon", *args])  # errors: the root command's one path
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
    manifest = json.loads((out / store["path"] / "manifest.json").read_text())
    assert manifest["codec"]["name"] == "learned"
    # One rule, the effective target: the store's estimated by compress from the very noisy images
    # it holds (its manifest says so), the codec's from its own held-out noisy images.
    assert manifest["codec"]["target_basis"] == "effective" == rec["target_basis"]
    assert store["target_distortion"] == manifest["codec"]["target_distortion"]
    assert store["metric"] == "mae" and math.isclose(
        store["target_distortion"], rec["target"], rel_tol=0.1
    )
    # matched to the noise left after clipping on black digits' background: about b / 2
    for t in (rec["target"], store["target_distortion"]):
        assert 0.4 * store["noise"]["b"] < t < 0.65 * store["noise"]["b"]
    # no classifier saw the codec's 80 images: every scheme trains on at most the other 320
    assert max(r["n_train"] for r in data["rows"]) <= 320
    assert "Learned codecs" in (out / "report.html").read_text()
