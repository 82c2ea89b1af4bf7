"""Command line of the LCoN study: ``lossylearn study lcon --profile quick --out DIR``.

``app`` is a Typer application whose callback runs the study, so it can be mounted as a sub-command
(``study_app.add_typer(app, name="lcon")``) or run on its own.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from ..errors import LossylearnError

__all__ = ["app", "parse_floats", "parse_ints"]

app = typer.Typer(
    help="Reproduce the LCoN paper's experiments on your data: Gaussian noise + JPEG (section VI-A, "
    "Fig. 2 and Fig. 3) or Laplacian noise + a learned MAE codec (--noise laplace --codec learned, "
    "section VI-B, Fig. 4).",
    add_completion=False,
    invoke_without_command=True,
)


def parse_floats(text: str | None, name: str) -> tuple[float, ...] | None:
    """'8.1,10.1' -> (8.1, 10.1); None stays None."""
    if text is None:
        return None
    try:
        vals = tuple(float(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise LossylearnError(f"--{name} takes comma-separated numbers, got {text!r}") from None
    if not vals:
        raise LossylearnError(f"--{name} needs at least one number")
    return vals


def parse_ints(text: str | None, name: str) -> tuple[int, ...] | None:
    """'0,1,2' -> (0, 1, 2); None stays None."""
    if text is None:
        return None
    try:
        vals = tuple(int(v) for v in text.replace(" ", "").split(",") if v)
    except ValueError:
        raise LossylearnError(f"--{name} takes comma-separated integers, got {text!r}") from None
    if not vals:
        raise LossylearnError(f"--{name} needs at least one integer")
    return vals


def _command(ctx: typer.Context) -> str:
    """The command line as given: the profile, then every option set on the command line."""
    prefix = ctx.command_path if "lcon" in ctx.command_path else "lossylearn study lcon"
    args: list[str] = ["--profile", str(ctx.params["profile"])]
    for p in ctx.command.params:
        if p.name == "profile" or not p.opts:
            continue
        source = ctx.get_parameter_source(p.name)  # type: ignore[arg-type]
        if source is None or source.name not in ("COMMANDLINE", "ENVIRONMENT"):
            continue
        v = ctx.params.get(p.name)  # type: ignore[arg-type]
        if isinstance(v, bool):
            secondary = getattr(p, "secondary_opts", [])
            flag = p.opts[0] if v else (secondary[0] if secondary else None)
            if flag:
                args.append(flag)
        elif v is not None:
            args += [p.opts[0], str(v)]
    return " ".join([prefix, *(shlex.quote(a) for a in args)])


@app.callback(invoke_without_command=True)
def lcon(
    ctx: typer.Context,
    out: Path = typer.Option(
        ...,
        "--out",
        help="Output folder (results.json, results.csv, figures/, report.html, stores/).",
    ),
    profile: str = typer.Option(
        "quick",
        "--profile",
        help="One of quick, paper: quick (CI-sized) or paper (the paper's grid, 3 seeds).",
    ),
    dataset: str = typer.Option(
        "mnist", "--dataset", help="mnist, fashion-mnist, celeba or folder."
    ),
    data_dir: Path | None = typer.Option(
        None,
        "--data-dir",
        help="Dataset folder (MNIST: the official t10k files give the 10k test set; CelebA: the aligned release).",
    ),
    attribute: str | None = typer.Option(
        None, "--attribute", help="CelebA attribute to classify (default Male)."
    ),
    image_size: int | None = typer.Option(
        None,
        "--image-size",
        help="Side length after centre crop and resize (CelebA: the profile's; folder: native size).",
    ),
    psnr: str | None = typer.Option(
        None,
        "--psnr",
        help="Comma-separated PSNR grid in dB (paper: 8.1,10.1,11.9,14.2,16.1,18.6,22.1).",
    ),
    seeds: str | None = typer.Option(None, "--seeds", help="Comma-separated training seeds."),
    n_train: int | None = typer.Option(
        None, "--n-train", help="Training pool size (default: profile)."
    ),
    n_test: int | None = typer.Option(None, "--n-test", help="Test images (default: profile)."),
    epochs: int | None = typer.Option(None, "--epochs"),
    batch_size: int | None = typer.Option(None, "--batch-size"),
    lr: float | None = typer.Option(None, "--lr"),
    model: str | None = typer.Option(None, "--model", help="cnn, resnet18, resnet34 or auto."),
    width: int | None = typer.Option(None, "--width", help="ResNet base width (64 = standard)."),
    noise: str | None = typer.Option(None, "--noise", help="gaussian (Fig. 2) or laplace."),
    codec: str | None = typer.Option(
        None, "--codec", help="Codec matched to the noise (jpeg, webp, avif, learned)."
    ),
    codec_fraction: float | None = typer.Option(
        None,
        "--codec-fraction",
        help="With --codec learned: share of the training pool held out to train the codec "
        "(never seen by a classifier; default 0.2).",
    ),
    codec_epochs: int | None = typer.Option(
        None, "--codec-epochs", help="With --codec learned: epochs of the first model per target."
    ),
    codec_rounds: int | None = typer.Option(
        None, "--codec-rounds", help="With --codec learned: most lambdas tried per target."
    ),
    match_noise: str | None = typer.Option(
        None,
        "--match-noise",
        help="nominal: the codec targets MSE = sigma^2 / MAE = b (the paper); effective: the "
        "distortion the noise really adds after clipping, estimated from the noisy images alone.",
    ),
    calibrate: bool | None = typer.Option(
        None,
        "--calibrate/--no-calibrate",
        help="Equal storage per scheme (default) or equal counts.",
    ),
    equal_steps: bool | None = typer.Option(
        None,
        "--equal-steps/--equal-epochs",
        help="Train every scheme for the same optimizer steps (default) or the same passes over its own set.",
    ),
    fgsm_eps: str | None = typer.Option(
        None, "--fgsm-eps", help="Comma-separated FGSM epsilons on the [0, 1] scale."
    ),
    pgd_eps: str | None = typer.Option(
        None, "--pgd-eps", help="Comma-separated PGD epsilons on the [0, 1] scale."
    ),
    pgd_steps: int | None = typer.Option(None, "--pgd-steps"),
    adv_n_test: int | None = typer.Option(
        None, "--adv-n-test", help="Test images used for the attacks (default: all)."
    ),
    distortion_sweep: bool | None = typer.Option(
        None, "--distortion-sweep/--no-distortion-sweep", help="Run the Fig. 3 sweep."
    ),
    sweep_variance: float | None = typer.Option(
        None,
        "--sweep-variance",
        help="Noise variance of the Fig. 3 sweep (0-255 scale; paper 1600).",
    ),
    sweep_factors: str | None = typer.Option(
        None, "--sweep-factors", help="Fig. 3 target distortions as multiples of the matched one."
    ),
    device: str | None = typer.Option(None, "--device", help="auto, cpu or cuda."),
    threads: int | None = typer.Option(None, "--threads", help="torch CPU threads."),
    workers: int | None = typer.Option(None, "--workers", help="Processes for compression."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
    overwrite: bool = typer.Option(
        False, "--overwrite", help="Replace a study with other settings in --out."
    ),
) -> None:
    """Train clean, noisy and LCoN classifiers at equal storage and test them on clean, noisy, LCoN
    and adversarial images; write results.json, results.csv, figures/ and report.html into --out."""
    if ctx.invoked_subcommand is not None:
        return
    from .lcon import profile_config, run_lcon_study  # torch loads only when the study runs

    console = Console(stderr=True)
    try:
        config = profile_config(
            profile, dataset=dataset, data_dir=str(data_dir) if data_dir else None, attribute=attribute,
            image_size=image_size, psnrs=parse_floats(psnr, "psnr"), seeds=parse_ints(seeds, "seeds"),
            n_train=n_train, n_test=n_test, epochs=epochs, batch_size=batch_size, lr=lr, model=model,
            width=width, noise=noise, codec=codec, codec_fraction=codec_fraction,
            codec_epochs=codec_epochs, codec_rounds=codec_rounds, match_noise=match_noise,
            calibrate=calibrate, equal_steps=equal_steps,
            fgsm_eps=parse_floats(fgsm_eps, "fgsm-eps"), pgd_eps=parse_floats(pgd_eps, "pgd-eps"),
            pgd_steps=pgd_steps, adv_n_test=adv_n_test, distortion_sweep=distortion_sweep,
            sweep_variance=sweep_variance, sweep_factors=parse_floats(sweep_factors, "sweep-factors"),
            device=device, threads=threads, workers=workers, progress=progress,
        )  # fmt: skip
        result = run_lcon_study(
            config,
            out,
            command=_command(ctx),
            overwrite=overwrite,
            console=console if progress else None,
        )
    except LossylearnError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=2) from None
    _print_summary(result)


def _print_summary(result: Any) -> None:
    out = Console()
    table = Table(title="LCoN study: the paper's claims here")
    table.add_column("claim")
    table.add_column("holds")
    for c in result.claims:
        table.add_row(c.statement, {True: "yes", False: "no", None: "n/a"}[c.holds])
    out.print(table)
    out.print(
        f"{len(result.rows)} result rows in {result.seconds:.0f} s; report: {result.out / 'report.html'}"
    )
