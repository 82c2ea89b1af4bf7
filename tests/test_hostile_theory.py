"""``lossylearn theory`` against hostile input (issue 10): one-line errors, exit 2, no traceback.

Each case runs the real command tree (``lossylearn.cli.app``) in-process; a few run the installed
entry point in a subprocess, where ``main()`` turns errors into ``error: ...`` and exit status 2.
Problems must be refused before any work: the solvers are replaced by functions that fail the
test if they are ever called.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

import lossylearn.cli.theory as theory_cli
from lossylearn.cli import app
from lossylearn.errors import LossylearnError
from lossylearn.theory.info import as_nonneg, as_positive, plain

runner = CliRunner()


def _refused(args: list[str], *needles: str) -> str:
    """Run ``lossylearn theory ARGS``; assert exit 2 and one ``error:`` line containing every
    needle, no traceback and no numpy repr; return the line."""
    res = runner.invoke(app, ["theory", *args])
    text = res.output
    assert res.exit_code == 2, (args, res.exit_code, text, res.exception)
    assert res.exception is None or isinstance(res.exception, SystemExit), res.exception
    lines = [ln for ln in text.splitlines() if ln.strip()]
    assert len(lines) == 1, (args, text)
    line = lines[0]
    assert line.startswith("error: "), line
    assert "Traceback" not in text and "np.float64" not in text, line
    for needle in needles:
        assert needle in line, (needle, line)
    return line


@pytest.fixture
def no_work(monkeypatch):
    """Make every solver the commands call fail the test: refusals must come first."""

    def forbidden(*args, **kwargs):
        raise AssertionError("the command started work before refusing its input")

    for name in (
        "rate_distortion_curve",
        "lcon_check",
        "corollary_check",
        "random_source",
        "solve_rate_distortion_perception",
        "solve_rate_distortion_classification",
        "universal_rdp",
        "universal_rdc",
        "gaussian_universal_rdp",
    ):
        monkeypatch.setattr(theory_cli, name, forbidden)


# --- tolerances ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", ["-1", "0", "-0.0", "nan", "inf", "-inf", "1e-400"])
def test_lcon_tolerance_must_be_positive_and_finite(no_work, value: str) -> None:
    # 1e-400 parses as 0.0: refused like 0.
    _refused(["lcon-check", "--tol", value], "--tol must be a finite number > 0")


# --- NaN / inf parameters, plain numbers in messages ---------------------------------------------


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["rdp-gaussian", "--sigma", "nan"], ("--sigma must be a finite number > 0", "got nan")),
        (["rdp-gaussian", "--sigma", "inf"], ("--sigma", "got inf")),
        (["rdp-gaussian", "--sigma", "-1"], ("--sigma", "got -1")),
        (["rdp-gaussian", "--perception", "0,nan"], ("--perception", "got nan")),
        (["rdc-gaussian", "--sigma", "nan"], ("--sigma", "got nan")),
        (["rdc-gaussian", "--gain", "nan"], ("--gain must be a finite number", "got nan")),
        (["rdc-gaussian", "--gain", "0"], ("--gain must be non-zero",)),
        (["rdc-gaussian", "--label-noise", "inf"], ("--label-noise", "got inf")),
        (["rdc-gaussian", "--classification", "0.8,nan"], ("--classification",)),
        (["universal-gaussian", "--sigma", "nan"], ("--sigma", "got nan")),
        (["universal-gaussian", "--targets", "0.3:nan"], ("--targets", "0.3:nan")),
        (["universal-gaussian", "--targets", "inf:0"], ("--targets", "inf:0")),
        (["universal-rdp", "--targets", "nan:1"], ("--targets", "nan:1")),
        (["universal-rdc", "--targets", "0.1:nan"], ("--targets", "0.1:nan")),
        (["universal-rdp", "--pmf", "nan,0.5"], ("--pmf", "got nan")),
        (["universal-rdc", "--joint", "0.5,inf;0.25,0.25"], ("--joint", "got inf")),
        (["rd", "--pmf", "0.5,nan"], ("--pmf", "got nan")),
        (["rd", "--pmf", "0.5,-0.5"], ("--pmf", "got -0.5")),
        (["rdp-binary", "--p", "nan"], ("p must lie in (0, 1/2]", "got nan")),
        (["rdp-binary", "--perception", "nan"], ("--perception", "got nan")),
        (["rdc-binary", "--flip", "nan"], ("flip must lie", "got nan")),
        (["rdc-binary", "--classification", "nan"], ("--classification", "got nan")),
        (["lcon-check", "--noise-level", "nan"], ("--noise-level must lie in [0, 1]", "got nan")),
        (["lcon-check", "--noise-level", "inf"], ("--noise-level", "got inf")),
        (["lcon-check", "--noise-pmf", "nan,0.5,0.25,0.25"], ("--noise-pmf", "got nan")),
        (["lcon-corollary", "--u-level", "nan"], ("--u-level must lie in [0, 1]", "got nan")),
        (["lcon-corollary", "--w-level", "-inf"], ("--w-level", "got -inf")),
        (["lcon-check", "--seed", "-1"], ("--seed must be >= 0", "got -1")),
    ],
)
def test_nan_and_out_of_range_parameters_are_refused(no_work, args: list[str], needles) -> None:
    # Refused before any solver runs (the closed forms validate before their loops).
    _refused(args, *needles)


def test_library_messages_print_plain_numbers() -> None:
    assert plain(np.float64("nan")) == "nan"
    assert plain(np.float32(0.5)) == "0.5"
    assert plain(-np.inf) == "-inf"
    assert plain("x") == "'x'"
    with pytest.raises(LossylearnError, match=r"^D must be a finite number >= 0; got nan$"):
        as_nonneg(np.float64("nan"), "D")
    with pytest.raises(LossylearnError, match=r"^s must be a finite number > 0; got inf$"):
        as_positive(np.float64("inf"), "s")


# --- problem size -------------------------------------------------------------------------------


@pytest.mark.parametrize("command", ["lcon-check", "lcon-corollary"])
def test_lcon_block_too_large_for_the_default_limit_is_refused_up_front(
    no_work, command: str
) -> None:
    # The case: 4^6 = 4096 block symbols ran past 25 s without a word.
    line = _refused([command, "--alphabet", "4", "--k", "6"], "4^6 = 4096 block symbols")
    assert "--max-block 256" in line and "pass --max-block 4096" in line


@pytest.mark.parametrize(("alphabet", "k"), [("4", "12"), ("100000", "1"), ("2", "1000000000000")])
def test_lcon_block_beyond_the_hard_limit_is_refused(no_work, alphabet: str, k: str) -> None:
    _refused(["lcon-check", "--alphabet", alphabet, "--k", k], "more than 4096")


@pytest.mark.parametrize("value", ["0", "-5", "5000"])
def test_lcon_max_block_outside_its_range_is_refused(no_work, value: str) -> None:
    _refused(["lcon-check", "--max-block", value], "--max-block must lie in [1, 4096]")


def test_lcon_max_block_raises_the_limit() -> None:
    # 18^2 = 324 block symbols: refused by default, run (in about a second) once allowed.
    args = ["theory", "lcon-check", "--source", "iid", "--alphabet", "18", "--k", "2", "--json"]
    refused = runner.invoke(app, args)
    assert refused.exit_code == 2 and "18^2 = 324" in refused.output
    res = runner.invoke(app, [*args, "--max-block", "324"])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout)["rows"]
    assert [r["k"] for r in rows] == [1, 2]
    assert all(r["abs_diff_bits"] < 1e-6 for r in rows)


@pytest.mark.parametrize(
    ("args", "needles"),
    [
        (["rd", "--gaussian-grid", "1000"], ("--max-symbols 512", "pass --max-symbols 1000")),
        (["rd", "--gaussian-grid", "100000"], ("above 4096",)),
        (["rd", "--pmf", ",".join(["0.001"] * 1000)], ("--pmf has 1000 entries",)),
        (["rd", "--pmf", "0.5,0.5", "--max-symbols", "1"], ("--max-symbols must lie",)),
        (["rd", "--pmf", "0.5,0.5", "--points", "100000000"], ("--points 100000000",)),
        (["rdp-gaussian", "--points", "1000000000"], ("above the limit of 1000",)),
        (["rdp-binary", "--points", "5000", "--check"], ("--points 5000",)),
    ],
)
def test_other_oversized_problems_are_refused(no_work, args: list[str], needles) -> None:
    _refused(args, *needles)


# --- figure paths -------------------------------------------------------------------------------


def _plot_cases(tmp_path: Path) -> list[tuple[list[str], str]]:
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    folder = tmp_path / "figures.png"  # a folder with a figure's name
    folder.mkdir()
    cases = [
        ([str(a_file / "x.png")], "is not a folder"),
        ([str(a_file / "sub" / "x.png")], "is not a folder"),
        ([str(folder)], "is a folder"),
        ([str(tmp_path)], "is a folder"),
        ([str(tmp_path / "x.txt")], "must end in .png, .pdf or .svg"),
    ]
    if Path("/proc/self").is_dir():  # procfs refuses new files, even to root
        cases.append((["/proc/x.png"], "cannot write the figure /proc/x.png"))
    return cases


@pytest.mark.parametrize(
    "command",
    [
        ["rd", "--pmf", "0.5,0.5"],
        ["rdp-gaussian"],
        ["rdp-binary", "--check"],
        ["rdc-binary", "--check"],
        ["lcon-check"],
    ],
)
def test_unwritable_plot_paths_are_refused_before_the_work(
    no_work, tmp_path: Path, command: list[str]
) -> None:
    for plot, needle in _plot_cases(tmp_path):
        _refused([*command, "--plot", *plot], needle)
    # Nothing was left behind by the probes.
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a_file", "figures.png"]
    assert not any((tmp_path / "figures.png").iterdir())


def test_a_writable_plot_path_still_works(tmp_path: Path) -> None:
    out = tmp_path / "new" / "deeper" / "rd.svg"  # missing folders are created
    res = runner.invoke(
        app, ["theory", "rd", "--pmf", "0.5,0.5", "--points", "3", "--plot", str(out)]
    )
    assert res.exit_code == 0, res.output
    assert out.stat().st_size > 1000


def test_a_figure_that_fails_while_saving_is_one_line(tmp_path: Path, monkeypatch) -> None:
    # A refusal the up-front check cannot foresee (the disk fills, the folder is removed).
    import matplotlib.figure

    def full_disk(self, *args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(matplotlib.figure.Figure, "savefig", full_disk)
    res = runner.invoke(app, ["theory", "rdp-gaussian", "--plot", str(tmp_path / "g.png")])
    assert res.exit_code == 2, res.output
    assert "Gaussian R(D, P)" in res.stdout  # the table came out before the figure failed
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert lines == [
        f"error: cannot write the figure {tmp_path / 'g.png'}: No space left on device"
    ]
    assert "Traceback" not in res.output


# --- the real entry point -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["lcon-check", "--tol", "-1"], "--tol must be a finite number > 0"),
        (["rdp-gaussian", "--sigma", "nan"], "--sigma must be a finite number > 0; got nan"),
        (["lcon-check", "--alphabet", "4", "--k", "6"], "4096 block symbols"),
        (["rd", "--pmf", "0.5,0.5", "--plot", "{file}/x.png"], "is not a folder"),
    ],
)
def test_entry_point_prints_one_error_line(tmp_path: Path, args: list[str], needle: str) -> None:
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    args = [a.replace("{file}", str(a_file)) for a in args]
    proc = subprocess.run(
        [sys.executable, "-m", "lossylearn.cli", "theory", *args],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], proc.stderr
