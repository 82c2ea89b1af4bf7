"""Throughput of `compress` (noise, matched JPEG, store) against a bare JPEG loop, measured in one run.

    .venv/bin/python benchmarks/compress_throughput.py [--psnr 20] [--repeats 3]

Prints JSON: images/second of `lossylearn.compress` on the embedded MNIST training digits with 1 and 2
workers, the images/second of a bare loop that only JPEG-encodes and decodes each noisy image once at
the quality `compress` chose, their ratios, and the peak resident memory of `compress` runs over
growing subsets (it should stay flat: the run streams chunks).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

import lossylearn
from lossylearn.data import load_dataset
from lossylearn.privacy import NoiseSource, add_noise, resolve_noise

MEMORY_PROBE = """
import resource, sys, lossylearn
from lossylearn.data import load_dataset
x, y = load_dataset("mnist").split("train")
n = int(sys.argv[2])
reps = -(-n // len(x))
import numpy as np
x, y = np.concatenate([x] * reps)[:n], np.concatenate([y] * reps)[:n]
lossylearn.compress(images=x, labels=y, psnr=20, seed=0, out=sys.argv[1], progress=False, warn=lambda m: None)
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def bare_loop(noisy: np.ndarray, quality: int) -> float:
    """Seconds to JPEG-encode and decode every image once with plain Pillow (full files)."""
    t0 = time.perf_counter()
    for img in noisy:
        buf = io.BytesIO()
        Image.fromarray(img[..., 0]).save(buf, format="JPEG", quality=quality)
        buf.seek(0)
        with Image.open(buf) as im:
            np.asarray(im)
    return time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--psnr", type=float, default=20.0)
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()

    images, labels = load_dataset("mnist").split("train")
    n = len(images)
    spec, _ = resolve_noise(
        kind="gaussian", psnr=args.psnr, image_shape=images.shape[1:], seeded=True
    )
    noisy = add_noise(images, spec, NoiseSource.create(0, 0))
    result: dict[str, object] = {"n_images": n, "psnr": args.psnr, "cpus": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        timings: dict[int, list[float]] = {1: [], 2: []}
        quality = None
        bare: list[float] = []
        for r in range(args.repeats):
            for workers in (1, 2):
                t0 = time.perf_counter()
                m = lossylearn.compress(
                    images=images, labels=labels, psnr=args.psnr, seed=0, workers=workers,
                    out=Path(tmp) / f"w{workers}-{r}", progress=False, warn=lambda _: None,
                )  # fmt: skip
                timings[workers].append(time.perf_counter() - t0)
                quality = m.codec["quality"]
            bare.append(bare_loop(noisy, int(quality)))
        bare_s = min(bare)
        result["quality"] = quality
        result["bare_jpeg_images_per_s"] = n / bare_s
        for workers, ts in timings.items():
            best = min(ts)
            result[f"compress_{workers}w_images_per_s"] = n / best
            result[f"ratio_{workers}w_to_bare"] = bare_s / best
        mem = {}
        for size in (n, 4 * n):
            out = Path(tmp) / f"mem{size}"
            proc = subprocess.run(
                [sys.executable, "-c", MEMORY_PROBE, str(out), str(size)],
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            mem[size] = int(proc.stdout.strip().splitlines()[-1]) / 1024
        result["peak_rss_mib_by_n_images"] = mem
    result["note"] = (
        "compress does per image: noise, encode, decode (to measure distortion), container size, "
        "Parquet write; the bare loop only encodes and decodes. Ratio = bare time / compress time."
    )
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
