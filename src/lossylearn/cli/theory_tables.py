"""What the ``lossylearn theory`` commands share: size limits, checks of the user's numbers (run
before any work), and the one way they print a table (or JSON) and write a figure."""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, NamedTuple

import numpy as np
import typer
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lossylearn.cli.parse import floats
from lossylearn.errors import LossylearnError
from lossylearn.theory.info import as_pmf, entropy, plain
from lossylearn.theory.lcon import leakage_ceiling, privacy_leakage_bound
from lossylearn.theory.sources import MAX_BLOCK_SYMBOLS, symmetric_noise
from lossylearn.theory.universal import UniversalResult

err_console = Console(stderr=True)
out_console = Console()

#: Most rows (distortion levels) a table may ask for.
MAX_POINTS = 1000
#: Default limit on the block alphabet ``Q^k`` of the LCoN checks. Blahut-Arimoto on a block of
#: N symbols works on an N x N matrix with N x N Hessians: measured on one core, 256 symbols take
#: 0.4-1 s, 343-484 about 1 s, 512 2-11 s, 625 5 s, 729 30 s, 1024 100-180 s.
DEFAULT_MAX_BLOCK = 256
#: Default limit on the source symbols of ``rd`` (``--pmf`` entries or ``--gaussian-grid``
#: points): the default 20 levels of a 512-point grid take 7 s, of a 1024-point grid 31 s.
DEFAULT_MAX_RD_SYMBOLS = 512

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
PlotOpt = Annotated[
    Path | None, typer.Option("--plot", help="Write a figure to FILE (.png, .pdf or .svg).")
]
MaxBlockOpt = Annotated[
    int,
    typer.Option(
        "--max-block",
        help=(
            f"Refuse block alphabets Q^k above N symbols (at most {MAX_BLOCK_SYMBOLS}). The "
            "solver's time grows about as N^3: 256 symbols take about a second, 1024 minutes."
        ),
    ),
]
#: Options that several commands take with the same meaning (each command sets the default).
SigmaOpt = Annotated[float, typer.Option("--sigma", help="Source standard deviation.")]
BernoulliOpt = Annotated[float, typer.Option("--p", help="P(X = 1), at most 1/2.")]
BinaryPointsOpt = Annotated[
    int, typer.Option("--points", min=2, help="Distortion levels in [0, 1/2].")
]
CheckOpt = Annotated[bool, typer.Option("--check", help="Also run the numerical solver.")]
DistortionOpt = Annotated[str, typer.Option("--distortion", help="hamming, squared or absolute.")]
AlphabetOpt = Annotated[int, typer.Option("--alphabet", min=2, help="Alphabet size Q.")]
BlocksOpt = Annotated[int, typer.Option("--k", min=1, help="Check block lengths 1..k.")]
SourceSeedOpt = Annotated[int, typer.Option("--seed", help="Seed of the random source law.")]

#: Hamming distortion on a binary alphabet.
HAMMING2 = 1.0 - np.eye(2)

Curves = Mapping[str, tuple[Sequence[float], Sequence[float]]]

# ---------------------------------------------------------------------------------------------
# Checks of the user's numbers (messages name the option and print plain numbers).


def finite(value: float, option: str) -> float:
    if not math.isfinite(value):
        raise LossylearnError(f"{option} must be a finite number; got {plain(value)}")
    return float(value)


def positive(value: float, option: str) -> float:
    if not (math.isfinite(value) and value > 0):
        raise LossylearnError(f"{option} must be a finite number > 0; got {plain(value)}")
    return float(value)


def level(value: float, option: str) -> float:
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise LossylearnError(f"{option} must lie in [0, 1]; got {plain(value)}")
    return float(value)


def points(value: int) -> int:
    if value > MAX_POINTS:
        raise LossylearnError(f"--points {value} is above the limit of {MAX_POINTS} levels")
    return value


def rng(seed: int) -> np.random.Generator:
    if seed < 0:
        raise LossylearnError(f"--seed must be >= 0; got {seed}")
    return np.random.default_rng(seed)


def block_limit(alphabet: int, k: int, max_block: int) -> int:
    """The largest block alphabet ``alphabet^k``, refused above ``max_block`` (estimated before
    any work: the solver's time grows about as the cube of the block alphabet)."""
    if not 1 <= max_block <= MAX_BLOCK_SYMBOLS:
        raise LossylearnError(f"--max-block must lie in [1, {MAX_BLOCK_SYMBOLS}]; got {max_block}")
    size_text = f"Q^k = {alphabet}^{k}"
    # Compare logarithms first: a huge --k must not build a huge integer.
    if k * math.log(alphabet) > math.log(MAX_BLOCK_SYMBOLS) + 1e-9:
        raise LossylearnError(
            f"--alphabet {alphabet} --k {k} needs {size_text} block symbols, more than "
            f"{MAX_BLOCK_SYMBOLS}, the most this check builds (use a smaller --k or --alphabet)"
        )
    size = alphabet**k
    if size > max_block:
        raise LossylearnError(
            f"--alphabet {alphabet} --k {k} needs {size_text} = {size} block symbols, above "
            f"--max-block {max_block} (256 symbols take about a second, 1024 minutes); "
            f"pass --max-block {size} to run it anyway"
        )
    return size


def symbol_limit(max_symbols: int) -> int:
    """``--max-symbols``, refused outside [2, MAX_BLOCK_SYMBOLS]."""
    if not 2 <= max_symbols <= MAX_BLOCK_SYMBOLS:
        raise LossylearnError(
            f"--max-symbols must lie in [2, {MAX_BLOCK_SYMBOLS}]; got {max_symbols}"
        )
    return max_symbols


def source_size(n: int, max_symbols: int, what: str) -> int:
    """Refuse a source of ``n`` symbols above ``--max-symbols`` (``what`` names its option)."""
    if n > max_symbols:
        raise LossylearnError(
            f"{what}: above --max-symbols {max_symbols} (the solver's time grows about as the "
            f"cube of the source alphabet); pass --max-symbols {n} to run it anyway"
            if n <= MAX_BLOCK_SYMBOLS
            else f"{what}: above {MAX_BLOCK_SYMBOLS}, the most this command solves"
        )
    return n


def distortion_matrix(kind: str, n: int) -> np.ndarray:
    idx = np.arange(n, dtype=np.float64)
    if kind == "hamming":
        return 1.0 - np.eye(n)
    if kind == "squared":
        return (idx[:, None] - idx[None, :]) ** 2
    if kind == "absolute":
        return np.abs(idx[:, None] - idx[None, :])
    raise LossylearnError(f"unknown distortion {kind!r}; known: hamming, squared, absolute")


def noise_law(alphabet: int, noise_level: float, noise_pmf: str | None, option: str) -> np.ndarray:
    """The law of the mod-Q noise: ``noise_pmf`` if given, else ``noise_level`` spread evenly."""
    if noise_pmf is None:
        return symmetric_noise(alphabet, level(noise_level, option))
    law = as_pmf(floats(noise_pmf, "--noise-pmf", nonneg=True, allow_inf=False), "--noise-pmf")
    if law.size != alphabet:
        raise LossylearnError(f"--noise-pmf has {law.size} entries; the alphabet has {alphabet}")
    return law


def plot_target(plot: Path | None) -> None:
    """Refuse an unwritable ``--plot`` path before the work starts."""
    if plot is not None:
        from lossylearn.theory.plots import check_plot_path

        check_plot_path(plot)


# ---------------------------------------------------------------------------------------------
# Output: tables, JSON and figures.


def fmt(x: float, digits: int = 6) -> str:
    return "inf" if math.isinf(x) else f"{x:.{digits}f}"


def table(
    title: str,
    columns: Iterable[str],
    rows: Iterable[Sequence[str]],
    caption: str | None = None,
) -> Table:
    t = Table(title=title, caption=caption)
    for col in columns:
        t.add_column(col, justify="right")
    for row in rows:
        t.add_row(*row)
    return t


class Figure(NamedTuple):
    """What ``--plot`` draws: ``curves()`` (computed only when a figure is asked for), the axis
    labels and the title."""

    curves: Callable[[], Curves]
    xlabel: str
    ylabel: str
    title: str


def show(
    payload: dict[str, Any],
    rich_table: Table,
    as_json: bool,
    plot: Path | None = None,
    figure: Figure | None = None,
) -> None:
    """Print ``rich_table`` (``payload`` as JSON with ``--json``), then, with ``--plot``, draw
    ``figure`` into that file."""
    if as_json:
        typer.echo(json.dumps(payload, indent=2, allow_nan=True))
    else:
        out_console.print(rich_table)
    if plot is not None and figure is not None:
        from lossylearn.theory.plots import plot_curves

        plot_curves(
            plot, figure.curves(), xlabel=figure.xlabel, ylabel=figure.ylabel, title=figure.title
        )


def binary_table(
    name: str,
    levels: Sequence[float],
    n_points: int,
    check: bool,
    closed_form: Callable[[float, float], float],
    solver: Callable[[float, float], float],
    *,
    title: str,
    plot_title: str,
    payload: dict[str, Any],
    as_json: bool,
    plot: Path | None,
) -> None:
    """Table, JSON and figure of a binary closed form at ``n_points`` distortions in [0, 1/2] and
    each level of the second constraint ``name`` (``P`` or ``C``), with the solver on ``check``.
    ``n_points`` and ``plot`` are checked first."""
    points(n_points)
    plot_target(plot)
    for lvl in levels:
        closed_form(0.0, lvl)  # refuses bad parameters before the loop
    rows = []
    for D in np.linspace(0.0, 0.5, n_points):
        for lvl in levels:
            row = {"D": float(D), name: lvl, "closed_form_bits": closed_form(D, lvl)}
            if check:
                row["solver_bits"] = solver(D, lvl)
            rows.append(row)
    cells = (
        (fmt(r["D"], 3), fmt(r[name], 3), fmt(r["closed_form_bits"]))
        + (
            (fmt(r["solver_bits"]), f"{abs(r['solver_bits'] - r['closed_form_bits']):.1e}")
            if check
            else ()
        )
        for r in rows
    )
    columns = ("D", name, "closed form", *(("solver", "|diff|") if check else ()))
    fine = np.linspace(0.0, 0.5, 201)
    figure = Figure(
        lambda: {f"{name} = {v:g}": (fine, [closed_form(D, v) for D in fine]) for v in levels},
        "D (Hamming)",
        "bits",
        plot_title,
    )
    show(
        {**payload, "unit": "bits", "rows": rows},
        table(title, columns, cells),
        as_json,
        plot,
        figure,
    )


def universal_table(result: UniversalResult, second: str) -> Table:
    return table(
        f"Universal representation ({result.kind}) (bits)",
        ("target", "D", second, "R(target)", "needs Z"),
        (
            (str(i), fmt(D, 4), fmt(c, 4), fmt(r), "yes" if i in result.active else "no")
            for i, ((D, c), r) in enumerate(
                zip(result.targets, result.target_rates_bits, strict=True)
            )
        ),
        caption=(
            f"R(Theta) = {result.rate_bits:.6f} (proven >= {result.lower_bound_bits:.6f});  "
            f"A(Theta) = {result.penalty_bits:.6f} (proven >= {result.penalty_lower_bits:.6f})"
        ),
    )


def each_block(ks: Sequence[int], alphabet: int, run: Callable[[int], list[Any]]) -> list[Any]:
    """``run(k)`` for each block length, with a progress bar on stderr once blocks pass the
    default limit (only reachable with a raised ``--max-block``: seconds to minutes each)."""
    if alphabet ** max(ks) <= DEFAULT_MAX_BLOCK:
        return [row for k in ks for row in run(k)]
    rows: list[Any] = []
    columns = (TextColumn("{task.description}"), BarColumn(), TimeElapsedColumn())
    with Progress(*columns, console=err_console, transient=True) as progress:
        task = progress.add_task("block length", total=sum(alphabet**k for k in ks))
        for k in ks:
            progress.update(task, description=f"block length {k} ({alphabet**k} symbols)")
            rows.extend(run(k))
            progress.advance(task, alphabet**k)
    return rows


def lcon_report(
    src: Any, noise: np.ndarray, rows: Sequence[Any], *, source: str, seed: int
) -> tuple[dict[str, Any], Table]:
    """Payload (rows with the leakage bound and the solver's distance to eq. (9)) and table of
    ``theory lcon-check``."""
    payload_rows = []
    for r in rows:
        d = r.to_dict()
        d["leakage_bound_bits"] = privacy_leakage_bound(src, noise, r.k)
        d["abs_diff_bits"] = abs(r.rate_solver_bits - r.rate_formula_bits)
        payload_rows.append(d)
    alphabet = int(noise.size)
    rich_table = table(
        f"LCoN check: {source} source, Q = {alphabet}, H(N) = {entropy(noise):.4f} bits",
        ("k", "R solver", "formula", "|diff|", "TV recon", "TV joint", "slope/k ln2"),
        (
            (
                str(r["k"]),
                f"{r['rate_solver_bits']:.9f}",
                f"{r['rate_formula_bits']:.9f}",
                f"{r['abs_diff_bits']:.1e}",
                f"{r['recon_tv']:.1e}",
                f"{r['joint_tv']:.1e}",
                f"{r['slope'] / (r['k'] * math.log(2)):.6f}",
            )
            for r in payload_rows
        ),
        caption=(
            "bits per symbol; formula = H(Z^k)/k - H(N); TV recon = TV(recon law, P_X^k); "
            f"leakage ceiling log2 Q - H(N) = {leakage_ceiling(noise):.4f}"
        ),
    )
    payload = {
        "source": {
            "kind": src.kind,
            "alphabet": alphabet,
            "seed": seed,
            "marginal": src.marginal.tolist(),
            "transition": None if src.transition is None else src.transition.tolist(),
        },
        "noise_pmf": noise.tolist(),
        "rows": payload_rows,
    }
    return payload, rich_table
