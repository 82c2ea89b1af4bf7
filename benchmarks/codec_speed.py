"""Speed of the learned codec against JPEG on the same images, and its training time per epoch.

    .venv/bin/python benchmarks/codec_speed.py [--checkpoint CK] [--quality Q] [--images 1000]
        [--data-dir /path/to/mnist] [--threads 1] [--train-steps 60]

Prints JSON:

* ``coding``: images/second of encode (image -> real bytes) and decode (bytes -> uint8 image) for
  the learned codec (batched, as a store writer calls it) and for JPEG (one image at a time: Pillow
  has no batch API) on the same MNIST test images, at the JPEG quality whose PSNR is closest to the
  learned rung's; their ratios come from this one run. Without ``--checkpoint`` a freshly initialized
  ``mnist`` factorized model is used (same networks and coder, so the same speed class; its bpp
  and PSNR mean nothing, and the output says so).
* ``training``: seconds per epoch of the 5,000 embedded MNIST digits (batch 16, ``mnist`` preset),
  extrapolated from ``--train-steps`` timed steps, with 1 and with 2 torch threads.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lossylearn.codecs import get_codec, image_distortion
from lossylearn.codecs.learned.checkpoint import Checkpoint, Rung, save_checkpoint
from lossylearn.codecs.learned.codec import LearnedCodec
from lossylearn.codecs.learned.coding import EntropyParameters
from lossylearn.codecs.learned.models import build_model, preset_config
from lossylearn.codecs.learned.train import TrainConfig, psnr_from_mse, train_rung
from lossylearn.data import load_dataset


def _untrained_checkpoint(folder: Path) -> Path:
    cfg = preset_config("mnist", "factorized")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_model(cfg).eval()
    model.entropy_bottleneck.solve_quantiles()
    rung = Rung(0.01, model, EntropyParameters.build(model), {"untrained": True})
    return save_checkpoint(Checkpoint(cfg, "mse", [rung]), folder / "untrained")


def _psnr(ref: np.ndarray, dec: np.ndarray) -> float:
    return float(psnr_from_mse(image_distortion(ref, dec, "mse")).mean())


def _time(fn, repeats: int) -> tuple[float, object]:
    best, out = math.inf, None
    for _ in range(repeats):
        t = time.perf_counter()
        out = fn()
        best = min(best, time.perf_counter() - t)
    return best, out


def coding_speed(codec: LearnedCodec, quality: int, images: np.ndarray, repeats: int) -> dict:
    shape = tuple(int(v) for v in images.shape[1:])
    n, pixels = len(images), images.shape[1] * images.shape[2]
    enc_s, payloads = _time(lambda: codec.encode_batch(images, quality), repeats)
    dec_s, decoded = _time(lambda: codec.decode_batch(payloads, quality, shape), repeats)
    learned_psnr = _psnr(images, decoded)
    jpeg = get_codec("jpeg")
    probe = images[:200]
    candidates = [q for q in (5, 10, 20, 30, 40, 50, 60, 70, 80, 90, 95) if q in jpeg.qualities]
    scores = {
        q: _psnr(probe, np.stack([jpeg.decode(jpeg.encode(im, q), q, shape) for im in probe]))
        for q in candidates
    }
    jq = min(scores, key=lambda q: abs(scores[q] - learned_psnr))
    jenc_s, jpay = _time(lambda: [jpeg.encode(im, jq) for im in images], repeats)
    jdec_s, jdec = _time(lambda: np.stack([jpeg.decode(p, jq, shape) for p in jpay]), repeats)
    header = len(jpeg.shared_header(jq, shape))
    learned = {
        "quality": quality,
        "lmbda": codec.lmbda(quality),
        "bpp": 8 * sum(map(len, payloads)) / (n * pixels),
        "psnr": learned_psnr,
        "encode_images_per_s": n / enc_s,
        "decode_images_per_s": n / dec_s,
    }
    jpeg_row = {
        "quality": jq,
        "bpp": 8 * (sum(map(len, jpay)) + header) / (n * pixels),
        "psnr": _psnr(images, jdec),
        "encode_images_per_s": n / jenc_s,
        "decode_images_per_s": n / jdec_s,
    }
    return {
        "learned": learned,
        "jpeg": jpeg_row,
        "learned_over_jpeg": {
            "encode_speed": learned["encode_images_per_s"] / jpeg_row["encode_images_per_s"],
            "decode_speed": learned["decode_images_per_s"] / jpeg_row["decode_images_per_s"],
        },
    }


def training_speed(train_images: np.ndarray, steps: int, batch: int = 16) -> dict:
    cfg = preset_config("mnist", "factorized")
    out = {"preset": "mnist", "architecture": "factorized", "batch_size": batch,
           "images_per_epoch": int(len(train_images)), "timed_steps": steps, "threads": {}}  # fmt: skip
    before = torch.get_num_threads()
    try:
        for threads in (1, 2):
            torch.set_num_threads(threads)
            config = TrainConfig(epochs=1, batch_size=batch, max_steps=steps, seed=0)
            rung = train_rung(train_images, cfg, 0.01, config)
            train_s = sum(h["seconds"] for h in rung.info["history"])
            per_step = train_s / rung.info["train"]["steps"]
            out["threads"][str(threads)] = {
                "seconds_per_step": per_step,
                "seconds_per_epoch": per_step * math.ceil(len(train_images) / batch),
            }
    finally:
        torch.set_num_threads(before)
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", type=Path, default=None)
    ap.add_argument("--quality", type=int, default=None, help="rung (default: the middle one)")
    ap.add_argument("--images", type=int, default=1000)
    ap.add_argument(
        "--data-dir", type=Path, default=None, help="MNIST folder (default: embedded test split)"
    )
    ap.add_argument("--threads", type=int, default=1, help="torch threads while coding")
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--train-steps", type=int, default=60)
    args = ap.parse_args()

    ds = load_dataset("mnist", args.data_dir)
    images = ds.test_images[: args.images]
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path = args.checkpoint or _untrained_checkpoint(Path(tmp))
        codec = LearnedCodec(path)
        quality = (
            args.quality if args.quality is not None else codec.qualities[len(codec.qualities) // 2]
        )
        coding = coding_speed(codec, quality, images, args.repeats)
    report = {
        "images": int(len(images)),
        "image_shape": [int(v) for v in images.shape[1:]],
        "checkpoint": str(args.checkpoint)
        if args.checkpoint
        else "untrained mnist factorized model",
        "coding_threads": args.threads,
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "coding": coding,
        "training": training_speed(ds.train_images, args.train_steps),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
