"""``lossylearn theory``: rate functions, their closed forms and the LCoN theorem, as tables/plots.

Every command prints a Rich table (or JSON with ``--json``) and writes a figure with
``--plot FILE``. The user's input is checked before any work (numbers that are NaN or out of
range, a figure path that cannot be written, a problem too large to finish in seconds unless the
user raises the limit); the refusals reach the root command's one error path.
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import typer

from lossylearn.cli import theory_tables as tt
from lossylearn.cli.parse import floats, pairs
from lossylearn.errors import LossylearnError
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
from lossylearn.theory.info import as_pmf
from lossylearn.theory.lcon import (
    LConRow,
    corollary_check,
    lcon_check,
)
from lossylearn.theory.rd import rate_distortion_curve
from lossylearn.theory.sources import MAX_BLOCK_SYMBOLS, random_source, symmetric_noise
from lossylearn.theory.universal import universal_rdc, universal_rdp

__all__ = ["app"]

app = typer.Typer(
    name="theory",
    help=(
        "Rate functions of finite and Gaussian sources: R(D) by Lagrangian slope solvers (SQP; Blahut-Arimoto available), R(D,P) and "
        "R(D,C) with their closed forms, universal R(Theta) and its penalty A(Theta), and "
        "numerical checks of the LCoN theorem (rate H(Z^k)/k - H(N), posterior sampling)."
    ),
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.command("rd")
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
        int,
        typer.Option("--points", min=2, help=f"Number of distortion levels (<= {tt.MAX_POINTS})."),
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
    ] = tt.DEFAULT_MAX_RD_SYMBOLS,
    as_json: tt.JsonOpt = False,
    plot: tt.PlotOpt = None,
) -> None:
    """Trace R(D) of a finite source (bits; Lagrangian slope solver, SQP by default), with Blahut's lower bounds."""
    if (pmf is None) == (gaussian_grid is None):
        raise LossylearnError("give exactly one of --pmf and --gaussian-grid")
    tt.symbol_limit(max_symbols)
    tt.points(points)
    tt.plot_target(plot)
    if pmf is not None:
        p = as_pmf(floats(pmf, "--pmf", nonneg=True, allow_inf=False), "--pmf")
        n = p.size
    else:
        n = int(gaussian_grid)  # type: ignore[arg-type]
    what = f"--pmf has {n} entries" if pmf is not None else f"--gaussian-grid {n}"
    tt.source_size(n, max_symbols, what)
    if pmf is not None:
        d = tt.distortion_matrix(distortion, p.size)
        label = f"pmf {pmf}, {distortion}"
    else:
        xs = np.linspace(-4.0, 4.0, n)
        p = np.exp(-0.5 * xs**2)
        p /= p.sum()
        d = (xs[:, None] - xs[None, :]) ** 2
        label = f"N(0,1) on {n} points, squared error"
    curve = rate_distortion_curve(p, d, n_points=points)
    rows = curve.as_rows()
    table = tt.table(
        f"R(D) (bits): {label}",
        ("D", "R(D) bits", "lower bound", "slope (nats/unit)"),
        (
            (
                tt.fmt(r["distortion"]),
                tt.fmt(r["rate_bits"]),
                tt.fmt(r["lower_bound_bits"]),
                tt.fmt(r["slope"], 4),
            )
            for r in rows
        ),
    )
    figure = tt.Figure(
        lambda: {"R(D)": (curve.distortions, curve.rates_bits)}, "D", "bits", f"R(D): {label}"
    )
    tt.show({"source": label, "rows": rows}, table, as_json, plot, figure)


@app.command("rdp-gaussian")
def rdp_gaussian_command(
    sigma: tt.SigmaOpt = 1.0,
    perception: Annotated[
        str, typer.Option("--perception", help="Squared-W2 levels P, e.g. 0,0.05,0.2,inf.")
    ] = "0,0.05,0.2,inf",
    points: Annotated[
        int, typer.Option("--points", min=2, help="Distortion levels in (0, 2 sigma^2].")
    ] = 12,
    as_json: tt.JsonOpt = False,
    plot: tt.PlotOpt = None,
) -> None:
    """R(D, P) of N(0, sigma^2), squared error, squared-W2 perception (closed form, nats)."""
    sigma = tt.positive(sigma, "--sigma")
    levels = floats(perception, "--perception", nonneg=True)
    tt.points(points)
    tt.plot_target(plot)
    ds = np.linspace(2.0 * sigma**2 / points, 2.0 * sigma**2, points)
    rows = [
        {
            "D": float(D),
            "R_D_nats": gaussian_rd(D, sigma),
            **{f"R_P={P:g}": gaussian_rdp(D, P, sigma) for P in levels},
        }
        for D in ds
    ]
    table = tt.table(
        f"Gaussian R(D, P) (nats), sigma = {sigma:g}",
        ("D", "R(D)", *(f"P = {P:g}" for P in levels)),
        (
            (tt.fmt(r["D"], 4), tt.fmt(r["R_D_nats"]), *(tt.fmt(r[f"R_P={P:g}"]) for P in levels))
            for r in rows
        ),
    )
    fine = np.linspace(ds[0] / 4, 2.0 * sigma**2, 200)
    figure = tt.Figure(
        lambda: {f"P = {P:g}": (fine, [gaussian_rdp(D, P, sigma) for D in fine]) for P in levels},
        "D (MSE)",
        "nats",
        f"Gaussian R(D, P), sigma = {sigma:g}",
    )
    tt.show({"sigma": sigma, "unit": "nats", "rows": rows}, table, as_json, plot, figure)


@app.command("rdp-binary")
def rdp_binary_command(
    p: tt.BernoulliOpt = 0.3,
    perception: Annotated[str, typer.Option("--perception", help="TV levels P.")] = "0,0.05,0.1,1",
    points: tt.BinaryPointsOpt = 11,
    check: tt.CheckOpt = False,
    as_json: tt.JsonOpt = False,
    plot: tt.PlotOpt = None,
) -> None:
    """R(D, P) of Bernoulli(p), Hamming distortion, total-variation perception (bits)."""
    levels = floats(perception, "--perception", nonneg=True)
    px = np.array([1.0 - p, p])
    tt.binary_table(
        "P",
        levels,
        points,
        check,
        lambda D, P: binary_rdp(p, D, P),
        lambda D, P: solve_rate_distortion_perception(px, tt.HAMMING2, D, P).rate_bits,
        title=f"Bernoulli({p:g}) R(D, P) (bits), Hamming / TV",
        plot_title=f"Bernoulli({p:g}) R(D, P)",
        payload={"p": p},
        as_json=as_json,
        plot=plot,
    )


@app.command("rdc-binary")
def rdc_binary_command(
    p: tt.BernoulliOpt = 0.3,
    flip: Annotated[float, typer.Option("--flip", help="Label S = X xor Bernoulli(flip).")] = 0.1,
    classification: Annotated[
        str, typer.Option("--classification", help="Levels C of H(S|Xhat) in bits.")
    ] = "0.5,0.6,0.7,1",
    points: tt.BinaryPointsOpt = 11,
    check: tt.CheckOpt = False,
    as_json: tt.JsonOpt = False,
    plot: tt.PlotOpt = None,
) -> None:
    """R(D, C) of Bernoulli(p) with a BSC(flip) label, Hamming distortion (bits)."""
    levels = floats(classification, "--classification", nonneg=True)
    joint = np.array([[(1 - p) * (1 - flip), (1 - p) * flip], [p * flip, p * (1 - flip)]])
    tt.binary_table(
        "C",
        levels,
        points,
        check,
        lambda D, C: binary_rdc(p, D, C, flip=flip),
        lambda D, C: solve_rate_distortion_classification(joint, tt.HAMMING2, D, C).rate_bits,
        title=f"Bernoulli({p:g}), label flip {flip:g}: R(D, C) (bits)",
        plot_title=f"Bernoulli({p:g}) R(D, C), flip {flip:g}",
        payload={"p": p, "flip": flip},
        as_json=as_json,
        plot=plot,
    )


@app.command("rdc-gaussian")
def rdc_gaussian_command(
    sigma: tt.SigmaOpt = 1.0,
    gain: Annotated[float, typer.Option("--gain", help="Label S = gain X + noise.")] = 1.0,
    label_noise: Annotated[float, typer.Option("--label-noise", help="Label noise std.")] = 0.5,
    classification: Annotated[
        str, typer.Option("--classification", help="Levels C of h(S|Xhat) in nats.")
    ] = "0.8,1.0,1.5",
    points: Annotated[
        int, typer.Option("--points", min=2, help="Distortion levels in (0, sigma^2].")
    ] = 10,
    as_json: tt.JsonOpt = False,
) -> None:
    """R(D, C) of N(0, sigma^2) with a Gaussian label, squared error (closed form, nats)."""
    sigma = tt.positive(sigma, "--sigma")
    if tt.finite(gain, "--gain") == 0:
        raise LossylearnError("--gain must be non-zero")
    tt.positive(label_noise, "--label-noise")
    # h(S|Xhat) is a differential entropy: C may be negative; inf means no constraint.
    levels = floats(classification, "--classification")
    tt.points(points)
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
    table = tt.table(
        f"Gaussian R(D, C) (nats), sigma {sigma:g}, gain {gain:g}, label noise {label_noise:g}",
        ("D", *(f"C = {C:g}" for C in levels)),
        ((tt.fmt(r["D"], 4), *(tt.fmt(r[f"R_C={C:g}"]) for C in levels)) for r in rows),
    )
    tt.show({"unit": "nats", "rows": rows}, table, as_json)


@app.command("universal-rdp")
def universal_rdp_command(
    pmf: Annotated[str, typer.Option("--pmf", help="Source law.")] = "0.7,0.3",
    targets: Annotated[
        str, typer.Option("--targets", help="Targets 'D:P;D:P' (TV perception).")
    ] = "0.15:1;0.16:0",
    distortion: tt.DistortionOpt = "hamming",
    as_json: tt.JsonOpt = False,
) -> None:
    """R(Theta) and A(Theta) for (D, P) targets on a finite source (exact, certified)."""
    p = as_pmf(floats(pmf, "--pmf", nonneg=True, allow_inf=False), "--pmf")
    result = universal_rdp(
        p, tt.distortion_matrix(distortion, p.size), pairs(targets, "--targets", "P")
    )
    tt.show(result.as_dict(), tt.universal_table(result, "P"), as_json)


@app.command("universal-rdc")
def universal_rdc_command(
    joint: Annotated[
        str, typer.Option("--joint", help="Joint law of (X, S): rows x separated by ';'.")
    ] = "0.63,0.07;0.03,0.27",
    targets: Annotated[
        str, typer.Option("--targets", help="Targets 'D:C;D:C' (C bounds H(S|Xhat) in bits).")
    ] = "0.05:1;0.3:0.6",
    distortion: tt.DistortionOpt = "hamming",
    as_json: tt.JsonOpt = False,
) -> None:
    """R(Theta) and A(Theta) for (D, C) targets (achievable rate with a proven lower bound)."""
    rows = [
        floats(r, "--joint", nonneg=True, allow_inf=False) for r in joint.split(";") if r.strip()
    ]
    if len({len(r) for r in rows}) != 1:
        raise LossylearnError("--joint rows must have equal length")
    law = as_pmf(np.array(rows), "--joint")
    result = universal_rdc(
        law, tt.distortion_matrix(distortion, law.shape[0]), pairs(targets, "--targets", "C")
    )
    tt.show(result.as_dict(), tt.universal_table(result, "C"), as_json)


@app.command("universal-gaussian")
def universal_gaussian_command(
    sigma: tt.SigmaOpt = 1.0,
    targets: Annotated[
        str, typer.Option("--targets", help="Targets 'D:P;D:P' (MSE, squared W2).")
    ] = "0.3:inf;0.45:0;0.35:0.02",
    as_json: tt.JsonOpt = False,
) -> None:
    """R(Theta) of N(0, sigma^2) from Gaussian representations against max R(D, P): A = 0."""
    sigma = tt.positive(sigma, "--sigma")
    ts = pairs(targets, "--targets", "P")
    rates = [gaussian_rdp(D, P, sigma) for D, P in ts]
    universal = gaussian_universal_rdp(ts, sigma)
    table = tt.table(
        f"Gaussian universal R(Theta) (nats), sigma {sigma:g}",
        ("D", "P", "R(D, P)"),
        ((tt.fmt(D, 4), tt.fmt(P, 4), tt.fmt(r)) for (D, P), r in zip(ts, rates, strict=True)),
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
    tt.show(payload, table, as_json)


@app.command("lcon-check")
def lcon_check_command(
    source: Annotated[
        str, typer.Option("--source", help="iid or markov (seeded Dirichlet law).")
    ] = "markov",
    alphabet: tt.AlphabetOpt = 4,
    k: tt.BlocksOpt = 3,
    seed: tt.SourceSeedOpt = 0,
    noise_level: Annotated[
        float, typer.Option("--noise-level", help="P(N != 0), spread evenly (mod-Q noise).")
    ] = 0.3,
    noise_pmf: Annotated[str | None, typer.Option("--noise-pmf", help="Explicit law of N.")] = None,
    tol: Annotated[
        float, typer.Option("--tol", help="Blahut-Arimoto certificate tolerance (nats, > 0).")
    ] = 1e-11,
    max_block: tt.MaxBlockOpt = tt.DEFAULT_MAX_BLOCK,
    as_json: tt.JsonOpt = False,
    plot: tt.PlotOpt = None,
) -> None:
    """Check the LCoN theorem: R(Z^k, H(N)) = H(Z^k)/k - H(N) and posterior sampling."""
    tol = tt.positive(tol, "--tol")
    tt.block_limit(alphabet, k, max_block)
    tt.plot_target(plot)
    noise = tt.noise_law(alphabet, noise_level, noise_pmf, "--noise-level")
    src = random_source(source, alphabet, tt.rng(seed))

    def run(kk: int) -> list[LConRow]:
        return lcon_check(src, noise, (kk,), tol=tol)

    rows: list[LConRow] = tt.each_block(range(1, k + 1), alphabet, run)
    payload, table = tt.lcon_report(src, noise, rows, source=source, seed=seed)
    tt.show(payload, table, as_json)
    if plot is not None:
        from lossylearn.theory.plots import plot_lcon

        plot_lcon(plot, payload["rows"], f"LCoN check, {source} Q={alphabet}")


@app.command("lcon-corollary")
def lcon_corollary_command(
    source: Annotated[str, typer.Option("--source", help="iid or markov.")] = "markov",
    alphabet: tt.AlphabetOpt = 4,
    k: tt.BlocksOpt = 2,
    seed: tt.SourceSeedOpt = 0,
    u_level: Annotated[float, typer.Option("--u-level", help="P(U != 0) of the part kept.")] = 0.2,
    w_level: Annotated[
        float, typer.Option("--w-level", help="P(W != 0) of the part removed.")
    ] = 0.2,
    max_block: tt.MaxBlockOpt = tt.DEFAULT_MAX_BLOCK,
    as_json: tt.JsonOpt = False,
) -> None:
    """Corollary V.1: a code matched to part W of N = U + W leaves reconstructions ~ X + U."""
    tt.block_limit(alphabet, k, max_block)
    u = symmetric_noise(alphabet, tt.level(u_level, "--u-level"))
    w = symmetric_noise(alphabet, tt.level(w_level, "--w-level"))
    src = random_source(source, alphabet, tt.rng(seed))
    rows = tt.each_block(range(1, k + 1), alphabet, lambda kk: corollary_check(src, u, w, (kk,)))
    table = tt.table(
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
    tt.show({"rows": [r.to_dict() for r in rows]}, table, as_json)
