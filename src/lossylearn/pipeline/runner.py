"""``compress``: the LCoN run, from clean images to a committed store.

Steps: load the split; resolve the noise and its privacy guarantee; fix a processing order (a
permutation seeded independently of the noise, so the first chunk is a fair sample); noise the first
chunk and, with ``match="dataset"``, search the codec quality whose mean distortion to the first
``match_sample`` of those noisy images is the noise's (MSE = sigma^2 or MAE = b); code every chunk into a Parquet shard on a
process pool; write the shared headers; then commit the manifest. The quality search sees only
noisy images, so it is post-processing of the private release and costs no privacy.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import os
import sys
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from lossylearn import __version__
from lossylearn.codecs import MatchResult, get_codec, match_quality
from lossylearn.data import ImageDataset, load_dataset
from lossylearn.errors import LossylearnError
from lossylearn.pipeline.chunks import ChunkResult, ChunkTask, finish_chunk, noise_chunk, run_chunk
from lossylearn.pipeline.run_state import prepare_output
from lossylearn.pipeline.summary import build_manifest
from lossylearn.privacy import resolve_noise
from lossylearn.store.layout import (
    MANIFEST,
    RUN_STATE,
    atomic_write_bytes,
    atomic_write_json,
    header_name,
)
from lossylearn.store.manifest import Manifest, read_manifest

ORDER_SEED = 20220626
"""Seed of the processing-order permutation. Fixed and public: it decides order, never noise."""

MATCH_MODES = ("dataset", "image")
MATCH_NOISE = ("nominal", "effective")


def _validate_images(images: np.ndarray, labels: np.ndarray) -> None:
    if not isinstance(images, np.ndarray) or images.dtype != np.uint8 or images.ndim != 4:
        raise LossylearnError(
            f"images must be a uint8 array (N, H, W, C); got {getattr(images, 'dtype', type(images))} "
            f"with shape {getattr(images, 'shape', '?')}"
        )
    if images.shape[-1] not in (1, 3):
        raise LossylearnError(f"images must have 1 or 3 channels, got {images.shape[-1]}")
    if len(labels) != len(images):
        raise LossylearnError(f"{len(images)} images but {len(labels)} labels")
    if len(images) == 0:
        raise LossylearnError("no images to compress")


def _select_split(
    dataset: str | ImageDataset,
    data_dir: str | Path | None,
    split: str,
    limit: int | None,
    **opts: Any,
) -> tuple[np.ndarray, np.ndarray, dict[str, Any]]:
    ds = (
        dataset
        if isinstance(dataset, ImageDataset)
        else load_dataset(dataset, data_dir, limit=limit, **opts)
    )
    if split not in ("train", "test"):
        raise LossylearnError(f"unknown split {split!r}; choose train or test")
    images, labels = ds.split(split)
    if limit is not None:
        images, labels = images[:limit], labels[:limit]
    info = {"name": ds.name, "split": split, "source": ds.source, "classes": list(ds.classes)}
    return images, labels, info


def _one_thread_per_worker() -> None:
    # Workers already run in parallel; torch's intra-op threads would only fight over the cores.
    os.environ["OMP_NUM_THREADS"] = "1"
    if "torch" in sys.modules:
        sys.modules["torch"].set_num_threads(1)


def _pool(workers: int) -> ProcessPoolExecutor:
    # fork is fast and safe for the Pillow codecs; once torch is loaded (learned codec) use spawn.
    method = "spawn" if "torch" in sys.modules else "fork"
    return ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context(method),
        initializer=_one_thread_per_worker,
    )


def _bounded_map(
    fn: Callable[[ChunkTask], ChunkResult], tasks: Iterator[ChunkTask], workers: int
) -> Iterator[ChunkResult]:
    """Run tasks in order of submission with at most 2 * workers in flight (memory stays flat)."""
    if workers <= 1:
        for t in tasks:
            yield fn(t)
        return
    with _pool(workers) as pool:
        pending: list[Future[ChunkResult]] = []
        for t in tasks:
            pending.append(pool.submit(fn, t))
            while len(pending) >= 2 * workers:
                yield pending.pop(0).result()
        for f in pending:
            yield f.result()


def _progress(enabled: bool, total: int, done: int) -> Any:
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    progress = Progress(
        TextColumn("[bold]compress"),
        BarColumn(),
        MofNCompleteColumn(),
        TextColumn("images"),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
        disable=not enabled,
        transient=False,
    )
    task = progress.add_task("compress", total=total, completed=done)
    return progress, task


def compress(
    *,
    out: str | Path,
    dataset: str | ImageDataset = "mnist",
    data_dir: str | Path | None = None,
    split: str = "train",
    attribute: str = "Male",
    image_size: int = 64,
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    noise: str = "gaussian",
    sigma: float | None = None,
    b: float | None = None,
    psnr: float | None = None,
    epsilon: float | None = None,
    delta: float | None = None,
    sensitivity: float | None = None,
    unit: str = "pixel",
    discrete: bool = False,
    range_handling: str = "clip",
    codec: str = "jpeg",
    codec_options: dict[str, Any] | None = None,
    match: str = "dataset",
    target_distortion: float | None = None,
    match_noise: str = "nominal",
    tolerance: float = 0.10,
    seed: int | None = None,
    workers: int = 1,
    chunk_size: int = 1024,
    match_sample: int = 256,
    limit: int | None = None,
    resume: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    warn: Callable[[str], None] | None = None,
) -> Manifest:
    """Noise a dataset, compress it with a codec matched to the noise, and commit a store at ``out``.

    Give either ``dataset`` (+ ``data_dir``) or ``images`` and ``labels`` arrays. Exactly one noise
    strength: ``sigma``/``b``, ``psnr``, or ``epsilon`` (+ ``delta``). Returns the manifest written to
    ``out/manifest.json``. A codec that cannot reach the target still produces a store at the closest
    distortion it reaches; ``warn`` (default: stderr) receives the explanation.
    """
    started = time.time()
    if match not in MATCH_MODES:
        raise LossylearnError(f"unknown --match {match!r}; choose one of {', '.join(MATCH_MODES)}")
    if workers < 1:
        raise LossylearnError(f"--workers must be at least 1, got {workers}")
    if chunk_size < 1:
        raise LossylearnError(f"chunk size must be at least 1, got {chunk_size}")
    if match_sample < 1:
        raise LossylearnError(f"match sample must be at least 1 image, got {match_sample}")
    if tolerance <= 0:
        raise LossylearnError(f"tolerance must be positive, got {tolerance}")
    if target_distortion is not None and target_distortion < 0:
        raise LossylearnError(f"--target-distortion must be >= 0, got {target_distortion}")
    if match_noise not in MATCH_NOISE:
        raise LossylearnError(
            f"unknown --match-noise {match_noise!r}; choose one of {', '.join(MATCH_NOISE)}"
        )
    warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))
    out = Path(out)

    if images is not None:
        if labels is None:
            raise LossylearnError("images given without labels")
        clean, lab = images, np.asarray(labels)
        if limit is not None:
            clean, lab = clean[:limit], lab[:limit]
        ds_info: dict[str, Any] = {"name": "arrays", "split": split, "source": "in-memory arrays"}
    else:
        clean, lab, ds_info = _select_split(
            dataset, data_dir, split, limit, attribute=attribute, image_size=image_size
        )
    _validate_images(clean, lab)
    lab = lab.astype(np.int64)
    shape = tuple(int(v) for v in clean.shape[1:])

    spec, guarantee = resolve_noise(
        kind=noise, sigma=sigma, b=b, psnr=psnr, epsilon=epsilon, delta=delta,
        sensitivity=sensitivity, unit=unit, image_shape=shape, discrete=discrete,
        range_handling=range_handling, seeded=seed is not None,
    )  # fmt: skip
    codec_options = dict(codec_options or {})
    coder = get_codec(codec, **codec_options)
    metric, matched = spec.matched_target()
    n = len(clean)
    order = np.random.default_rng(ORDER_SEED).permutation(n)
    basis = "given" if target_distortion is not None else match_noise
    if target_distortion is not None:
        target = float(target_distortion)
    elif match_noise == "effective":
        target = _effective_target(clean[order[:chunk_size]], spec, metric, seed)
    else:
        target = float(matched)
    n_chunks = (n + chunk_size - 1) // chunk_size
    config = {
        "lossylearn": __version__,
        "dataset": ds_info,
        "data_sha256": hashlib.sha256(clean.tobytes() + lab.tobytes()).hexdigest(),
        "n_images": n,
        "noise": spec.to_dict(),
        "codec": {"name": codec, "options": codec_options},
        "match": match,
        "target": target,
        "target_basis": basis,
        "metric": metric,
        "tolerance": tolerance,
        "seed": seed,
        "chunk_size": chunk_size,
        "match_sample": match_sample,
    }
    state, complete = prepare_output(out, config=config, resume=resume, overwrite=overwrite)
    if complete:
        manifest = read_manifest(out)
        (out / RUN_STATE).unlink(missing_ok=True)
        return manifest

    def task(k: int, quality: int | None) -> ChunkTask:
        idx = order[k * chunk_size : (k + 1) * chunk_size]
        return ChunkTask(
            chunk=k, indices=idx.astype(np.int64), images=clean[idx], labels=lab[idx], spec=spec,
            codec_name=codec, codec_options=codec_options, quality=quality, target=target,
            metric=metric, tolerance=tolerance, seed=seed, out_dir=str(out),
        )  # fmt: skip

    done = state.valid_chunks()
    if 0 not in done:
        first = task(0, None)
        noisy0 = noise_chunk(first)
        quality: int | None = None
        if match == "dataset":
            sample = noisy0[:match_sample]
            result = match_quality(coder, sample, target, metric, tolerance=tolerance)
            quality = result.quality
            state.match = _match_record(result, len(sample))
        else:
            state.match = {"method": "image", "tolerance": tolerance}
        res0 = finish_chunk(task(0, quality), noisy0)
        done[0] = res0.to_dict()
        state.chunks = dict(done)
        state.save()
    assert state.match is not None
    quality = state.match.get("quality")

    todo = [k for k in range(n_chunks) if k not in done]
    bar, bar_task = _progress(progress, n, sum(r["n_images"] for r in done.values()))
    with bar:
        for res in _bounded_map(run_chunk, (task(k, quality) for k in todo), workers):
            done[res.chunk] = res.to_dict()
            state.chunks = dict(done)
            state.save()
            bar.update(bar_task, advance=res.n_images)

    results = [ChunkResult(**done[k]) for k in range(n_chunks)]
    used = sorted({int(q) for r in results for q in r.qualities})
    headers: dict[str, bytes] = {
        header_name(coder.name, q): coder.shared_header(q, shape) for q in used
    }  # type: ignore[arg-type]
    for rel, data in headers.items():
        if data:
            atomic_write_bytes(out / rel, data)
    manifest = build_manifest(
        n=n, shape=shape, ds_info=ds_info, spec=spec, guarantee=guarantee, coder=coder,
        codec_options=codec_options, match=state.match, target=target, target_basis=basis,
        metric=metric,
        tolerance=tolerance, results=results, headers={k: v for k, v in headers.items() if v},
        run={"seed": seed, "workers": workers, "chunk_size": chunk_size, "order_seed": ORDER_SEED,
             "lossylearn": __version__, "seconds": round(time.time() - started, 3)},
    )  # fmt: skip
    if not manifest.target_reached:
        warn(manifest.codec["message"])
    atomic_write_json(out / MANIFEST, manifest.to_dict())
    (out / RUN_STATE).unlink(missing_ok=True)
    return manifest


def _effective_target(first_chunk: np.ndarray, spec: Any, metric: str, seed: int | None) -> float:
    """The clean-to-noisy distortion after clipping, estimated from chunk 0's noisy images alone.

    They are the very images chunk 0 stores (same seed and stream), so the estimate is
    post-processing of the released data; that is why it needs a seed (the OS generator cannot
    draw the same noise twice, and a second draw would be a second release).
    """
    from lossylearn.privacy import NoiseSource, add_noise
    from lossylearn.privacy.effective import effective_distortion

    if seed is None:
        raise LossylearnError(
            "--match-noise effective needs --seed: the estimate must come from the very noisy "
            "images that are stored"
        )
    noisy = add_noise(first_chunk, spec, NoiseSource.create(seed, 0))
    return effective_distortion(noisy, spec, metric)


def _match_record(result: MatchResult, sample_size: int) -> dict[str, Any]:
    return {
        "method": "dataset",
        "quality": int(result.quality),
        "sample_size": sample_size,
        "sample_distortion": float(result.distortion),
        "reached_on_sample": bool(result.reached),
        "searched": [[int(q), float(d)] for q, d in result.searched],
        "message": result.message,
    }
