"""``compress``: the LCoN run, from clean images to a committed store.

Steps: load the split; resolve the noise and its privacy guarantee; fix a processing order (a
permutation seeded independently of the noise, so the first chunk is a fair sample); noise the first
chunk, decide the target distortion (:mod:`lossylearn.pipeline.targets`) and, with
``match="dataset"``, search the codec quality whose mean distortion to the first ``match_sample``
of those noisy images is the target; code every chunk into a Parquet shard on a process pool;
write the shared headers; then commit the manifest. The target and the quality search see only
noisy images, so they are post-processing of the private release and cost no privacy.
"""

from __future__ import annotations

import hashlib
import math
import sys
import time
from collections.abc import Callable
from contextlib import closing
from pathlib import Path
from typing import Any

import numpy as np

from lossylearn.codecs import MatchResult, get_codec, match_quality
from lossylearn.errors import LossylearnError
from lossylearn.pipeline.chunks import (
    ChunkResult,
    ChunkTask,
    finish_chunk,
    noise_chunk,
    run_chunk,
)
from lossylearn.pipeline.plan import CompressPlan
from lossylearn.pipeline.pool import bounded_map, one_torch_thread
from lossylearn.pipeline.remote import compress_remote, is_remote
from lossylearn.pipeline.run_state import abandon, locked_output, prepare_output
from lossylearn.pipeline.summary import build_manifest
from lossylearn.progress import progress_display
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
from lossylearn.version import __version__

ORDER_SEED = 20220626
"""Seed of the processing-order permutation. Fixed and public: it decides order, never noise."""


def _progress(enabled: bool, total: int, done: int) -> Any:
    progress = progress_display(disable=not enabled)
    task = progress.add_task("[bold]compress", total=total, completed=done, status="images")
    return progress, task


def compress(
    plan: CompressPlan | None = None,
    /,
    *,
    warn: Callable[[str], None] | None = None,
    storage_options: dict[str, Any] | None = None,
    **kwargs: Any,
) -> Manifest:
    """Noise a dataset, compress it with a codec matched to the noise, and commit a store.

    ``compress(plan)`` runs a :class:`~lossylearn.pipeline.plan.CompressPlan`; the keyword form
    builds one: ``out`` (required), the data (``dataset``, ``data_dir``, ``split``, ``attribute``,
    ``image_size``, ``limit``; or ``images``, ``labels`` and optionally ``classes``), exactly one
    noise strength (``sigma``/``b``, ``psnr``, or ``epsilon`` [+ ``delta``], with ``noise``,
    ``unit``, ``sensitivity``, ``discrete``, ``range_handling``), the codec (``codec``,
    ``codec_options``, ``match``, ``match_sample``, ``tolerance``), the target (``match_noise``
    nominal | effective, or ``target_distortion``), and the run (``seed``, ``workers``,
    ``chunk_size``, ``resume``, ``overwrite``, ``allow_weak_noise``, ``signing_key``, ``progress``).

    Returns the manifest written to ``out/manifest.json``; the clean-side figures go to the owner
    file beside it (:func:`lossylearn.store.owner.read_clean_stats`). A codec that cannot reach the
    target still produces a store at the closest distortion it reaches; ``warn`` (default: stderr)
    receives the explanation. An ``out`` URL (``s3://bucket/store``, any fsspec filesystem; its
    credentials in ``storage_options``) is staged locally and uploaded
    (:mod:`lossylearn.pipeline.remote`).
    """
    if plan is None:
        plan = CompressPlan.from_kwargs(**kwargs)
    elif kwargs:
        raise TypeError("compress() takes a plan or keyword arguments, not both")
    say = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))
    if is_remote(plan.run.out):  # object storage: the one place a run is staged and uploaded
        return compress_remote(plan, lambda local: _run(local, say), storage_options)
    return _run(plan, say)


def _run(plan: CompressPlan, warn: Callable[[str], None]) -> Manifest:
    started = time.time()
    run, choice, out = plan.run, plan.codec, Path(plan.run.out)
    data = plan.source.load()
    clean, lab, shape = data.images, data.labels, data.shape
    seed = run.seed
    spec, guarantee = plan.noise.resolve(shape, seeded=seed is not None)
    changed = spec.change_probability()
    if changed < MIN_CHANGED and not run.allow_weak_noise:
        raise LossylearnError(
            f"this noise ({spec.describe_scale()}) changes only {changed:.1%} of pixels, so the store "
            "would hold most clean pixels as they are; use stronger noise, or pass "
            "--allow-weak-noise if that is what you want"
        )
    coder = get_codec(choice.name, **choice.options)
    metric = spec.matched_target()[0]
    n, chunk_size = len(clean), run.chunk_size
    order = np.random.default_rng(ORDER_SEED).permutation(n)
    n_chunks = (n + chunk_size - 1) // chunk_size
    # The public part of the run's definition: no seed and nothing derived from the clean data.
    config = {
        "lossylearn": __version__,
        "dataset": data.info,
        "n_images": n,
        "noise": spec.to_dict(),
        "codec": {"name": choice.name, "options": choice.options},
        "match": choice.match,
        "target": {"basis": plan.target.basis, "value": plan.target.value},
        "metric": metric,
        "tolerance": choice.tolerance,
        "seeded": seed is not None,
        "chunk_size": chunk_size,
        "match_sample": choice.match_sample,
    }
    data_sha256 = hashlib.sha256(clean.tobytes() + lab.tobytes()).hexdigest()
    created = not out.exists()

    def task(k: int, quality: int | None, target: float) -> ChunkTask:
        idx = order[k * chunk_size : (k + 1) * chunk_size]
        return ChunkTask(
            chunk=k, indices=idx.astype(np.int64), images=clean[idx], labels=lab[idx], spec=spec,
            codec_name=choice.name, codec_options=choice.options, quality=quality, target=target,
            metric=metric, tolerance=choice.tolerance, seed=seed, out_dir=str(out.absolute()),
        )  # fmt: skip

    with locked_output(out), one_torch_thread():
        state, complete = prepare_output(
            out, config=config, data_sha256=data_sha256, seed=seed, resume=run.resume,
            overwrite=run.overwrite,
        )  # fmt: skip
        if complete:
            warn(f"{out} already holds this run's complete store; nothing to do")
            return read_manifest(out)
        done = state.valid_chunks()
        state.chunks = dict(done)  # forget records whose shard is gone or altered
        if 0 not in done:
            try:
                noisy0 = noise_chunk(task(0, None, math.nan))
                # The target is decided on the very noisy images chunk 0 stores (post-processing).
                _, target = plan.target.target(spec, noisy0)
                quality: int | None = None
                if choice.match == "dataset":
                    sample = noisy0[: choice.match_sample]
                    result = match_quality(
                        coder, sample, target, metric, tolerance=choice.tolerance
                    )
                    quality = result.quality
                    state.match = {**_match_record(result, len(sample)), "target": target}
                else:
                    state.match = {
                        "method": "image",
                        "tolerance": choice.tolerance,
                        "target": target,
                    }
                first = finish_chunk(task(0, quality, target), noisy0)
            except Exception:
                # Refused before any shard: leave nothing that blocks the corrected command.
                abandon(state, created)
                raise
            done[0] = first.result.to_dict()
            state.record(first.result, first.clean.to_dict())
        assert state.match is not None
        quality, target = state.match.get("quality"), float(state.match["target"])

        todo = [k for k in range(n_chunks) if k not in done]
        bar, bar_task = _progress(run.progress, n, sum(r["n_images"] for r in done.values()))
        with bar:
            tasks = (task(k, quality, target) for k in todo)
            if run.engine == "ray":  # the one place the engine is chosen; Ray is imported only here
                from lossylearn.pipeline.ray_engine import ray_map

                outcomes = ray_map(
                    run_chunk, tasks, address=run.ray_address, max_in_flight=2 * run.workers,
                    num_cpus=run.workers,
                )  # fmt: skip
            else:
                outcomes = bounded_map(run_chunk, tasks, run.workers)
            with closing(outcomes):  # type: ignore[type-var]
                for res in outcomes:  # recorded as each arrives: --resume redoes only the rest
                    done[res.result.chunk] = res.result.to_dict()
                    state.record(res.result, res.clean.to_dict())
                    bar.update(bar_task, advance=res.result.n_images)

        results = [ChunkResult(**done[k]) for k in range(n_chunks)]
        used = sorted({int(q) for r in results for q in r.qualities})
        headers = {header_name(coder.name, q): coder.shared_header(q, shape) for q in used}
        headers = {rel: data for rel, data in headers.items() if data}
        for rel, blob in headers.items():
            atomic_write_bytes(out / rel, blob)
        manifest = build_manifest(
            n=n, shape=shape, ds_info=data.info, spec=spec, guarantee=guarantee, coder=coder,
            codec_options=choice.options, match=state.match, target=target,
            target_basis=plan.target.basis, metric=metric, tolerance=choice.tolerance,
            results=results, headers=headers,
            run={"id": state.run_id, "fingerprint": state.fingerprint, "seeded": seed is not None,
                 "engine": run.engine, "workers": run.workers, "threads_per_worker": 1,
                 "chunk_size": chunk_size, "order_seed": ORDER_SEED, "lossylearn": __version__,
                 "seconds": round(time.time() - started, 3)},
        ).sealed(run.signing_key)  # fmt: skip
        if not manifest.target_reached:
            warn(manifest.codec["message"])
        state.owner.stats = CleanStats.from_sums([state.owner.chunks[k] for k in range(n_chunks)])
        state.owner.chunks = {}
        state.owner.save()
        atomic_write_json(out / MANIFEST, manifest.to_dict())
        (out / RUN_STATE).unlink(missing_ok=True)
        remove_stale_temporaries(out)
        return manifest


MIN_CHANGED = 0.5
"""Noise that changes fewer than this share of pixels is refused without ``allow_weak_noise``."""


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
