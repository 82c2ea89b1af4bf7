"""``lossylearn compress``, ``inspect`` and ``export``: make a store, check it, write it out as files.

Mounted on the root command by :mod:`lossylearn.cli.main`.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from lossylearn.cli.parse import (
    ExportFormat,
    MatchMode,
    MatchNoise,
    NoiseKind,
    RangeHandling,
    Unit,
    choices,
)
from lossylearn.errors import LossylearnError
from lossylearn.pipeline.plan import ENGINES

__all__ = ["compress", "export", "inspect"]

console = Console(stderr=True)
out_console = Console()
Engine = choices("Engine", ENGINES)

DATA = "Data"
NOISE = "Noise and privacy"
CODEC = "Codec"
RUN = "Output and run"


def compress(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="Store folder to create.", rich_help_panel=RUN)
    ],
    dataset: Annotated[
        str, typer.Option(help="mnist | fashion-mnist | celeba | folder.", rich_help_panel=DATA)
    ] = "mnist",
    data_dir: Annotated[
        Path | None,
        typer.Option(
            help="Dataset folder (mnist: embedded 5k digits when omitted).", rich_help_panel=DATA
        ),
    ] = None,
    split: Annotated[
        str, typer.Option(help="Which split to store: train | test.", rich_help_panel=DATA)
    ] = "train",
    attribute: Annotated[
        str, typer.Option(help="CelebA attribute used as label.", rich_help_panel=DATA)
    ] = "Male",
    image_size: Annotated[
        int | None,
        typer.Option(
            "--image-size",
            help="Side length after centre crop and resize (CelebA: 64 when omitted; folder: the "
            "images' own size, which must then be the same for all).",
            rich_help_panel=DATA,
        ),
    ] = None,
    limit: Annotated[
        int | None,
        typer.Option(help="Use only the first N images of the split.", rich_help_panel=DATA),
    ] = None,
    noise: Annotated[
        NoiseKind, typer.Option(help="Noise mechanism.", rich_help_panel=NOISE)
    ] = NoiseKind.gaussian,
    sigma: Annotated[
        float | None,
        typer.Option(help="Gaussian standard deviation, 0-255 pixel scale.", rich_help_panel=NOISE),
    ] = None,
    b: Annotated[
        float | None,
        typer.Option("--b", help="Laplace scale, 0-255 pixel scale.", rich_help_panel=NOISE),
    ] = None,
    psnr: Annotated[
        float | None,
        typer.Option(
            help="Nominal noise PSNR in dB: sigma = 255 * 10^(-PSNR/20).", rich_help_panel=NOISE
        ),
    ] = None,
    epsilon: Annotated[
        float | None,
        typer.Option(help="Privacy target epsilon (calibrates the noise).", rich_help_panel=NOISE),
    ] = None,
    delta: Annotated[
        float | None, typer.Option(help="Privacy target delta (Gaussian).", rich_help_panel=NOISE)
    ] = None,
    sensitivity: Annotated[
        float | None,
        typer.Option(
            help="Sensitivity in pixel units (default: 255 per pixel, or the image's L2/L1 range).",
            rich_help_panel=NOISE,
        ),
    ] = None,
    unit: Annotated[
        Unit,
        typer.Option(
            help="What the guarantee protects: one pixel or a whole image.", rich_help_panel=NOISE
        ),
    ] = Unit.pixel,
    discrete: Annotated[
        bool,
        typer.Option(
            "--discrete/--continuous",
            help="Exact integer noise (Canonne-Kamath-Steinke) instead of a float sampler.",
            rich_help_panel=NOISE,
        ),
    ] = False,
    range_handling: Annotated[
        RangeHandling,
        typer.Option(
            help="Noisy values outside 0..255: clip, or wrap mod 256 (the paper's mod-Q model).",
            rich_help_panel=NOISE,
        ),
    ] = RangeHandling.clip,
    codec: Annotated[
        str, typer.Option(help="jpeg | webp | avif | png | learned.", rich_help_panel=CODEC)
    ] = "jpeg",
    codec_checkpoint: Annotated[
        Path | None, typer.Option(help="Checkpoint for --codec learned.", rich_help_panel=CODEC)
    ] = None,
    match: Annotated[
        MatchMode,
        typer.Option(
            help="Search one quality for the dataset, or bisect per image.", rich_help_panel=CODEC
        ),
    ] = MatchMode.dataset,
    target_distortion: Annotated[
        float | None,
        typer.Option(
            help="Override the matched target (MSE for Gaussian, MAE for Laplace; 0-255 scale).",
            rich_help_panel=CODEC,
        ),
    ] = None,
    match_noise: Annotated[
        MatchNoise,
        typer.Option(
            help="nominal: MSE = sigma^2 / MAE = b (the paper). effective: the distortion the noise "
            "really adds after clipping to 0..255, estimated from the very noisy images that are stored (no clean data).",
            rich_help_panel=CODEC,
        ),
    ] = MatchNoise.nominal,
    match_sample: Annotated[
        int,
        typer.Option(
            help="Noisy images the dataset-wide quality search looks at.", rich_help_panel=CODEC
        ),
    ] = 256,
    tolerance: Annotated[
        float, typer.Option(help="Relative tolerance for 'target reached'.", rich_help_panel=CODEC)
    ] = 0.10,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Seeded noise (reproducible, not for deployment). Without it noise comes from the OS's secure generator.",
            rich_help_panel=RUN,
        ),
    ] = None,
    workers: Annotated[
        int,
        typer.Option(
            help="Worker processes (--engine ray: CPUs of a local Ray; on a cluster, 2 x WORKERS "
            "chunks in flight).",
            rich_help_panel=RUN,
        ),
    ] = 1,
    engine: Annotated[
        Engine,
        typer.Option(
            help="local: a process pool here; ray: Ray tasks (pip install 'lossylearn[ray]'), the "
            "same bytes.",
            rich_help_panel=RUN,
        ),
    ] = Engine.local,
    ray_address: Annotated[
        str | None,
        typer.Option(
            help="With --engine ray: the cluster to join (auto, HOST:PORT, ray://HOST:PORT); its "
            "nodes must share --out's filesystem. Default: start a local Ray.",
            rich_help_panel=RUN,
        ),
    ] = None,
    chunk_size: Annotated[int, typer.Option(help="Images per shard.", rich_help_panel=RUN)] = 1024,
    resume: Annotated[
        bool, typer.Option(help="Finish an interrupted run in --out.", rich_help_panel=RUN)
    ] = False,
    overwrite: Annotated[
        bool, typer.Option(help="Replace a store already in --out.", rich_help_panel=RUN)
    ] = False,
    allow_weak_noise: Annotated[
        bool,
        typer.Option(
            help="Accept noise that changes fewer than half of the pixels (the store would hold "
            "most clean pixels unchanged).",
            rich_help_panel=NOISE,
        ),
    ] = False,
    signing_key: Annotated[
        Path | None,
        typer.Option(
            help="File with a secret key (>= 16 bytes): sign the manifest with HMAC-SHA256 so "
            "that `inspect --signing-key` can prove it was not altered.",
            rich_help_panel=RUN,
        ),
    ] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="Print the manifest as JSON.", rich_help_panel=RUN)
    ] = False,
) -> None:
    """Noise a dataset, compress it with a matched codec, and write a private, learning-ready store.

    Examples:

      lossylearn compress --dataset mnist --noise gaussian --psnr 20 --codec jpeg --out S

      lossylearn compress --epsilon 1 --delta 1e-5 --unit pixel --discrete --out S2

      lossylearn compress --dataset celeba --data-dir CELEBA --noise laplace --b 20 --codec webp --out S3
    """
    from lossylearn.pipeline import compress as run

    if image_size is not None and dataset in ("mnist", "fashion-mnist"):
        raise LossylearnError("--image-size applies to celeba and folder datasets only")
    options: dict[str, Any] = {}
    if codec_checkpoint is not None:
        options["checkpoint"] = str(codec_checkpoint)
    manifest = run(
        out=out, dataset=dataset, data_dir=data_dir, split=split, attribute=attribute,
        image_size=image_size, limit=limit, noise=noise.value, sigma=sigma, b=b, psnr=psnr,
        epsilon=epsilon, delta=delta, sensitivity=sensitivity, unit=unit.value, discrete=discrete,
        range_handling=range_handling.value, codec=codec, codec_options=options, match=match.value,
        target_distortion=target_distortion, match_noise=match_noise.value, tolerance=tolerance, seed=seed, workers=workers,
        engine=engine.value, ray_address=ray_address,
        chunk_size=chunk_size, match_sample=match_sample, resume=resume, overwrite=overwrite,
        allow_weak_noise=allow_weak_noise, signing_key=_read_key(signing_key),
        progress=sys.stderr.isatty() and not as_json,
        warn=lambda msg: console.print(f"[yellow]warning:[/] {msg}"),
    )  # fmt: skip
    from lossylearn.store.owner import owner_path, read_clean_stats

    if as_json:
        out_console.print_json(json.dumps(manifest.to_dict()))
    else:
        from lossylearn.store.view import print_manifest

        print_manifest(manifest, out_console, directory=out, clean=read_clean_stats(out))
    console.print(
        f"owner file (clean-side figures, seed; keep it, never ship it): {owner_path(out)}",
        highlight=False,
    )


def _read_key(path: Path | None) -> bytes | None:
    """A signing key from a file: its raw bytes, at least 16 of them."""
    if path is None:
        return None
    try:
        key = path.read_bytes()
    except OSError as exc:
        raise LossylearnError(f"{path}: cannot read the signing key ({exc.strerror})") from None
    if len(key.strip()) < 16:
        raise LossylearnError(
            f"{path}: a signing key needs at least 16 bytes, got {len(key.strip())}"
        )
    return key.strip()


def inspect(
    store: Annotated[Path, typer.Argument(help="A store folder.")],
    grid: Annotated[
        Path | None,
        typer.Option(
            help="PNG grid of stored samples (default: STORE-samples.png beside the store)."
        ),
    ] = None,
    n: Annotated[int, typer.Option(help="How many samples in the grid.")] = 64,
    as_json: Annotated[bool, typer.Option("--json", help="Print the manifest as JSON.")] = False,
    verify: Annotated[
        bool,
        typer.Option(
            help="Check every file's checksum before anything else; --no-verify checks only the "
            "files the sample grid reads."
        ),
    ] = True,
    codec_checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="Learned-codec checkpoint, when not at its recorded path or beside the store."
        ),
    ] = None,
    signing_key: Annotated[
        Path | None,
        typer.Option(help="Key file the store was signed with: proves the manifest is unaltered."),
    ] = None,
) -> None:
    """Check a store (manifest digest, signature, checksums), print its manifest, and write a PNG
    grid of stored samples. The data owner also sees the clean-side figures of the owner file."""
    from lossylearn.store import open_store
    from lossylearn.store.owner import owner_path, read_clean_stats
    from lossylearn.store.view import print_manifest, sample_grid

    path = grid or store.resolve().parent / f"{store.resolve().name}-samples.png"
    if path.is_dir():
        raise LossylearnError(f"{path}: is a folder; give --grid a file name ending in .png")
    s = open_store(
        store,
        verify="full" if verify else "lazy",
        codec_checkpoint=codec_checkpoint,
        key=_read_key(signing_key),
    )
    clean = read_clean_stats(store) if owner_path(store).is_file() else None
    if as_json:
        out_console.print_json(json.dumps(s.manifest.to_dict()))
    else:
        print_manifest(s.manifest, out_console, directory=store, clean=clean)
    sample_grid(s, path, n=n)
    console.print(f"sample grid: {path}")


def export(
    store: Annotated[Path, typer.Argument(help="A store folder.")],
    dest: Annotated[
        Path,
        typer.Argument(
            help="Folder to create (or an empty one): one sub-folder per class, and labels.json "
            "mapping each label to its class name and folder (hf: Parquet files and a dataset "
            "card; webdataset: tar shards)."
        ),
    ],
    format: Annotated[
        ExportFormat,
        typer.Option(
            "--format",
            help="jpeg (a jpeg store's own bytes, headers put back), png (lossless copies of the reconstructions), native (each codec's standard file), hf (a Hugging Face datasets folder: datasets.load_dataset(DEST)), webdataset (tar shards for WebDataset loaders).",
        ),
    ] = ExportFormat.png,
    codec_checkpoint: Annotated[
        Path | None,
        typer.Option(
            help="Learned-codec checkpoint, when not at its recorded path or beside the store."
        ),
    ] = None,
    signing_key: Annotated[
        Path | None,
        typer.Option(help="Key file the store was signed with: refuse an altered manifest."),
    ] = None,
) -> None:
    """Write a store's images as standard image files that any decoder opens.

    All or nothing: a failure leaves DEST as it was. Class names become safe folder names (never
    '..' or a path; two classes never share a folder); labels.json keeps the exact names. hf and
    webdataset write loader-ready files with the privacy statement in a dataset card.
    """
    from lossylearn.export import export_store

    n = export_store(
        store, dest, fmt=format.value, codec_checkpoint=codec_checkpoint,
        key=_read_key(signing_key),
    )  # fmt: skip
    console.print(f"wrote {n} files to {dest}")
