"""``lossylearn study urdc``: the universal RDC/RDP study from the command line (thin wrapper)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from lossylearn.errors import LossylearnError

__all__ = ["app", "main"]

app = typer.Typer(
    name="urdc",
    help="Universal rate-distortion-classification/perception study on MNIST: one encoder, many decoders.",
    add_completion=False,
    no_args_is_help=False,
)


@app.callback(invoke_without_command=True)
def main(
    profile: str = typer.Option(
        "quick",
        "--profile",
        help="Grid and budget: quick (CI, minutes) or paper (the slides' grids, hours on a CPU).",
    ),
    out: Path = typer.Option(
        ...,
        "--out",
        help="Output folder (results.json, figures, report.html, models/); reruns resume.",
    ),
    data_dir: Path | None = typer.Option(
        None, "--data-dir", help="MNIST IDX folder; default: the embedded 5k digits."
    ),
    seed: int = typer.Option(0, "--seed", help="Seed of every model, and of the shared dither."),
    epochs: int | None = typer.Option(
        None, "--epochs", min=1, help="Override the profile's training epochs."
    ),
    limit: int | None = typer.Option(
        None, "--limit", min=20, help="Use only the first N images of each split."
    ),
    w1_steps: int | None = typer.Option(
        None, "--w1-steps", min=1, help="Override the W1 evaluation critic's steps."
    ),
    decoder: str | None = typer.Option(
        None, "--decoder", help="Override the decoder kind: conv (anchor) or mlp."
    ),
    rates: str | None = typer.Option(
        None, "--rates", help="Override the rates, e.g. 3x3,3x4,4x4 (d x L)."
    ),
    rdc_lambdas: str | None = typer.Option(
        None, "--rdc-lambdas", help="Override the lambda_c grid, e.g. 0,0.0066,0.015."
    ),
    rdp_lambdas: str | None = typer.Option(
        None, "--rdp-lambdas", help="Override the lambda_p grid ('' for none)."
    ),
    augment_shift: int | None = typer.Option(
        None,
        "--augment-shift",
        min=0,
        max=13,
        help="Override the encoders' random input shift in pixels (paper: 2; 0 turns it off).",
    ),
    device: str = typer.Option("auto", "--device", help="auto (CUDA when present), cpu or cuda."),
    threads: int = typer.Option(2, "--threads", min=1, help="CPU threads for torch."),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="Show Rich progress bars."
    ),
) -> None:
    """Train the classifier, end-to-end and universal models of a profile; write results and report."""
    from lossylearn.studies.urdc.study import (  # imports torch
        get_profile,
        override_profile,
        run_study,
    )

    console = Console(stderr=True)
    try:
        prof = override_profile(
            get_profile(profile),
            epochs=epochs,
            limit=limit,
            w1_steps=w1_steps,
            decoder=decoder,
            rates=rates,
            rdc_lambdas=rdc_lambdas,
            rdp_lambdas=rdp_lambdas,
            augment_shift=augment_shift,
        )
        result = run_study(
            prof,
            out=out,
            data_dir=data_dir,
            seed=seed,
            device=device,
            threads=threads,
            progress=progress,
            log=lambda s: console.print(s, highlight=False),
        )
    except LossylearnError as exc:
        console.print(f"error: {exc}", highlight=False)
        raise typer.Exit(code=2) from None
    for p in result.penalties:
        gap = "n/a" if p.max_gap is None else f"{p.max_gap:.1%}"
        console.print(
            f"penalty ({p.objective}) {p.encoder}: endpoint {p.endpoint:.1%}, max gap {gap}",
            highlight=False,
        )
    typer.echo(f"wrote {out / 'results.json'} ({len(result.rows)} rows) and {out / 'report.html'}")
