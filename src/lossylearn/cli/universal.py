"""``lossylearn universal``: train a universal-representation checkpoint ``U/`` and manage its decoders.

The commands parse options only; :mod:`lossylearn.universal` does the work (torch loads there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

__all__ = ["app"]

console = Console(stderr=True)
out_console = Console()

app = typer.Typer(
    help="Universal representations: one public encoder at d log2 L bits per image, many decoders "
    "chosen when a store is read (compress --codec universal --codec-checkpoint U).",
    no_args_is_help=True,
    add_completion=False,
)


@app.command("train")
def train_cmd(
    out: Annotated[Path, typer.Option("--out", "-o", help="Checkpoint folder U to create.")],
    profile: Annotated[
        str, typer.Option(help="quick (about a minute on one core) | paper (adds a w1 decoder).")
    ] = "quick",
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="MNIST folder (official t10k files: the pool is the 5,000 embedded digits; "
            "without it, the 4,500 embedded training digits)."
        ),
    ] = None,
    dim: Annotated[int | None, typer.Option("--dim", help="Latent size d.")] = None,
    levels: Annotated[int | None, typer.Option("--levels", help="Quantizer levels L.")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the training (weights, batches, dither).")] = 0,
) -> None:
    """Train an encoder, its dithered quantizer and the decoders mse and ce (and w1 in the paper
    profile) on the PUBLIC part of the pool (its first 2,500 training digits); the rest is the
    private part a store protects, the official test set is for evaluation only. U/config.json
    records the rate, the decoders and the data each part saw.

    Example:

      lossylearn universal train --profile quick --out U --data-dir /data/mnist
    """
    from lossylearn.universal.train import train_universal

    with console.status("training"):
        train_universal(out, profile=profile, data_dir=data_dir, latent_dim=dim, levels=levels,
                        seed=seed, say=lambda m: console.print(m, highlight=False))  # fmt: skip
    _print(out)


@app.command("add-decoder")
def add_decoder_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="Checkpoint folder U.")],
    name: Annotated[str, typer.Option(help="Name of the new decoder.")] = "robust",
    epsilon: Annotated[
        float, typer.Option(help="Per-image epsilon whose latent noise the decoder learns to undo.")
    ] = 8.0,
    delta: Annotated[float, typer.Option(help="Delta of that noise.")] = 1e-5,
    clip_norm: Annotated[
        float | None, typer.Option(help="Clip norm C (default: the public latents' median norm).")
    ] = None,
    epochs: Annotated[int, typer.Option(help="Training epochs on the public part.")] = 8,
    data_dir: Annotated[Path | None, typer.Option(help="MNIST folder, as for train.")] = None,
    seed: Annotated[int, typer.Option(help="Training seed.")] = 0,
) -> None:
    """Train a noise-robust decoder on the frozen encoder (public data, latents clipped, noised at
    the sigma of EPSILON and quantized on the matched grid, as a store would hold them) and add
    it to U. Stores already written with U can decode through it at once (the encoder's
    fingerprint does not change)."""
    from lossylearn.universal.robust import train_robust_decoder

    train_robust_decoder(checkpoint, name=name, epsilon=epsilon, delta=delta,
                         clip_norm=clip_norm, epochs=epochs, data_dir=data_dir, seed=seed)  # fmt: skip
    _print(checkpoint)


@app.command("show")
def show_cmd(checkpoint: Annotated[Path, typer.Argument(help="Checkpoint folder U.")]) -> None:
    """Print a checkpoint's rate, decoders and data split."""
    _print(checkpoint)


def _print(path: Path) -> None:
    from lossylearn.universal.checkpoint import read_config

    c = read_config(path)
    pub, priv = c["data"]["public"], c["data"]["private"]
    out_console.print(
        f"{path}: d={c['net']['latent_dim']} L={c['net']['levels']}, {c['rate_bits']:.3f} bits per "
        f"image; decoders {', '.join(c['decoders'])}\npublic: train positions "
        f"{pub['positions'][0]}..{pub['positions'][1] - 1} ({pub['n']} digits, encoder and "
        f"decoders); private: positions {priv['positions'][0]}..{priv['positions'][1] - 1} "
        f"({priv['n']}); test split: evaluation only\nfingerprint {c['fingerprint'][:16]}",
        highlight=False,
    )


private_app = typer.Typer(
    name="private",
    help="Per-image private records: accuracy on clean test digits of a classifier trained only on "
    "stored records, against per-image epsilon (latent LCoN, latent noise alone, pixel LCoN).",
    add_completion=False,
    invoke_without_command=True,
)


@private_app.callback(invoke_without_command=True)
def private_study(
    out: Annotated[
        Path, typer.Option("--out", help="Output folder: results.json, accuracy.png, report.html.")
    ],
    profile: Annotated[
        str, typer.Option(help="quick (a few minutes on one core) | paper (7 epsilons, 3 seeds).")
    ] = "quick",
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="MNIST folder with the official t10k files (the test set); default: the "
            "embedded split (500 test digits)."
        ),
    ] = None,
    checkpoint: Annotated[
        Path | None, typer.Option(help="Use this universal checkpoint instead of training one.")
    ] = None,
) -> None:
    """Train a universal checkpoint on the public digits (or use --checkpoint), then for every
    epsilon, method, label mode and seed make the private records, train a classifier on them
    alone, and test it on clean digits. Seeded noise (a measurement): no store made here claims a
    guarantee. No weights are written to --out.

    Example:

      lossylearn study private --profile quick --out results/private-quick --data-dir /data/mnist
    """
    import shlex
    import sys

    from lossylearn.studies.private.profiles import get_profile
    from lossylearn.studies.private.run import run_private_study

    prof = get_profile(profile)
    command = "lossylearn " + " ".join(shlex.quote(a) for a in sys.argv[1:])
    result = run_private_study(prof, out=out, data_dir=data_dir, checkpoint=checkpoint,
                               command=command, log=lambda m: console.print(m, highlight=False))  # fmt: skip
    typer.echo(
        f"wrote {out / 'results.json'} ({len(result['rows'])} rows) and {out / 'report.html'}"
    )
