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
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from lossylearn import __version__
from lossylearn.codecs import MatchResult, get_codec, match_quality
from lossylearn.data import ImageDataset, load_dataset
from lossylearn.errors import LossylearnError
from lossylearn.pipeline.chunks import (
    ChunkResult,
    ChunkTask,
    finish_chunk,
    noise_chunk,
    run_chunk,
)
from lossylearn.pipeline.options import (
    MIN_CHANGED,
    check_options,
    resolved_options,
    validate_images,
)
from lossylearn.pipeline.pool import bounded_map, one_torch_thread
from lossylearn.pipeline.run_state import abandon, locked_output, prepare_output
from lossylearn.pipeline.summary import build_manifest
from lossylearn.privacy import resolve_noise
from lossylearn.store.layout import (
    MANIFEST,
    RUN_STATE,
    atomic_write_bytes,
    atomic_write_json,
    header_name,
    remove_stale_temporaries,
)
from lossylearn.store.manifest import Manifest, read_manifest
from lossylearn.store.owner import CleanStats

ORDER_SEED = 20220626
"""Seed of the processing-order permutation. Fixed and public: it decides order, never noise."""


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
    image_size: int | None = None,
    images: np.ndarray | None = None,
    labels: np.ndarray | None = None,
    classes: list[str] | None = None,
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
    allow_weak_noise: bool = False,
    signing_key: bytes | None = None,
    progress: bool = True,
    warn: Callable[[str], None] | None = None,
) -> Manifest:
    """Noise a dataset, compress it with a codec matched to the noise, and commit a store at ``out``.

    Give either ``dataset`` (+ ``data_dir``) or ``images`` and ``labels`` arrays (and optionally
    their ``classes`` names). Exactly one noise strength: ``sigma``/``b``, ``psnr``, or ``epsilon``
    (+ ``delta``). Returns the manifest written to ``out/manifest.json``; the clean-side figures go
    to the owner file beside it (:func:`lossylearn.store.owner.read_clean_stats`). A codec that
    cannot reach the target still produces a store at the closest distortion it reaches; ``warn``
    (default: stderr) receives the explanation. Noise so weak that it leaves most pixels as they
    are is refused unless ``allow_weak_noise``. ``signing_key`` adds an HMAC to the manifest.
    """
    started = time.time()
    check_options(match, workers, chunk_size, match_sample, tolerance, target_distortion,
                   match_noise, seed, limit)  # fmt: skip
    warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))
    out = Path(out)

    if images is not None:
        if labels is None:
            raise LossylearnError("images given without labels")
        clean, lab = images, np.asarray(labels)
        if limit is not None:
            clean, lab = clean[:limit], lab[:limit]
        ds_info: dict[str, Any] = {"name": "arrays", "split": split, "source": "in-memory arrays"}
        if classes is not None:
            ds_info["classes"] = [str(c) for c in classes]
    else:
        clean, lab, ds_info = _select_split(
            dataset, data_dir, split, limit, attribute=attribute, image_size=image_size
        )
    validate_images(clean, lab)
    lab = lab.astype(np.int64)
    shape = tuple(int(v) for v in clean.shape[1:])

    spec, guarantee = resolve_noise(
        kind=noise, sigma=sigma, b=b, psnr=psnr, epsilon=epsilon, delta=delta,
        sensitivity=sensitivity, unit=unit, image_shape=shape, discrete=discrete,
        range_handling=range_handling, seeded=seed is not None,
    )  # fmt: skip
    changed = spec.change_probability()
    if changed < MIN_CHANGED and not allow_weak_noise:
        raise LossylearnError(
            f"this noise ({spec.describe_scale()}) changes only {changed:.1%} of pixels, so the store "
            f"would hold most clean pixels as they are; use stronger noise, or pass "
            "--allow-weak-noise if that is what you want"
        )
    codec_options = resolved_options(codec, codec_options)
    coder = get_codec(codec, **codec_options)
    metric, matched = spec.matched_target()
    n = len(clean)
    order = np.random.default_rng(ORDER_SEED).permutation(n)
    basis = "given" if target_distortion is not None else match_noise
    n_chunks = (n + chunk_size - 1) // chunk_size
    # The public part of the run's definition: no seed and nothing derived from the clean data.
    config = {
        "lossylearn": __version__,
        "dataset": ds_info,
        "n_images": n,
        "noise": spec.to_dict(),
        "codec": {"name": codec, "options": codec_options},
        "match": match,
        "target_distortion": target_distortion,
        "target_basis": basis,
        "metric": metric,
        "tolerance": tolerance,
        "seeded": seed is not None,
        "chunk_size": chunk_size,
        "match_sample": match_sample,
    }
    data_sha256 = hashlib.sha256(clean.tobytes() + lab.tobytes()).hexdigest()
    created = not out.exists()
    with locked_output(out), one_torch_thread():
        state, complete = prepare_output(
            out, config=config, data_sha256=data_sha256, seed=seed, resume=resume,
            overwrite=overwrite,
        )  # fmt: skip
        if complete:
            warn(f"{out} already holds this run's complete store; nothing to do")
            return read_manifest(out)
        try:
            if target_distortion is not None:
                target = float(target_distortion)
            elif match_noise == "effective":
                target = _effective_target(clean[order[:chunk_size]], spec, metric, seed)
            else:
                target = float(matched)
            if not math.isfinite(target):
                raise LossylearnError(f"the matched target distortion is not finite ({target})")

            def task(k: int, quality: int | None) -> ChunkTask:
                idx = order[k * chunk_size : (k + 1) * chunk_size]
                return ChunkTask(
                    chunk=k, indices=idx.astype(np.int64), images=clean[idx], labels=lab[idx],
                    spec=spec, codec_name=codec, codec_options=codec_options, quality=quality,
                    target=target, metric=metric, tolerance=tolerance, seed=seed, out_dir=str(out),
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
                first_out = finish_chunk(task(0, quality), noisy0)
                done[0] = first_out.result.to_dict()
                state.chunks = dict(done)
                state.record(first_out.result, first_out.clean.to_dict())
        except LossylearnError:
            if not state.valid_chunks():
                abandon(state, created)
            raise
        assert state.match is not None
        quality = state.match.get("quality")
        state.chunks = dict(done)

        todo = [k for k in range(n_chunks) if k not in done]
        bar, bar_task = _progress(progress, n, sum(r["n_images"] for r in done.values()))
        with bar:
            for res in bounded_map(run_chunk, (task(k, quality) for k in todo), workers):
                done[res.result.chunk] = res.result.to_dict()
                state.record(res.result, res.clean.to_dict())
                bar.update(bar_task, advance=res.result.n_images)

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
            metric=metric, tolerance=tolerance, results=results,
            headers={k: v for k, v in headers.items() if v},
            run={"id": state.run_id, "fingerprint": state.fingerprint, "seeded": seed is not None,
                 "workers": workers, "threads_per_worker": 1, "chunk_size": chunk_size, "order_seed": ORDER_SEED,
                 "lossylearn": __version__, "seconds": round(time.time() - started, 3)},
        ).sealed(signing_key)  # fmt: skip
        if not manifest.target_reached:
            warn(manifest.codec["message"])
        state.owner.stats = CleanStats.from_sums([state.owner.chunks[k] for k in range(n_chunks)])
        state.owner.chunks = {}
        state.owner.save()
        atomic_write_json(out / MANIFEST, manifest.to_dict())
        (out / RUN_STATE).unlink(missing_ok=True)
        remove_stale_temporaries(out)
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
