"""``lossylearn study lcon`` and ``lossylearn study urdc``: the experiments, as thin wrappers.

Each study is a Typer application whose callback runs it (``lcon_app``, ``urdc_app``), mounted on
:data:`app` (``lossylearn study``). The studies, and torch, load only inside the callbacks.
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from lossylearn.cli.parse import RAY_ADDRESS_HELP, DeviceOpt, Engine, floats, ints

__all__ = ["app", "lcon_app", "urdc_app"]

#: The options both studies take alike.
EngineOpt = Annotated[
    Engine,
    typer.Option(
        help="local: every model here; ray: one Ray task per model (a GPU each when the cluster "
        "has them), failed ones retried, then reported (pip install 'lossylearn\\[ray]')."
    ),
]
RayAddressOpt = Annotated[str | None, typer.Option(help=RAY_ADDRESS_HELP)]

app = typer.Typer(
    help="Experiments with quick (CI-sized) and paper profiles: results.json, figures, report.html.",
    no_args_is_help=True,
)

lcon_app = typer.Typer(
    help="Reproduce the LCoN paper's experiments on your data: Gaussian noise + JPEG (section VI-A, "
    "Fig. 2 and Fig. 3) or Laplacian noise + a learned MAE codec (--noise laplace --codec learned, "
    "section VI-B, Fig. 4).",
    add_completion=False,
    invoke_without_command=True,
)

urdc_app = typer.Typer(
    name="urdc",
    help="Universal rate-distortion-classification/perception study on MNIST: one encoder, many decoders.",
    add_completion=False,
    no_args_is_help=False,
)


def _command(ctx: typer.Context, study: str) -> str:
    """The command line as given: the profile, then every option set on the command line."""
    prefix = f"lossylearn study {study}"
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


@lcon_app.callback(invoke_without_command=True)
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
    engine: EngineOpt = Engine.local,
    ray_address: RayAddressOpt = None,
) -> None:
    """Train clean, noisy and LCoN classifiers at equal storage and test them on clean, noisy, LCoN
    and adversarial images; write results.json, results.csv, figures/ and report.html into --out."""
    if ctx.invoked_subcommand is not None:
        return
    from lossylearn.studies.lcon import profile_config, run_lcon_study  # loads torch

    config = profile_config(
        profile, dataset=dataset, data_dir=str(data_dir) if data_dir else None, attribute=attribute,
        image_size=image_size, psnrs=floats(psnr, "--psnr"), seeds=ints(seeds, "--seeds"),
        n_train=n_train, n_test=n_test, epochs=epochs, batch_size=batch_size, lr=lr, model=model,
        width=width, noise=noise, codec=codec, codec_fraction=codec_fraction,
        codec_epochs=codec_epochs, codec_rounds=codec_rounds, match_noise=match_noise,
        calibrate=calibrate, equal_steps=equal_steps,
        fgsm_eps=floats(fgsm_eps, "--fgsm-eps"), pgd_eps=floats(pgd_eps, "--pgd-eps"),
        pgd_steps=pgd_steps, adv_n_test=adv_n_test, distortion_sweep=distortion_sweep,
        sweep_variance=sweep_variance, sweep_factors=floats(sweep_factors, "--sweep-factors"),
        device=device, threads=threads, workers=workers, progress=progress,
    )  # fmt: skip
    result = run_lcon_study(
        config,
        out,
        command=_command(ctx, "lcon"),
        overwrite=overwrite,
        console=Console(stderr=True) if progress else None,
        engine=engine.value,
        ray_address=ray_address,
    )
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


@urdc_app.callback(invoke_without_command=True)
def urdc(
    ctx: typer.Context,
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
    shared_heads: str | None = typer.Option(
        None,
        "--shared-heads",
        help="lambda_c of the shared encoder's heads, e.g. 0,0.015,0.05 (default: 0 and the grid's top).",
    ),
    shared_warm_start: bool | None = typer.Option(
        None,
        "--shared-warm-start/--no-shared-warm-start",
        help="Curriculum: the shared encoder starts from the trained MSE-only encoder.",
    ),
    device: DeviceOpt = "auto",
    threads: int = typer.Option(2, "--threads", min=1, help="CPU threads for torch."),
    progress: bool = typer.Option(
        True, "--progress/--no-progress", help="Show Rich progress bars."
    ),
    engine: EngineOpt = Engine.local,
    ray_address: RayAddressOpt = None,
) -> None:
    """Train the classifier, end-to-end and universal models of a profile; write results and report."""
    # the study, and torch, load only here
    from lossylearn.studies.urdc.study import get_profile, override_profile, run_study

    console = Console(stderr=True)
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
        shared_heads=shared_heads,
        shared_warm_start=shared_warm_start,
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
        engine=engine.value,
        ray_address=ray_address,
        command=_command(ctx, "urdc"),
    )
    for p in result.penalties:
        gap = "n/a" if p.max_gap is None else f"{p.max_gap:.1%}"
        console.print(
            f"penalty ({p.objective}) {p.encoder}: endpoint {p.endpoint:.1%}, max gap {gap}",
            highlight=False,
        )
    typer.echo(f"wrote {out / 'results.json'} ({len(result.rows)} rows) and {out / 'report.html'}")


app.add_typer(lcon_app, name="lcon")
app.add_typer(urdc_app, name="urdc")

from lossylearn.cli.universal import private_app  # noqa: E402

app.add_typer(private_app, name="private")

from lossylearn.cli.audit import privacy_app  # noqa: E402

app.add_typer(privacy_app, name="privacy")
