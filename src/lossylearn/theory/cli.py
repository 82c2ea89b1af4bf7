"""``lossylearn theory``: rate functions, their closed forms and the LCoN theorem, as tables/plots.

Every command prints a Rich table (or JSON with ``--json``) and writes a figure with
``--plot FILE``. Errors in the user's input print one line and exit with status 2; they are caught
before any work (numbers that are NaN or out of range, a figure path that cannot be written, a
problem too large to finish in seconds unless the user raises the limit).
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, TypeVar

import numpy as np
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from lossylearn.errors import LossylearnError
from lossylearn.theory.ba_solver import rate_distortion_curve
from lossylearn.theory.closed_forms import (
    binary_rdc,
    binary_rdp,
    gaussian_rd,
    gaussian_rdc,
    gaussian_rdp,
    gaussian_universal_rdp,
)
from lossylearn.theory.constrained import (
    solve_rate_distortion_classification,
    solve_rate_distortion_perception,
)
from lossylearn.theory.info import as_pmf, entropy, plain
from lossylearn.theory.lcon import (
    LConRow,
    corollary_check,
    lcon_check,
    leakage_ceiling,
    privacy_leakage_bound,
)
from lossylearn.theory.sources import MAX_BLOCK_SYMBOLS, random_source, symmetric_noise
from lossylearn.theory.universal import UniversalResult, universal_rdc, universal_rdp

__all__ = ["app"]

app = typer.Typer(
    name="theory",
    help=(
        "Rate functions of finite and Gaussian sources: R(D) by Blahut-Arimoto, R(D,P) and "
        "R(D,C) with their closed forms, universal R(Theta) and its penalty A(Theta), and "
        "numerical checks of the LCoN theorem (rate H(Z^k)/k - H(N), posterior sampling)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

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

F = TypeVar("F", bound=Callable[..., None])


def _fail(message: str) -> None:
    err_console.print(f"error: {escape(message)}", highlight=False, soft_wrap=True)
    raise typer.Exit(code=2)


def _command(name: str) -> Callable[[F], F]:
    """Register a sub-command whose user errors print ``error: ...`` on one line, exit 2."""

    def register(fn: F) -> F:
        @functools.wraps(fn)
        def wrapper(*args: Any, **kwargs: Any) -> None:
            try:
                fn(*args, **kwargs)
            except LossylearnError as exc:
                _fail(str(exc))
            except OSError as exc:  # a file system refusal no check foresaw
                _fail((f"{exc.filename}: " if exc.filename else "") + str(exc.strerror or exc))

        app.command(name)(wrapper)
        return fn

    return register


# ---------------------------------------------------------------------------------------------
# Validation of the user's numbers (messages name the option and print plain numbers).


def _finite(value: float, option: str) -> float:
    if not math.isfinite(value):
        raise LossylearnError(f"{option} must be a finite number; got {plain(value)}")
    return float(value)


def _positive(value: float, option: str) -> float:
    if not (math.isfinite(value) and value > 0):
        raise LossylearnError(f"{option} must be a finite number > 0; got {plain(value)}")
    return float(value)


def _level(value: float, option: str) -> float:
    if not 0.0 <= value <= 1.0:  # also refuses NaN
        raise LossylearnError(f"{option} must lie in [0, 1]; got {plain(value)}")
    return float(value)


def _points(value: int) -> int:
    if value > MAX_POINTS:
        raise LossylearnError(f"--points {value} is above the limit of {MAX_POINTS} levels")
    return value


def _floats(text: str, name: str, *, allow_inf: bool = False) -> list[float]:
    """Comma-separated non-negative numbers (``inf`` only if ``allow_inf``), never NaN."""
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise LossylearnError(f"{name} must be comma-separated numbers; got {text!r}") from None
    if not values:
        raise LossylearnError(f"{name} is empty")
    for v in values:
        if math.isnan(v) or v < 0 or (math.isinf(v) and not allow_inf):
            kind = "numbers >= 0 (inf allowed)" if allow_inf else "finite numbers >= 0"
            raise LossylearnError(f"{name} must be {kind}; got {plain(v)}")
    return values


def _targets(text: str, second: str) -> list[tuple[float, float]]:
    out = []
    for item in text.replace(" ", "").split(";"):
        if not item:
            continue
        parts = item.split(":")
        if len(parts) != 2:
            raise LossylearnError(f"targets are 'D:{second};D:{second}'; got {item!r}")
        try:
            D, c = float(parts[0]), float(parts[1])
        except ValueError:
            raise LossylearnError(f"targets must be numbers; got {item!r}") from None
        if not (math.isfinite(D) and D >= 0) or math.isnan(c) or c < 0:
            raise LossylearnError(
                f"--targets need a finite D >= 0 and {second} >= 0 (inf allowed); got {item!r}"
            )
        out.append((D, c))
    if not out:
        raise LossylearnError("no targets given")
    return out


def _plot_target(plot: Path | None) -> None:
    """Refuse an unwritable ``--plot`` path before the work starts."""
    if plot is not None:
        from lossylearn.theory.plots import check_plot_path

        check_plot_path(plot)


def _block_limit(alphabet: int, k: int, max_block: int) -> int:
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


def _distortion(kind: str, n: int) -> np.ndarray:
    idx = np.arange(n, dtype=np.float64)
    if kind == "hamming":
        return 1.0 - np.eye(n)
    if kind == "squared":
        return (idx[:, None] - idx[None, :]) ** 2
    if kind == "absolute":
        return np.abs(idx[:, None] - idx[None, :])
    raise LossylearnError(f"unknown distortion {kind!r}; known: hamming, squared, absolute")


# ---------------------------------------------------------------------------------------------
# Output: tables, JSON and figures.


def _fmt(x: float, digits: int = 6) -> str:
    return "inf" if math.isinf(x) else f"{x:.{digits}f}"


def _table(
    title: str,
    columns: Iterable[str],
    rows: Iterable[Sequence[str]],
    caption: str | None = None,
) -> Table:
    table = Table(title=title, caption=caption)
    for col in columns:
        table.add_column(col, justify="right")
    for row in rows:
        table.add_row(*row)
    return table


def _emit(payload: dict[str, Any], table: Table, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(payload, indent=2, allow_nan=True))
    else:
        out_console.print(table)


def _plot(
    plot: Path | None,
    curves: Mapping[str, tuple[Sequence[float], Sequence[float]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str,
) -> None:
    if plot is not None:
        from lossylearn.theory.plots import plot_curves

        plot_curves(plot, curves, xlabel=xlabel, ylabel=ylabel, title=title)


# ---------------------------------------------------------------------------------------------
# Commands.


@_command("rd")
def rd_command(
    pmf: Annotated[str | None, typer.Option("--pmf", help="Source law, e.g. 0.5,0.3,0.2.")] = None,
    gaussian_grid: Annotated[
        int | None,
        typer.Option(
            "--gaussian-grid",
            min=2,
            help="Use N(0,1) discretised on N points in [-4, 4].",
        ),
    ] = None,
    distortion: Annotated[
        str, typer.Option("--distortion", help="hamming, squared or absolute (on symbol indices).")
    ] = "hamming",
    points: Annotated[
        int, typer.Option("--points", min=2, help=f"Number of distortion levels (<= {MAX_POINTS}).")
    ] = 20,
    max_symbols: Annotated[
        int,
        typer.Option(
            "--max-symbols",
            help=(
                f"Refuse sources of more than N symbols (at most {MAX_BLOCK_SYMBOLS}): 20 levels "
                "of a 512-point grid take seconds, of 1024 points half a minute."
            ),
        ),
    ] = DEFAULT_MAX_RD_SYMBOLS,
    as_json: JsonOpt = False,
    plot: PlotOpt = None,
) -> None:
    """Trace R(D) of a finite source by Blahut-Arimoto (bits), with Blahut's lower bounds."""
    if (pmf is None) == (gaussian_grid is None):
        raise LossylearnError("give exactly one of --pmf and --gaussian-grid")
    if not 2 <= max_symbols <= MAX_BLOCK_SYMBOLS:
        raise LossylearnError(
            f"--max-symbols must lie in [2, {MAX_BLOCK_SYMBOLS}]; got {max_symbols}"
        )
    _points(points)
    _plot_target(plot)
    if pmf is not None:
        p = as_pmf(_floats(pmf, "--pmf"), "--pmf")
        n = p.size
    else:
        n = int(gaussian_grid)  # type: ignore[arg-type]
    if n > max_symbols:
        what = f"--pmf has {n} entries" if pmf is not None else f"--gaussian-grid {n}"
        raise LossylearnError(
            f"{what}: above --max-symbols {max_symbols} (the solver's time grows about as the "
            f"cube of the source alphabet); pass --max-symbols {n} to run it anyway"
            if n <= MAX_BLOCK_SYMBOLS
            else f"{what}: above {MAX_BLOCK_SYMBOLS}, the most this command solves"
        )
    if pmf is not None:
        d = _distortion(distortion, p.size)
        label = f"pmf {pmf}, {distortion}"
    else:
        xs = np.linspace(-4.0, 4.0, n)
        p = np.exp(-0.5 * xs**2)
        p /= p.sum()
        d = (xs[:, None] - xs[None, :]) ** 2
        label = f"N(0,1) on {n} points, squared error"
    curve = rate_distortion_curve(p, d, n_points=points)
    rows = curve.as_rows()
    table = _table(
        f"R(D) (bits): {label}",
        ("D", "R(D) bits", "lower bound", "slope (nats/unit)"),
        (
            (
                _fmt(r["distortion"]),
                _fmt(r["rate_bits"]),
                _fmt(r["lower_bound_bits"]),
                _fmt(r["slope"], 4),
            )
            for r in rows
        ),
    )
    _emit({"source": label, "rows": rows}, table, as_json)
    _plot(
        plot,
        {"R(D)": (curve.distortions, curve.rates_bits)},
        xlabel="D",
        ylabel="bits",
        title=f"R(D): {label}",
    )


@_command("rdp-gaussian")
def rdp_gaussian_command(
    sigma: Annotated[float, typer.Option("--sigma", help="Source standard deviation.")] = 1.0,
    perception: Annotated[
        str, typer.Option("--perception", help="Squared-W2 levels P, e.g. 0,0.05,0.2,inf.")
    ] = "0,0.05,0.2,inf",
    points: Annotated[
        int, typer.Option("--points", min=2, help="Distortion levels in (0, 2 sigma^2].")
    ] = 12,
    as_json: JsonOpt = False,
    plot: PlotOpt = None,
) -> None:
    """R(D, P) of N(0, sigma^2), squared error, squared-W2 perception (closed form, nats)."""
    sigma = _positive(sigma, "--sigma")
    levels = _floats(perception, "--perception", allow_inf=True)
    _points(points)
    _plot_target(plot)
    ds = np.linspace(2.0 * sigma**2 / points, 2.0 * sigma**2, points)
    rows = [
        {
            "D": float(D),
            "R_D_nats": gaussian_rd(D, sigma),
            **{f"R_P={P:g}": gaussian_rdp(D, P, sigma) for P in levels},
        }
        for D in ds
    ]
    table = _table(
        f"Gaussian R(D, P) (nats), sigma = {sigma:g}",
        ("D", "R(D)", *(f"P = {P:g}" for P in levels)),
        (
            (_fmt(r["D"], 4), _fmt(r["R_D_nats"]), *(_fmt(r[f"R_P={P:g}"]) for P in levels))
            for r in rows
        ),
    )
    _emit({"sigma": sigma, "unit": "nats", "rows": rows}, table, as_json)
    fine = np.linspace(ds[0] / 4, 2.0 * sigma**2, 200)
    _plot(
        plot,
        {f"P = {P:g}": (fine, [gaussian_rdp(D, P, sigma) for D in fine]) for P in levels},
        xlabel="D (MSE)",
        ylabel="nats",
        title=f"Gaussian R(D, P), sigma = {sigma:g}",
    )


def _binary_command(
    name: str,
    levels: list[float],
    points: int,
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
    """Table, JSON and figure of a binary closed form at ``points`` distortions in [0, 1/2] and
    each level of the second constraint ``name`` (``P`` or ``C``), with the solver on ``check``."""
    for level in levels:
        closed_form(0.0, level)  # refuses bad parameters before the loop
    rows = []
    for D in np.linspace(0.0, 0.5, points):
        for level in levels:
            row = {"D": float(D), name: level, "closed_form_bits": closed_form(D, level)}
            if check:
                row["solver_bits"] = solver(D, level)
            rows.append(row)
    cells = (
        (_fmt(r["D"], 3), _fmt(r[name], 3), _fmt(r["closed_form_bits"]))
        + (
            (_fmt(r["solver_bits"]), f"{abs(r['solver_bits'] - r['closed_form_bits']):.1e}")
            if check
            else ()
        )
        for r in rows
    )
    columns = ("D", name, "closed form", *(("solver", "|diff|") if check else ()))
    _emit(
        {**payload, "unit": "bits", "rows": rows},
        _table(title, columns, cells),
        as_json,
    )
    fine = np.linspace(0.0, 0.5, 201)
    _plot(
        plot,
        {f"{name} = {v:g}": (fine, [closed_form(D, v) for D in fine]) for v in levels},
        xlabel="D (Hamming)",
        ylabel="bits",
        title=plot_title,
    )


@_command("rdp-binary")
def rdp_binary_command(
    p: Annotated[float, typer.Option("--p", help="P(X = 1), at most 1/2.")] = 0.3,
    perception: Annotated[str, typer.Option("--perception", help="TV levels P.")] = "0,0.05,0.1,1",
    points: Annotated[
        int, typer.Option("--points", min=2, help="Distortion levels in [0, 1/2].")
    ] = 11,
    check: Annotated[bool, typer.Option("--check", help="Also run the numerical solver.")] = False,
    as_json: JsonOpt = False,
    plot: PlotOpt = None,
) -> None:
    """R(D, P) of Bernoulli(p), Hamming distortion, total-variation perception (bits)."""
    levels = _floats(perception, "--perception", allow_inf=True)
    _points(points)
    _plot_target(plot)
    px = np.array([1.0 - p, p])
    hamming = 1.0 - np.eye(2)
    _binary_command(
        "P",
        levels,
        points,
        check,
        lambda D, P: binary_rdp(p, D, P),
        lambda D, P: solve_rate_distortion_perception(px, hamming, D, P).rate_bits,
        title=f"Bernoulli({p:g}) R(D, P) (bits), Hamming / TV",
        plot_title=f"Bernoulli({p:g}) R(D, P)",
        payload={"p": p},
        as_json=as_json,
        plot=plot,
    )


@_command("rdc-binary")
def rdc_binary_command(
    p: Annotated[float, typer.Option("--p", help="P(X = 1), at most 1/2.")] = 0.3,
    flip: Annotated[float, typer.Option("--flip", help="Label S = X xor Bernoulli(flip).")] = 0.1,
    classification: Annotated[
        str, typer.Option("--classification", help="Levels C of H(S|Xhat) in bits.")
    ] = "0.5,0.6,0.7,1",
    points: Annotated[
        int, typer.Option("--points", min=2, help="Distortion levels in [0, 1/2].")
    ] = 11,
    check: Annotated[bool, typer.Option("--check", help="Also run the numerical solver.")] = False,
    as_json: JsonOpt = False,
    plot: PlotOpt = None,
) -> None:
    """R(D, C) of Bernoulli(p) with a BSC(flip) label, Hamming distortion (bits)."""
    levels = _floats(classification, "--classification", allow_inf=True)
    _points(points)
    _plot_target(plot)
    joint = np.array([[(1 - p) * (1 - flip), (1 - p) * flip], [p * flip, p * (1 - flip)]])
    hamming = 1.0 - np.eye(2)
    _binary_command(
        "C",
        levels,
        points,
        check,
        lambda D, C: binary_rdc(p, D, C, flip=flip),
        lambda D, C: solve_rate_distortion_classification(joint, hamming, D, C).rate_bits,
        title=f"Bernoulli({p:g}), label flip {flip:g}: R(D, C) (bits)",
        plot_title=f"Bernoulli({p:g}) R(D, C), flip {flip:g}",
        payload={"p": p, "flip": flip},
        as_json=as_json,
        plot=plot,
    )


@_command("rdc-gaussian")
def rdc_gaussian_command(
    sigma: Annotated[float, typer.Option("--sigma", help="Source standard deviation.")] = 1.0,
    gain: Annotated[float, typer.Option("--gain", help="Label S = gain X + noise.")] = 1.0,
    label_noise: Annotated[float, typer.Option("--label-noise", help="Label noise std.")] = 0.5,
    classification: Annotated[
        str, typer.Option("--classification", help="Levels C of h(S|Xhat) in nats.")
    ] = "0.8,1.0,1.5",
    points: Annotated[
        int, typer.Option("--points", min=2, help="Distortion levels in (0, sigma^2].")
    ] = 10,
    as_json: JsonOpt = False,
) -> None:
    """R(D, C) of N(0, sigma^2) with a Gaussian label, squared error (closed form, nats)."""
    sigma = _positive(sigma, "--sigma")
    if _finite(gain, "--gain") == 0:
        raise LossylearnError("--gain must be non-zero")
    _positive(label_noise, "--label-noise")
    # h(S|Xhat) is a differential entropy: C may be negative; inf means no constraint.
    try:
        levels = [float(v) for v in classification.replace(" ", "").split(",") if v]
    except ValueError:
        raise LossylearnError(
            f"--classification must be comma-separated numbers; got {classification!r}"
        ) from None
    if not levels or any(math.isnan(C) for C in levels):
        raise LossylearnError(f"--classification must be numbers (nats); got {classification!r}")
    _points(points)
    rows = [
        {
            "D": float(D),
            **{
                f"R_C={C:g}": gaussian_rdc(D, C, sigma, gain=gain, label_noise=label_noise)
                for C in levels
            },
        }
        for D in np.linspace(sigma**2 / points, sigma**2, points)
    ]
    table = _table(
        f"Gaussian R(D, C) (nats), sigma {sigma:g}, gain {gain:g}, label noise {label_noise:g}",
        ("D", *(f"C = {C:g}" for C in levels)),
        ((_fmt(r["D"], 4), *(_fmt(r[f"R_C={C:g}"]) for C in levels)) for r in rows),
    )
    _emit({"unit": "nats", "rows": rows}, table, as_json)


def _universal_table(result: UniversalResult, second: str) -> Table:
    return _table(
        f"Universal representation ({result.kind}) (bits)",
        ("target", "D", second, "R(target)", "needs Z"),
        (
            (str(i), _fmt(D, 4), _fmt(c, 4), _fmt(r), "yes" if i in result.active else "no")
            for i, ((D, c), r) in enumerate(
                zip(result.targets, result.target_rates_bits, strict=True)
            )
        ),
        caption=(
            f"R(Theta) = {result.rate_bits:.6f} (proven >= {result.lower_bound_bits:.6f});  "
            f"A(Theta) = {result.penalty_bits:.6f} (proven >= {result.penalty_lower_bits:.6f})"
        ),
    )


@_command("universal-rdp")
def universal_rdp_command(
    pmf: Annotated[str, typer.Option("--pmf", help="Source law.")] = "0.7,0.3",
    targets: Annotated[
        str, typer.Option("--targets", help="Targets 'D:P;D:P' (TV perception).")
    ] = "0.15:1;0.16:0",
    distortion: Annotated[
        str, typer.Option("--distortion", help="hamming, squared or absolute.")
    ] = "hamming",
    as_json: JsonOpt = False,
) -> None:
    """R(Theta) and A(Theta) for (D, P) targets on a finite source (exact, certified)."""
    p = as_pmf(_floats(pmf, "--pmf"), "--pmf")
    result = universal_rdp(p, _distortion(distortion, p.size), _targets(targets, "P"))
    _emit(result.as_dict(), _universal_table(result, "P"), as_json)


@_command("universal-rdc")
def universal_rdc_command(
    joint: Annotated[
        str, typer.Option("--joint", help="Joint law of (X, S): rows x separated by ';'.")
    ] = "0.63,0.07;0.03,0.27",
    targets: Annotated[
        str, typer.Option("--targets", help="Targets 'D:C;D:C' (C bounds H(S|Xhat) in bits).")
    ] = "0.05:1;0.3:0.6",
    distortion: Annotated[
        str, typer.Option("--distortion", help="hamming, squared or absolute.")
    ] = "hamming",
    as_json: JsonOpt = False,
) -> None:
    """R(Theta) and A(Theta) for (D, C) targets (achievable rate with a proven lower bound)."""
    rows = [_floats(r, "--joint") for r in joint.split(";") if r.strip()]
    if len({len(r) for r in rows}) != 1:
        raise LossylearnError("--joint rows must have equal length")
    law = as_pmf(np.array(rows), "--joint")
    result = universal_rdc(law, _distortion(distortion, law.shape[0]), _targets(targets, "C"))
    _emit(result.as_dict(), _universal_table(result, "C"), as_json)


@_command("universal-gaussian")
def universal_gaussian_command(
    sigma: Annotated[float, typer.Option("--sigma", help="Source standard deviation.")] = 1.0,
    targets: Annotated[
        str, typer.Option("--targets", help="Targets 'D:P;D:P' (MSE, squared W2).")
    ] = "0.3:inf;0.45:0;0.35:0.02",
    as_json: JsonOpt = False,
) -> None:
    """R(Theta) of N(0, sigma^2) from Gaussian representations against max R(D, P): A = 0."""
    sigma = _positive(sigma, "--sigma")
    ts = _targets(targets, "P")
    rates = [gaussian_rdp(D, P, sigma) for D, P in ts]
    universal = gaussian_universal_rdp(ts, sigma)
    table = _table(
        f"Gaussian universal R(Theta) (nats), sigma {sigma:g}",
        ("D", "P", "R(D, P)"),
        ((_fmt(D, 4), _fmt(P, 4), _fmt(r)) for (D, P), r in zip(ts, rates, strict=True)),
        caption=(
            f"R(Theta) = {universal:.9f}, max R(D,P) = {max(rates):.9f}, "
            f"A = {universal - max(rates):.2e}"
        ),
    )
    payload = {
        "unit": "nats",
        "targets": [list(t) for t in ts],
        "target_rates": rates,
        "universal_rate": universal,
        "penalty": universal - max(rates),
    }
    _emit(payload, table, as_json)


def _noise(alphabet: int, level: float, noise_pmf: str | None, option: str) -> np.ndarray:
    if noise_pmf is None:
        return symmetric_noise(alphabet, _level(level, option))
    law = as_pmf(_floats(noise_pmf, "--noise-pmf"), "--noise-pmf")
    if law.size != alphabet:
        raise LossylearnError(f"--noise-pmf has {law.size} entries; the alphabet has {alphabet}")
    return law


def _seed(seed: int) -> np.random.Generator:
    if seed < 0:
        raise LossylearnError(f"--seed must be >= 0; got {seed}")
    return np.random.default_rng(seed)


def _each_block(ks: Sequence[int], alphabet: int, run: Callable[[int], list[Any]]) -> list[Any]:
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


@_command("lcon-check")
def lcon_check_command(
    source: Annotated[
        str, typer.Option("--source", help="iid or markov (seeded Dirichlet law).")
    ] = "markov",
    alphabet: Annotated[int, typer.Option("--alphabet", min=2, help="Alphabet size Q.")] = 4,
    k: Annotated[int, typer.Option("--k", min=1, help="Check block lengths 1..k.")] = 3,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random source law.")] = 0,
    noise_level: Annotated[
        float, typer.Option("--noise-level", help="P(N != 0), spread evenly (mod-Q noise).")
    ] = 0.3,
    noise_pmf: Annotated[str | None, typer.Option("--noise-pmf", help="Explicit law of N.")] = None,
    tol: Annotated[
        float, typer.Option("--tol", help="Blahut-Arimoto certificate tolerance (nats, > 0).")
    ] = 1e-11,
    max_block: MaxBlockOpt = DEFAULT_MAX_BLOCK,
    as_json: JsonOpt = False,
    plot: PlotOpt = None,
) -> None:
    """Check the LCoN theorem: R(Z^k, H(N)) = H(Z^k)/k - H(N) and posterior sampling."""
    tol = _positive(tol, "--tol")
    _block_limit(alphabet, k, max_block)
    _plot_target(plot)
    noise = _noise(alphabet, noise_level, noise_pmf, "--noise-level")
    src = random_source(source, alphabet, _seed(seed))

    def run(kk: int) -> list[LConRow]:
        return lcon_check(src, noise, (kk,), tol=tol)

    rows: list[LConRow] = _each_block(range(1, k + 1), alphabet, run)
    payload_rows = []
    for r in rows:
        d = r.as_dict()
        d["leakage_bound_bits"] = privacy_leakage_bound(src, noise, r.k)
        d["abs_diff_bits"] = abs(r.rate_solver_bits - r.rate_formula_bits)
        payload_rows.append(d)
    table = _table(
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
    _emit(payload, table, as_json)
    if plot is not None:
        from lossylearn.theory.plots import plot_lcon

        plot_lcon(plot, payload_rows, f"LCoN check, {source} Q={alphabet}")


@_command("lcon-corollary")
def lcon_corollary_command(
    source: Annotated[str, typer.Option("--source", help="iid or markov.")] = "markov",
    alphabet: Annotated[int, typer.Option("--alphabet", min=2, help="Alphabet size Q.")] = 4,
    k: Annotated[int, typer.Option("--k", min=1, help="Check block lengths 1..k.")] = 2,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random source law.")] = 0,
    u_level: Annotated[float, typer.Option("--u-level", help="P(U != 0) of the part kept.")] = 0.2,
    w_level: Annotated[
        float, typer.Option("--w-level", help="P(W != 0) of the part removed.")
    ] = 0.2,
    max_block: MaxBlockOpt = DEFAULT_MAX_BLOCK,
    as_json: JsonOpt = False,
) -> None:
    """Corollary V.1: a code matched to part W of N = U + W leaves reconstructions ~ X + U."""
    _block_limit(alphabet, k, max_block)
    u = symmetric_noise(alphabet, _level(u_level, "--u-level"))
    w = symmetric_noise(alphabet, _level(w_level, "--w-level"))
    src = random_source(source, alphabet, _seed(seed))
    rows = _each_block(range(1, k + 1), alphabet, lambda kk: corollary_check(src, u, w, (kk,)))
    table = _table(
        f"Corollary V.1: {source} source, Q = {alphabet}",
        ("k", "R solver", "H(Z^k)/k - H(W)", "TV(recon, X+U)", "TV(recon, X)"),
        (
            (
                str(r.k),
                f"{r.rate_solver_bits:.9f}",
                f"{r.rate_formula_bits:.9f}",
                f"{r.tv_to_partially_noisy:.1e}",
                f"{r.tv_to_clean:.3f}",
            )
            for r in rows
        ),
    )
    _emit({"rows": [r.as_dict() for r in rows]}, table, as_json)
