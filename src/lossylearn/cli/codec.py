"""``lossylearn codec train`` and ``lossylearn codec eval``: the learned (neural) image codec.

The commands only parse options; :func:`lossylearn.pipeline.codec_data.train_from_dataset` and
:func:`~lossylearn.pipeline.codec_data.evaluate_checkpoint` do the work (torch loads only there).
Both print the torch CPU thread count they ran on (``--threads``, default 1).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lossylearn.cli.parse import (
    Architecture,
    DeviceOpt,
    Distortion,
    TrainNoise,
    choices,
    ints,
    strings,
)
from lossylearn.errors import LossylearnError
from lossylearn.pipeline.codec_data import (
    DEFAULT_THREADS,
    evaluate_checkpoint,
    train_from_dataset,
)

__all__ = ["app"]

Recipe = choices("Recipe", ("joint", "separate"))
app = typer.Typer(
    help="Train and evaluate the learned (neural) image codec.",
    no_args_is_help=True,
    add_completion=False,
)


def _threads(threads: int) -> int:
    if threads < 1:
        raise LossylearnError(f"--threads must be at least 1, got {threads}")
    return threads


def _recipe(recipe: object) -> str:
    return str(getattr(recipe, "value", recipe))


@app.command("train")
def train_cmd(
    dataset: Annotated[
        str, typer.Option(help="Dataset name: mnist, fashion-mnist, celeba, folder.")
    ],
    out: Annotated[
        Path, typer.Option(help="Checkpoint folder to write (config.json + weights.pt).")
    ],
    data_dir: Annotated[
        Path | None, typer.Option(help="Dataset folder (mnist: embedded 5k without it).")
    ] = None,
    split: Annotated[
        str, typer.Option(help="Which split trains the codec: train or test.")
    ] = "train",
    limit: Annotated[
        int | None, typer.Option(help="Use only the first N images of the split.")
    ] = None,
    distortion: Annotated[
        Distortion | None,
        typer.Option(help="mse or mae (default: mae for Laplace noise, else mse)."),
    ] = None,
    lmbda: Annotated[
        list[float] | None, typer.Option(help="Rate-distortion trade-off; repeat for a ladder.")
    ] = None,
    target_distortion: Annotated[
        float | None, typer.Option(help="Search lambda to reach this MSE/MAE (0-255 scale).")
    ] = None,
    noise: Annotated[
        TrainNoise, typer.Option(help="Train on noisy copies: gaussian (sigma) or laplace (b).")
    ] = TrainNoise.none,
    noise_scale: Annotated[
        float | None, typer.Option(help="sigma or b of the noise, 0-255 units.")
    ] = None,
    architecture: Annotated[
        Architecture, typer.Option(help="factorized (2017) or hyperprior (2018).")
    ] = Architecture.factorized,
    preset: Annotated[
        str | None, typer.Option(help="Model size: mnist (28x28 grey) or rgb64 (64x64 RGB).")
    ] = None,
    recipe: Annotated[
        Recipe,  # type: ignore[valid-type]
        typer.Option(
            help="Ladder training: joint (one variable-rate network for all --lmbda, the cost of "
            "one model) or separate (one model per lambda)."
        ),
    ] = Recipe.joint,  # type: ignore[attr-defined]
    epochs: Annotated[
        int | None,
        typer.Option(
            help="Passes over the images, per lambda with --recipe joint (default 20 joint, "
            "10 separate)."
        ),
    ] = None,
    finetune_epochs: Annotated[
        int | None, typer.Option(help="Warm-start further models for this many epochs.")
    ] = None,
    batch_size: Annotated[
        int, typer.Option(help="Images per step (per lambda with --recipe joint).")
    ] = 16,
    lr: Annotated[
        float | None, typer.Option(help="Adam learning rate (default 2e-3 joint, 1e-3 separate).")
    ] = None,
    seed: Annotated[int, typer.Option(help="Seed for initialization, batches and noise.")] = 0,
    device: DeviceOpt = "auto",
    threads: Annotated[
        int,
        typer.Option(
            help="torch CPU threads (default 1: measured fastest, and never stalls when another "
            "process shares the cores; see benchmarks/codec_speed.py)."
        ),
    ] = DEFAULT_THREADS,
    tolerance: Annotated[
        float, typer.Option(help="Relative tolerance of --target-distortion.")
    ] = 0.05,
    max_rounds: Annotated[
        int, typer.Option(help="Lambda search rounds for --target-distortion.")
    ] = 6,
    max_steps: Annotated[
        int | None, typer.Option(help="Stop each model after this many steps.")
    ] = None,
    overwrite: Annotated[
        bool, typer.Option(help="Replace an existing checkpoint in --out.")
    ] = False,
    progress: Annotated[bool, typer.Option(help="Show progress bars.")] = True,
) -> None:
    """Train a learned codec (one lambda, a lambda ladder, or a target distortion).

    The defaults are the fast recipe: one variable-rate network for all --lmbda at once.
    """
    summary = train_from_dataset(
        dataset=dataset, out=out, data_dir=data_dir, split=split, limit=limit,
        distortion=distortion.value if distortion else None, lmbdas=lmbda or None,
        target=target_distortion, noise=noise.value, noise_scale=noise_scale,
        architecture=architecture.value, preset=preset, epochs=epochs,
        finetune_epochs=finetune_epochs, batch_size=batch_size, lr=lr, seed=seed,
        device=device, tolerance=tolerance, max_rounds=max_rounds, max_steps=max_steps,
        overwrite=overwrite, progress=progress, threads=_threads(threads), recipe=_recipe(recipe),
    )  # fmt: skip
    for r in summary.rungs:
        typer.echo(
            "  "
            + "  ".join(
                f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in r.items()
            )
        )
    typer.echo(
        f"{summary.message}; wrote {summary.checkpoint} in {summary.seconds:.0f} s "
        f"on {summary.threads} torch thread(s)"
    )


@app.command("eval")
def eval_cmd(
    checkpoint: Annotated[Path, typer.Option(help="Checkpoint folder written by 'codec train'.")],
    dataset: Annotated[str, typer.Option(help="Dataset name (same kinds of images as training).")],
    out: Annotated[Path, typer.Option(help="Folder for results.json and rd.png.")],
    data_dir: Annotated[Path | None, typer.Option(help="Dataset folder.")] = None,
    split: Annotated[str, typer.Option(help="Split to evaluate on.")] = "test",
    limit: Annotated[int | None, typer.Option(help="Use only the first N images.")] = None,
    baselines: Annotated[
        str, typer.Option(help="Comma-separated codecs to compare with.")
    ] = "jpeg,webp,avif",
    baseline_qualities: Annotated[
        str | None, typer.Option(help="Comma-separated qualities for the baselines.")
    ] = None,
    threads: Annotated[
        int, typer.Option(help="torch CPU threads (default 1, measured fastest).")
    ] = DEFAULT_THREADS,
) -> None:
    """Rate-distortion of the learned codec vs JPEG/WebP/AVIF: results.json, BD-rates, rd.png."""
    n_threads = _threads(threads)
    result = evaluate_checkpoint(
        checkpoint=checkpoint, dataset=dataset, out=out, data_dir=data_dir, split=split,
        limit=limit, baselines=strings(baselines),
        baseline_qualities=ints(baseline_qualities or None, "--baseline-qualities"),
        threads=n_threads,
    )  # fmt: skip
    for r in result.rows:
        if r.codec == "learned":
            typer.echo(
                f"  learned q{r.quality} lambda={r.lmbda:.4g}: {r.bpp:.3f} bpp "
                f"(estimate {r.bpp_estimated:.3f}), PSNR {r.psnr:.2f} dB, MAE {r.mae:.2f}"
            )
    for name, v in result.bd_rate.items():
        typer.echo(
            f"  BD-rate vs {name}: " + (f"{v:+.1f}%" if v is not None else "n/a (no overlap)")
        )
    typer.echo(f"wrote {out / 'results.json'} and {out / 'rd.png'} ({n_threads} torch thread(s))")
