"""The ``theory`` sub-app: tables, JSON, plots and one-line errors."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lossylearn.cli import app as root
from lossylearn.cli.theory import app
from lossylearn.theory import gaussian_rdp

runner = CliRunner()


@pytest.fixture(autouse=True)
def _one_blas_thread():
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - optional
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield


def test_lcon_check_json_agrees_with_the_formula() -> None:
    res = runner.invoke(
        app, ["lcon-check", "--source", "markov", "--alphabet", "4", "--k", "3", "--json"]
    )
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["rows"]
    assert [r["k"] for r in rows] == [1, 2, 3]
    for r in rows:
        assert abs(r["rate_solver_bits"] - r["rate_formula_bits"]) < 1e-4
        assert r["recon_tv"] < 1e-6
        assert r["leakage_bound_bits"] == pytest.approx(r["rate_formula_bits"], abs=1e-12)


def test_lcon_check_table_and_plot(tmp_path: Path) -> None:
    out = tmp_path / "lcon.png"
    res = runner.invoke(
        app, ["lcon-check", "--source", "iid", "--alphabet", "3", "--k", "2", "--plot", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert "LCoN check" in res.stdout
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_rdp_gaussian_table_matches_closed_form() -> None:
    res = runner.invoke(
        app, ["rdp-gaussian", "--sigma", "1", "--perception", "0,inf", "--points", "4", "--json"]
    )
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["rows"]
    assert rows[0]["D"] == pytest.approx(0.5)
    assert rows[0]["R_P=0"] == pytest.approx(gaussian_rdp(0.5, 0.0))
    assert rows[0]["R_P=inf"] == pytest.approx(0.5 * math.log(2.0))
    table = runner.invoke(app, ["rdp-gaussian", "--sigma", "1"])
    assert table.exit_code == 0 and "Gaussian R(D, P)" in table.stdout


def test_rdp_binary_check_and_rd_plot(tmp_path: Path) -> None:
    res = runner.invoke(
        app,
        [
            "rdp-binary",
            "--p",
            "0.3",
            "--perception",
            "0,0.05",
            "--points",
            "5",
            "--check",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    for r in json.loads(res.stdout)["rows"]:
        assert r["solver_bits"] == pytest.approx(r["closed_form_bits"], abs=1e-6)
    out = tmp_path / "rd.svg"
    res = runner.invoke(app, ["rd", "--pmf", "0.5,0.3,0.2", "--points", "5", "--plot", str(out)])
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 1000


def test_universal_rdp_reports_a_positive_penalty() -> None:
    res = runner.invoke(
        app, ["universal-rdp", "--pmf", "0.7,0.3", "--targets", "0.15:1;0.16:0", "--json"]
    )
    assert res.exit_code == 0, res.output
    payload = json.loads(res.stdout)
    assert payload["penalty_lower_bits"] > 0.015
    assert payload["exact"] is True


def test_user_errors_exit_2_with_one_line() -> None:
    # user errors reach the root command's one error path (lossylearn.cli.main)
    res = runner.invoke(root, ["theory", "rd", "--pmf", "0.5,0.6"])
    assert res.exit_code == 2
    assert "error:" in res.output and "sums to" in res.output
    assert len(res.output.strip().splitlines()) == 1
    res = runner.invoke(root, ["theory", "lcon-check", "--noise-pmf", "0.5,0.5", "--alphabet", "4"])
    assert res.exit_code == 2 and "--noise-pmf has 2 entries" in res.output
    res = runner.invoke(root, ["theory", "universal-rdp", "--targets", "0.1"])
    assert res.exit_code == 2 and "targets are" in res.output
