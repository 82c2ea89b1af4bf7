"""``lossylearn compress``, ``inspect`` and ``export``: make a store, check it, write it out as files.

Mounted on the root command by :mod:`lossylearn.cli.main`.
"""

from __future__ import annotations

import json
import sys
from functools import partial
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console

from lossylearn.cli.parse import (
    RAY_ADDRESS_HELP,
    Engine,
    ExportFormat,
    MatchMode,
    MatchNoise,
    NoiseKind,
    RangeHandling,
    Unit,
)
from lossylearn.errors import LossylearnError

__all__ = ["compress", "export", "inspect"]

console = Console(stderr=True)
out_console = Console()

# ``compress``'s options, by the panel of ``--help`` that lists them.
_data = partial(typer.Option, rich_help_panel="Data")
_noise = partial(typer.Option, rich_help_panel="Noise and privacy")
_codec = partial(typer.Option, rich_help_panel="Codec")
_run = partial(typer.Option, rich_help_panel="Output and run")


def _signed_with(use: str) -> Any:
    """``--signing-key`` of a command that reads a store: the key file, and what it is ``use``d for."""
    return typer.Option(help=f"Key file the store was signed with: {use}.")


#: What ``inspect`` and ``export`` both take.
StoreArg = Annotated[Path, typer.Argument(help="A store folder.")]
CheckpointOpt = Annotated[
    Path | None,
    typer.Option(
        help="Learned-codec checkpoint, when not at its recorded path or beside the store."
    ),
]


def compress(
    out: Annotated[Path, _run("--out", "-o", help="Store folder to create.")],
    dataset: Annotated[str, _data(help="mnist | fashion-mnist | celeba | folder.")] = "mnist",
    data_dir: Annotated[
        Path | None, _data(help="Dataset folder (mnist: embedded 5k digits when omitted).")
    ] = None,
    split: Annotated[str, _data(help="Which split to store: train | test.")] = "train",
    attribute: Annotated[str, _data(help="CelebA attribute used as label.")] = "Male",
    image_size: Annotated[
        int | None,
        _data(
            "--image-size",
            help="Side length after centre crop and resize (CelebA: 64 when omitted; folder: the "
            "images' own size, which must then be the same for all).",
        ),
    ] = None,
    limit: Annotated[int | None, _data(help="Use only the first N images of the split.")] = None,
    noise: Annotated[NoiseKind, _noise(help="Noise mechanism.")] = NoiseKind.gaussian,
    sigma: Annotated[
        float | None, _noise(help="Gaussian standard deviation, 0-255 pixel scale.")
    ] = None,
    b: Annotated[float | None, _noise("--b", help="Laplace scale, 0-255 pixel scale.")] = None,
    psnr: Annotated[
        float | None, _noise(help="Nominal noise PSNR in dB: sigma = 255 * 10^(-PSNR/20).")
    ] = None,
    epsilon: Annotated[
        float | None, _noise(help="Privacy target epsilon (calibrates the noise).")
    ] = None,
    delta: Annotated[float | None, _noise(help="Privacy target delta (Gaussian).")] = None,
    sensitivity: Annotated[
        float | None,
        _noise(
            help="Sensitivity in pixel units (default: 255 per pixel, or the image's L2/L1 range)."
        ),
    ] = None,
    unit: Annotated[
        Unit, _noise(help="What the guarantee protects: one pixel or a whole image.")
    ] = Unit.pixel,
    discrete: Annotated[
        bool,
        _noise(
            "--discrete/--continuous",
            help="Exact integer noise (Canonne-Kamath-Steinke) instead of a float sampler.",
        ),
    ] = False,
    range_handling: Annotated[
        RangeHandling,
        _noise(
            help="Noisy values outside 0..255: clip, or wrap mod 256 (the paper's mod-Q model)."
        ),
    ] = RangeHandling.clip,
    noise_space: Annotated[
        str,
        _noise(
            help="pixel: noise on the pixels (default). latent (with --codec universal): clip the "
            "public encoder's latent to L2 norm --clip-norm, add Gaussian noise calibrated to "
            "--epsilon/--delta per image (sensitivity 2C), quantize on the matched grid."
        ),
    ] = "pixel",
    clip_norm: Annotated[
        float | None,
        _noise(help="--noise-space latent: clip norm C (default: the public latents' median norm)."),
    ] = None,
    label_epsilon: Annotated[
        float | None,
        _noise(
            help="--noise-space latent: k-ary randomized response on the labels at this epsilon, "
            "composed with the image guarantee into a per-record one (default: labels in the clear)."
        ),
    ] = None,
    skip_public: Annotated[
        bool,
        _data(help="--codec universal with noise: leave out images the encoder was trained on."),
    ] = False,
    codec: Annotated[str, _codec(help="jpeg | webp | avif | png | learned | universal.")] = "jpeg",
    codec_checkpoint: Annotated[
        Path | None, _codec(help="Checkpoint for --codec learned, or U for --codec universal.")
    ] = None,
    match: Annotated[
        MatchMode, _codec(help="Search one quality for the dataset, or bisect per image.")
    ] = MatchMode.dataset,
    target_distortion: Annotated[
        float | None,
        _codec(
            help="Override the matched target (MSE for Gaussian, MAE for Laplace; 0-255 scale)."
        ),
    ] = None,
    match_noise: Annotated[
        MatchNoise,
        _codec(
            help="nominal: MSE = sigma^2 / MAE = b (the paper). effective: the distortion the noise "
            "really adds after clipping to 0..255, estimated from the very noisy images that are stored (no clean data)."
        ),
    ] = MatchNoise.nominal,
    match_sample: Annotated[
        int, _codec(help="Noisy images the dataset-wide quality search looks at.")
    ] = 256,
    tolerance: Annotated[float, _codec(help="Relative tolerance for 'target reached'.")] = 0.10,
    seed: Annotated[
        int | None,
        _run(
            help="Seeded noise (reproducible, not for deployment). Without it noise comes from the OS's secure generator."
        ),
    ] = None,
    workers: Annotated[
        int,
        _run(
            help="Worker processes (--engine ray: CPUs of a local Ray; on a cluster, 2 x WORKERS "
            "chunks in flight)."
        ),
    ] = 1,
    engine: Annotated[
        Engine,
        _run(
            help="local: a process pool here; ray: Ray tasks (pip install 'lossylearn\\[ray]'), the "
            "same bytes."
        ),
    ] = Engine.local,
    ray_address: Annotated[str | None, _run(help=RAY_ADDRESS_HELP)] = None,
    chunk_size: Annotated[int, _run(help="Images per shard.")] = 1024,
    resume: Annotated[bool, _run(help="Finish an interrupted run in --out.")] = False,
    overwrite: Annotated[bool, _run(help="Replace a store already in --out.")] = False,
    allow_weak_noise: Annotated[
        bool,
        _noise(
            help="Accept noise that changes fewer than half of the pixels (the store would hold "
            "most clean pixels unchanged)."
        ),
    ] = False,
    signing_key: Annotated[
        Path | None,
        _run(
            help="File with a secret key (>= 16 bytes): sign the manifest with HMAC-SHA256 so "
            "that `inspect --signing-key` can prove it was not altered."
        ),
    ] = None,
    as_json: Annotated[bool, _run("--json", help="Print the manifest as JSON.")] = False,
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
    if codec == "universal" or noise_space != "pixel" or label_epsilon is not None:
        from lossylearn.universal.cli_compress import compress_from_cli

        manifest = compress_from_cli(locals())
    else:
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
    from lossylearn.pipeline.remote import is_remote, owner_url
    from lossylearn.store.fs import remote_url
    from lossylearn.store.owner import owner_path, read_clean_stats

    remote = is_remote(out)
    if as_json:
        out_console.print_json(json.dumps(manifest.to_dict()))
    else:
        from lossylearn.store.view import print_manifest

        clean = None if remote else read_clean_stats(out)
        print_manifest(manifest, out_console, directory=out, clean=clean)
    where = owner_url(str(remote_url(out))) if remote else owner_path(out)
    console.print(
        f"owner file (clean-side figures, seed; keep it, never ship it): {where}", highlight=False
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
    store: StoreArg,
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
    codec_checkpoint: CheckpointOpt = None,
    signing_key: Annotated[Path | None, _signed_with("proves the manifest is unaltered")] = None,
) -> None:
    """Check a store (manifest digest, signature, checksums), print its manifest, and write a PNG
    grid of stored samples. The data owner also sees the clean-side figures of the owner file."""
    from lossylearn.audit.link import read_link
    from lossylearn.store import open_store
    from lossylearn.store.owner import owner_path, read_clean_stats
    from lossylearn.store.view import print_audit_link, print_manifest, sample_grid

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
        link = read_link(store, s.manifest.run.get("id"))
        if link is not None:
            print_audit_link(link, out_console)
    sample_grid(s, path, n=n)
    console.print(f"sample grid: {path}")


def export(
    store: StoreArg,
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
            help="jpeg (a jpeg store's own bytes, headers put back), png (lossless copies of the reconstructions), native (each codec's standard file), hf (a Hugging Face datasets folder: datasets.load_dataset(DEST)), webdataset (tar shards for WebDataset loaders)."
        ),
    ] = ExportFormat.png,
    codec_checkpoint: CheckpointOpt = None,
    signing_key: Annotated[Path | None, _signed_with("refuse an altered manifest")] = None,
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
