"""Images/second of the compress engines, local process pool against Ray tasks, on the same data.

    .venv/bin/python benchmarks/engines.py [--n 18000] [--chunk-size 1024] [--repeats 1]

Prints JSON: for the local engine and the Ray engine with 1 and 2 workers, the seconds and
images/second of one whole `lossylearn.compress` run (seeded Gaussian noise at PSNR 20, matched
JPEG, store committed) on N MNIST-size digits (the embedded training digits, repeated). Ray's
start-up (a local Ray of WORKERS CPUs, its workers up with lossylearn imported) is timed apart
and not in the run's figure; each run is the
best of --repeats. Every run must write the same shards (checked: `same_shards`).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

import lossylearn
from lossylearn.data import load_dataset


def _warm() -> None:
    import lossylearn.pipeline.chunks  # noqa: F401  (what a chunk task imports first)

    time.sleep(0.5)  # hold this worker, so that each warm-up task gets its own


def run_once(images, labels, *, engine: str, workers: int, chunk_size: int, out: Path) -> tuple:
    t = time.perf_counter()
    manifest = lossylearn.compress(
        images=images, labels=labels, psnr=20, codec="jpeg", seed=0, chunk_size=chunk_size,
        workers=workers, engine=engine, out=out, progress=False, warn=lambda m: None,
    )  # fmt: skip
    seconds = time.perf_counter() - t
    shards = {k: v["sha256"] for k, v in manifest.files.items() if k.startswith("shards/")}
    return seconds, shards


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=18000)
    ap.add_argument("--chunk-size", type=int, default=1024)
    ap.add_argument("--repeats", type=int, default=1)
    args = ap.parse_args()

    load_before = os.getloadavg()[0]  # other work on the machine skews the 2-worker figures
    x, y = load_dataset("mnist").split("train")
    reps = -(-args.n // len(x))
    images = np.ascontiguousarray(np.concatenate([x] * reps)[: args.n])
    labels = np.concatenate([y] * reps)[: args.n]
    results, digests = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for engine in ("local", "ray"):
            for workers in (1, 2):
                start = None
                if engine == "ray":
                    import logging

                    import ray

                    t = time.perf_counter()
                    ray.init(
                        address="local", num_cpus=workers, include_dashboard=False,
                        logging_level=logging.ERROR, log_to_driver=False,
                    )  # fmt: skip
                    # the workers are up, with lossylearn imported, before the clock starts
                    warm = ray.remote(num_cpus=1)(_warm)
                    ray.get([warm.remote() for _ in range(workers)])
                    start = time.perf_counter() - t
                best = None
                try:
                    for r in range(args.repeats):
                        out = Path(tmp) / f"{engine}-{workers}-{r}"
                        seconds, shards = run_once(
                            images, labels, engine=engine, workers=workers,
                            chunk_size=args.chunk_size, out=out,
                        )  # fmt: skip
                        digests.append(shards)
                        best = seconds if best is None else min(best, seconds)
                finally:
                    if engine == "ray":
                        ray.shutdown()
                row = {"engine": engine, "workers": workers, "seconds": round(best, 3),
                       "images_per_s": round(args.n / best, 1)}  # fmt: skip
                if start is not None:
                    row["ray_start_s"] = round(start, 2)
                results.append(row)
    base = {r["workers"]: r["images_per_s"] for r in results if r["engine"] == "local"}
    for r in results:
        r["vs_local"] = round(r["images_per_s"] / base[r["workers"]], 3)
    print(json.dumps({
        "images": args.n, "image_shape": list(images.shape[1:]), "codec": "jpeg (matched, PSNR 20)",
        "chunk_size": args.chunk_size, "chunks": -(-args.n // args.chunk_size),
        "repeats": args.repeats, "cpus": os.cpu_count(), "python": platform.python_version(),
        "load_average_1min": {"before": round(load_before, 2), "after": round(os.getloadavg()[0], 2)},
        "results": results, "same_shards": all(d == digests[0] for d in digests),
    }, indent=2))  # fmt: skip


if __name__ == "__main__":
    main()
