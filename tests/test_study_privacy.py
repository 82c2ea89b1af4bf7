"""``lossylearn study privacy``: the verdicts' logic, and one tiny end-to-end run through the CLI
(one PSNR, 200 training digits) that must leave no store in --out and link the LCoN report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lossylearn.cli.main import app
from lossylearn.studies.privacy import VARIANTS, privacy_config
from lossylearn.studies.privacy.claims import check_claims


def _rows(noisy: list[float], lcon: list[float], n: int = 1000) -> list[dict]:
    out = []
    for i, (a, b) in enumerate(zip(noisy, lcon, strict=True)):
        for kind, top1 in (("noisy", a), ("lcon", b)):
            out.append({"variant": "v", "kind": kind, "psnr": 10.0 + i, "top1": top1,
                        "n_queries": n, "chance_top1": 1e-4})  # fmt: skip
    return out


def test_claims_need_a_gap_beyond_sampling_error() -> None:
    c = check_claims(_rows([0.9, 0.5], [0.6, 0.2]))
    assert c[0].holds is True and "2 of 2" in c[0].detail
    assert c[1].holds is False  # 20% is far above 5x chance
    assert check_claims(_rows([0.9, 0.5], [0.89, 0.2]))[0].holds is False  # 1 point: noise
    assert check_claims(_rows([0.5], [0.7]))[0].holds is False  # compression made it worse
    assert check_claims(_rows([0.01], [0.0003]))[1].holds is True


def test_profiles() -> None:
    q, p = privacy_config("quick"), privacy_config("paper")
    assert q.pool == 2000 and p.pool is None
    assert "learned-nominal" in p.variants
    assert len(p.lcon_config(VARIANTS["jpeg-nominal"]).psnrs) == 7
    assert len(p.lcon_config(VARIANTS["learned-nominal"]).psnrs) == 5  # Fig. 4's grid
    with pytest.raises(Exception, match="unknown variant"):
        privacy_config("quick", variants=("webp-magic",))


def test_tiny_study_end_to_end(tmp_path: Path) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    res = CliRunner().invoke(app, [
        "study", "privacy", "--out", str(out), "--work", str(work), "--psnr", "16.1",
        "--n-train", "200", "--n-test", "100", "--epochs", "1", "--pool", "400",
        "--membership-psnr", "16.1", "--no-progress",
    ])  # fmt: skip
    assert res.exit_code == 0, res.output
    doc = json.loads((out / "results.json").read_text())
    kinds = [r["kind"] for r in doc["rows"]]
    assert kinds == ["noisy", "lcon", "clean"]
    noisy, lcon, clean = doc["rows"]
    assert clean["top1"] == 1.0  # the clean images find themselves
    assert noisy["pool_size"] == lcon["pool_size"] == 400
    assert lcon["leakage_bits_per_pixel"] <= lcon["bits_per_pixel"] + 1e-12
    assert noisy["membership_auc"] is not None and lcon["accuracy"] is not None
    assert len(doc["claims"]) == 2
    assert {p.name for p in (out / "figures").iterdir()} >= {
        "reid_vs_accuracy.png",
        "reid_vs_psnr.png",
    }
    assert "Verdicts" in (out / "report.html").read_text()
    # no store, checkpoint or model weights in --out; the LCoN report links the audit
    assert not list(out.rglob("manifest.json")) and not list(out.rglob("*.pt"))
    assert "lcon-psnr16.1/audit.html" in (work / "lcon-jpeg-nominal" / "report.html").read_text()
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "mine.txt").write_text("x")
    res = CliRunner().invoke(app, ["study", "privacy", "--out", str(tmp_path / "busy")])
    assert res.exit_code == 2 and "holds no privacy study" in res.output
