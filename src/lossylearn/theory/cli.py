"""``lossylearn theory``: rate functions, their closed forms and the LCoN theorem, as tables/plots.

Every command prints a Rich table (or JSON with ``--json``) and writes a figure with
``--plot FILE``. Errors in the user's input print one line and exit with status 2.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import typer
from rich.console import Console
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
from lossylearn.theory.info import as_pmf, entropy
from lossylearn.theory.lcon import (
    corollary_check,
    lcon_check,
    leakage_ceiling,
    privacy_leakage_bound,
)
from lossylearn.theory.sources import random_source, symmetric_noise
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

JsonOpt = Annotated[bool, typer.Option("--json", help="Print JSON instead of a table.")]
PlotOpt = Annotated[
    Path | None, typer.Option("--plot", help="Write a figure to FILE (.png, .pdf or .svg).")
]


def _run(body: Callable[[], None]) -> None:
    try:
        body()
    except LossylearnError as exc:
        err_console.print(f"error: {exc}", highlight=False)
        raise typer.Exit(code=2) from None


def _floats(text: str, name: str) -> list[float]:
    try:
        values = [float(v) for v in text.replace(" ", "").split(",") if v]
    except ValueError:
        raise LossylearnError(f"{name} must be comma-separated numbers; got {text!r}") from None
    if not values:
        raise LossylearnError(f"{name} is empty")
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
            out.append((float(parts[0]), float(parts[1])))
        except ValueError:
            raise LossylearnError(f"targets must be numbers; got {item!r}") from None
    if not out:
        raise LossylearnError("no targets given")
    return out


def _distortion(kind: str, n: int) -> np.ndarray:
    idx = np.arange(n, dtype=np.float64)
    if kind == "hamming":
        return 1.0 - np.eye(n)
    if kind == "squared":
        return (idx[:, None] - idx[None, :]) ** 2
    if kind == "absolute":
        return np.abs(idx[:, None] - idx[None, :])
    raise LossylearnError(f"unknown distortion {kind!r}; known: hamming, squared, absolute")


def _emit(payload: dict[str, Any], table: Table, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(payload, indent=2, allow_nan=True))
    else:
        out_console.print(table)


def _fmt(x: float, digits: int = 6) -> str:
    return "inf" if math.isinf(x) else f"{x:.{digits}f}"


@app.command("rd")
def rd_command(
    pmf: Annotated[str | None, typer.Option("--pmf", help="Source law, e.g. 0.5,0.3,0.2.")] = None,
    gaussian_grid: Annotated[
        int | None,
        typer.Option(
            "--gaussian-grid", min=2, help="Use N(0,1) discretised on N points in [-4, 4]."
        ),
    ] = None,
    distortion: Annotated[
        str, typer.Option("--distortion", help="hamming, squared or absolute (on symbol indices).")
    ] = "hamming",
    points: Annotated[
        int, typer.Option("--points", min=2, help="Number of distortion levels.")
    ] = 20,
    as_json: JsonOpt = False,
    plot: PlotOpt = None,
) -> None:
    """Trace R(D) of a finite source by Blahut-Arimoto (bits), with Blahut's lower bounds."""

    def body() -> None:
        if (pmf is None) == (gaussian_grid is None):
            raise LossylearnError("give exactly one of --pmf and --gaussian-grid")
        if pmf is not None:
            p = as_pmf(_floats(pmf, "--pmf"), "--pmf")
            d = _distortion(distortion, p.size)
            label = f"pmf {pmf}, {distortion}"
        else:
            xs = np.linspace(-4.0, 4.0, int(gaussian_grid))
            p = np.exp(-0.5 * xs**2)
            p /= p.sum()
            d = (xs[:, None] - xs[None, :]) ** 2
            label = f"N(0,1) on {gaussian_grid} points, squared error"
        curve = rate_distortion_curve(p, d, n_points=points)
        table = Table(title=f"R(D) (bits): {label}")
        for col in ("D", "R(D) bits", "lower bound", "slope (nats/unit)"):
            table.add_column(col, justify="right")
        for row in curve.as_rows():
            table.add_row(
                _fmt(row["distortion"]),
                _fmt(row["rate_bits"]),
                _fmt(row["lower_bound_bits"]),
                _fmt(row["slope"], 4),
            )
        _emit({"source": label, "rows": curve.as_rows()}, table, as_json)
        if plot is not None:
            from lossylearn.theory.plots import plot_curves

            plot_curves(
                plot,
                {"R(D)": (curve.distortions, curve.rates_bits)},
                xlabel="D",
                ylabel="bits",
                title=f"R(D): {label}",
            )

    _run(body)


@app.command("rdp-gaussian")
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

    def body() -> None:
        levels = _floats(perception, "--perception")
        ds = np.linspace(2.0 * sigma**2 / points, 2.0 * sigma**2, points)
        rows = []
        for D in ds:
            rows.append(
                {
                    "D": float(D),
                    "R_D_nats": gaussian_rd(D, sigma),
                    **{f"R_P={P:g}": gaussian_rdp(D, P, sigma) for P in levels},
                }
            )
        table = Table(title=f"Gaussian R(D, P) (nats), sigma = {sigma:g}")
        table.add_column("D", justify="right")
        table.add_column("R(D)", justify="right")
        for P in levels:
            table.add_column(f"P = {P:g}", justify="right")
        for r in rows:
            table.add_row(
                _fmt(r["D"], 4), _fmt(r["R_D_nats"]), *[_fmt(r[f"R_P={P:g}"]) for P in levels]
            )
        _emit({"sigma": sigma, "unit": "nats", "rows": rows}, table, as_json)
        if plot is not None:
            from lossylearn.theory.plots import plot_curves

            fine = np.linspace(ds[0] / 4, 2.0 * sigma**2, 200)
            plot_curves(
                plot,
                {f"P = {P:g}": (fine, [gaussian_rdp(D, P, sigma) for D in fine]) for P in levels},
                xlabel="D (MSE)",
                ylabel="nats",
                title=f"Gaussian R(D, P), sigma = {sigma:g}",
            )

    _run(body)


def _solver_columns(table: Table, check: bool) -> None:
    if check:
        table.add_column("solver", justify="right")
        table.add_column("|diff|", justify="right")


@app.command("rdp-binary")
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

    def body() -> None:
        levels = _floats(perception, "--perception")
        px = np.array([1.0 - p, p])
        d = 1.0 - np.eye(2)
        rows = []
        for D in np.linspace(0.0, 0.5, points):
            for P in levels:
                row = {"D": float(D), "P": P, "closed_form_bits": binary_rdp(p, D, P)}
                if check:
                    row["solver_bits"] = solve_rate_distortion_perception(px, d, D, P).rate_bits
                rows.append(row)
        table = Table(title=f"Bernoulli({p:g}) R(D, P) (bits), Hamming / TV")
        for col in ("D", "P", "closed form"):
            table.add_column(col, justify="right")
        _solver_columns(table, check)
        for r in rows:
            extra = (
                [_fmt(r["solver_bits"]), f"{abs(r['solver_bits'] - r['closed_form_bits']):.1e}"]
                if check
                else []
            )
            table.add_row(_fmt(r["D"], 3), _fmt(r["P"], 3), _fmt(r["closed_form_bits"]), *extra)
        _emit({"p": p, "unit": "bits", "rows": rows}, table, as_json)
        if plot is not None:
            from lossylearn.theory.plots import plot_curves

            fine = np.linspace(0.0, 0.5, 201)
            plot_curves(
                plot,
                {f"P = {P:g}": (fine, [binary_rdp(p, D, P) for D in fine]) for P in levels},
                xlabel="D (Hamming)",
                ylabel="bits",
                title=f"Bernoulli({p:g}) R(D, P)",
            )

    _run(body)


@app.command("rdc-binary")
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

    def body() -> None:
        levels = _floats(classification, "--classification")
        joint = np.array([[(1 - p) * (1 - flip), (1 - p) * flip], [p * flip, p * (1 - flip)]])
        d = 1.0 - np.eye(2)
        rows = []
        for D in np.linspace(0.0, 0.5, points):
            for C in levels:
                row = {"D": float(D), "C": C, "closed_form_bits": binary_rdc(p, D, C, flip=flip)}
                if check:
                    row["solver_bits"] = solve_rate_distortion_classification(
                        joint, d, D, C
                    ).rate_bits
                rows.append(row)
        table = Table(title=f"Bernoulli({p:g}), label flip {flip:g}: R(D, C) (bits)")
        for col in ("D", "C", "closed form"):
            table.add_column(col, justify="right")
        _solver_columns(table, check)
        for r in rows:
            extra = (
                [_fmt(r["solver_bits"]), f"{abs(r['solver_bits'] - r['closed_form_bits']):.1e}"]
                if check
                else []
            )
            table.add_row(_fmt(r["D"], 3), _fmt(r["C"], 3), _fmt(r["closed_form_bits"]), *extra)
        _emit({"p": p, "flip": flip, "unit": "bits", "rows": rows}, table, as_json)
        if plot is not None:
            from lossylearn.theory.plots import plot_curves

            fine = np.linspace(0.0, 0.5, 201)
            plot_curves(
                plot,
                {
                    f"C = {C:g}": (fine, [binary_rdc(p, D, C, flip=flip) for D in fine])
                    for C in levels
                },
                xlabel="D (Hamming)",
                ylabel="bits",
                title=f"Bernoulli({p:g}) R(D, C), flip {flip:g}",
            )

    _run(body)


@app.command("rdc-gaussian")
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

    def body() -> None:
        levels = _floats(classification, "--classification")
        rows = []
        for D in np.linspace(sigma**2 / points, sigma**2, points):
            rows.append(
                {
                    "D": float(D),
                    **{
                        f"R_C={C:g}": gaussian_rdc(D, C, sigma, gain=gain, label_noise=label_noise)
                        for C in levels
                    },
                }
            )
        table = Table(
            title=f"Gaussian R(D, C) (nats), sigma {sigma:g}, gain {gain:g}, label noise {label_noise:g}"
        )
        table.add_column("D", justify="right")
        for C in levels:
            table.add_column(f"C = {C:g}", justify="right")
        for r in rows:
            table.add_row(_fmt(r["D"], 4), *[_fmt(r[f"R_C={C:g}"]) for C in levels])
        _emit({"unit": "nats", "rows": rows}, table, as_json)

    _run(body)


def _universal_table(result: UniversalResult, second: str) -> Table:
    table = Table(title=f"Universal representation ({result.kind}) (bits)")
    for col in ("target", "D", second, "R(target)", "needs Z"):
        table.add_column(col, justify="right")
    for i, ((D, c), r) in enumerate(zip(result.targets, result.target_rates_bits, strict=True)):
        table.add_row(
            str(i), _fmt(D, 4), _fmt(c, 4), _fmt(r), "yes" if i in result.active else "no"
        )
    table.caption = (
        f"R(Theta) = {result.rate_bits:.6f} (proven >= {result.lower_bound_bits:.6f});  "
        f"A(Theta) = {result.penalty_bits:.6f} (proven >= {result.penalty_lower_bits:.6f})"
    )
    return table


@app.command("universal-rdp")
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

    def body() -> None:
        p = as_pmf(_floats(pmf, "--pmf"), "--pmf")
        result = universal_rdp(p, _distortion(distortion, p.size), _targets(targets, "P"))
        _emit(result.as_dict(), _universal_table(result, "P"), as_json)

    _run(body)


@app.command("universal-rdc")
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

    def body() -> None:
        rows = [_floats(r, "--joint") for r in joint.split(";") if r.strip()]
        if len({len(r) for r in rows}) != 1:
            raise LossylearnError("--joint rows must have equal length")
        law = as_pmf(np.array(rows), "--joint")
        result = universal_rdc(law, _distortion(distortion, law.shape[0]), _targets(targets, "C"))
        _emit(result.as_dict(), _universal_table(result, "C"), as_json)

    _run(body)


@app.command("universal-gaussian")
def universal_gaussian_command(
    sigma: Annotated[float, typer.Option("--sigma", help="Source standard deviation.")] = 1.0,
    targets: Annotated[
        str, typer.Option("--targets", help="Targets 'D:P;D:P' (MSE, squared W2).")
    ] = "0.3:inf;0.45:0;0.35:0.02",
    as_json: JsonOpt = False,
) -> None:
    """R(Theta) of N(0, sigma^2) from Gaussian representations against max R(D, P): A = 0."""

    def body() -> None:
        ts = _targets(targets, "P")
        rates = [gaussian_rdp(D, P, sigma) for D, P in ts]
        universal = gaussian_universal_rdp(ts, sigma)
        table = Table(title=f"Gaussian universal R(Theta) (nats), sigma {sigma:g}")
        for col in ("D", "P", "R(D, P)"):
            table.add_column(col, justify="right")
        for (D, P), r in zip(ts, rates, strict=True):
            table.add_row(_fmt(D, 4), _fmt(P, 4), _fmt(r))
        table.caption = f"R(Theta) = {universal:.9f}, max R(D,P) = {max(rates):.9f}, A = {universal - max(rates):.2e}"
        _emit(
            {
                "unit": "nats",
                "targets": [list(t) for t in ts],
                "target_rates": rates,
                "universal_rate": universal,
                "penalty": universal - max(rates),
            },
            table,
            as_json,
        )

    _run(body)


def _noise(alphabet: int, level: float, noise_pmf: str | None) -> np.ndarray:
    if noise_pmf is None:
        return symmetric_noise(alphabet, level)
    law = as_pmf(_floats(noise_pmf, "--noise-pmf"), "--noise-pmf")
    if law.size != alphabet:
        raise LossylearnError(f"--noise-pmf has {law.size} entries; the alphabet has {alphabet}")
    return law


@app.command("lcon-check")
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
        float, typer.Option("--tol", help="Blahut-Arimoto certificate tolerance (nats).")
    ] = 1e-11,
    as_json: JsonOpt = False,
    plot: PlotOpt = None,
) -> None:
    """Check the LCoN theorem: R(Z^k, H(N)) = H(Z^k)/k - H(N) and posterior sampling."""

    def body() -> None:
        src = random_source(source, alphabet, np.random.default_rng(seed))
        noise = _noise(alphabet, noise_level, noise_pmf)
        rows = lcon_check(src, noise, tuple(range(1, k + 1)), tol=tol)
        payload_rows = []
        for r in rows:
            d = r.as_dict()
            d["leakage_bound_bits"] = privacy_leakage_bound(src, noise, r.k)
            d["abs_diff_bits"] = abs(r.rate_solver_bits - r.rate_formula_bits)
            payload_rows.append(d)
        table = Table(
            title=f"LCoN check: {source} source, Q = {alphabet}, H(N) = {entropy(noise):.4f} bits"
        )
        for col in (
            "k",
            "R solver",
            "formula",
            "|diff|",
            "TV recon",
            "TV joint",
            "slope/k ln2",
        ):
            table.add_column(col, justify="right")
        for r in payload_rows:
            table.add_row(
                str(r["k"]),
                f"{r['rate_solver_bits']:.9f}",
                f"{r['rate_formula_bits']:.9f}",
                f"{r['abs_diff_bits']:.1e}",
                f"{r['recon_tv']:.1e}",
                f"{r['joint_tv']:.1e}",
                f"{r['slope'] / (r['k'] * math.log(2)):.6f}",
            )
        table.caption = (
            "bits per symbol; formula = H(Z^k)/k - H(N); TV recon = TV(recon law, P_X^k); "
            f"leakage ceiling log2 Q - H(N) = {leakage_ceiling(noise):.4f}"
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

    _run(body)


@app.command("lcon-corollary")
def lcon_corollary_command(
    source: Annotated[str, typer.Option("--source", help="iid or markov.")] = "markov",
    alphabet: Annotated[int, typer.Option("--alphabet", min=2, help="Alphabet size Q.")] = 4,
    k: Annotated[int, typer.Option("--k", min=1, help="Check block lengths 1..k.")] = 2,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random source law.")] = 0,
    u_level: Annotated[float, typer.Option("--u-level", help="P(U != 0) of the part kept.")] = 0.2,
    w_level: Annotated[
        float, typer.Option("--w-level", help="P(W != 0) of the part removed.")
    ] = 0.2,
    as_json: JsonOpt = False,
) -> None:
    """Corollary V.1: a code matched to part W of N = U + W leaves reconstructions ~ X + U."""

    def body() -> None:
        src = random_source(source, alphabet, np.random.default_rng(seed))
        rows = corollary_check(
            src,
            symmetric_noise(alphabet, u_level),
            symmetric_noise(alphabet, w_level),
            tuple(range(1, k + 1)),
        )
        table = Table(title=f"Corollary V.1: {source} source, Q = {alphabet}")
        for col in ("k", "R solver", "H(Z^k)/k - H(W)", "TV(recon, X+U)", "TV(recon, X)"):
            table.add_column(col, justify="right")
        for r in rows:
            table.add_row(
                str(r.k),
                f"{r.rate_solver_bits:.9f}",
                f"{r.rate_formula_bits:.9f}",
                f"{r.tv_to_partially_noisy:.1e}",
                f"{r.tv_to_clean:.3f}",
            )
        _emit({"rows": [r.as_dict() for r in rows]}, table, as_json)

    _run(body)
