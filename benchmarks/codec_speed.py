"""Speed of the learned codec against JPEG on the same images, and its training time per step.

    .venv/bin/python benchmarks/codec_speed.py [--checkpoint CK] [--quality Q] [--images 1000]
        [--data-dir /path/to/mnist] [--threads 1] [--train-steps 30] [--competitors 1]
        [--ladder] [--eval-data-dir ../shared/data/mnist]

Prints JSON:

* ``ladder`` (with ``--ladder``): the issue-15 recipe timed end to end: ``codec train`` with its
  defaults on the embedded MNIST digits for lambdas 0.002, 0.006, 0.02, 0.06, then ``codec eval``
  on 2000 test digits: training minutes, BD-rate against JPEG and WebP, and whether the goals
  (<= -45% and <= -20%) are met. Takes as long as the training (minutes).
* ``compress``: ``lossylearn.compress`` of the same embedded noisy digits (Gaussian, PSNR 20,
  one worker, seeded) with ``--codec jpeg`` and with ``--codec learned`` (``--checkpoint``, the
  ``ladder`` checkpoint, or else an untrained model of the same speed class): wall and CPU
  seconds, images/s, and the learned/JPEG throughput ratios (goal: >= 0.25).

* ``coding``: images/second of encode (image -> real bytes) and decode (bytes -> uint8 image) for
  the learned codec (batched, as a store writer calls it) and for JPEG (one image at a time: Pillow
  has no batch API) on the same MNIST test images, at the JPEG quality whose PSNR is closest to the
  learned rung's; their ratios come from this one run. Without ``--checkpoint`` a freshly initialized
  ``mnist`` factorized model is used (same networks and coder, so the same speed class; its bpp
  and PSNR mean nothing, and the output says so).
* ``training``: seconds per training step of the ``mnist`` factorized preset (batch 16, embedded
  MNIST digits) and per epoch of 5,000 digits, measured in a fresh process per setting (torch's
  OpenMP pool and ``OMP_WAIT_POLICY`` are fixed when torch loads) for 1 and 2 torch threads, for
  torch's own default (the *before* of issue 10: as many threads as cores) and for the commands'
  new default (:data:`~lossylearn.codecs.learned.train.DEFAULT_THREADS`, the *after*), and for
  2 threads with ``OMP_WAIT_POLICY=PASSIVE``; each ``alone`` and ``contended`` (while
  ``--competitors`` busy-looping processes, one core each, run beside it; bounded by a deadline and
  killed at the end). ``load_average_1min`` before each run says how idle "alone" really was.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from lossylearn.codecs import get_codec, image_distortion
from lossylearn.codecs.learned.checkpoint import Checkpoint, Rung, save_checkpoint
from lossylearn.codecs.learned.codec import LearnedCodec
from lossylearn.codecs.learned.coding import EntropyParameters
from lossylearn.codecs.learned.models import build_codec_model, preset_config
from lossylearn.codecs.learned.train import (
    DEFAULT_THREADS,
    train_rung,
)
from lossylearn.codecs.learned.train import CodecTrainConfig as TrainConfig
from lossylearn.data import load_dataset
from lossylearn.imaging import mean_psnr_db


def _untrained_checkpoint(folder: Path) -> Path:
    cfg = preset_config("mnist", "factorized")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = build_codec_model(cfg).eval()
    model.entropy_bottleneck.solve_quantiles()
    rung = Rung(0.01, model, EntropyParameters.build(model), {"untrained": True})
    return save_checkpoint(Checkpoint(cfg, "mse", [rung]), folder / "untrained")


def _psnr(ref: np.ndarray, dec: np.ndarray) -> float:
    return mean_psnr_db(image_distortion(ref, dec, "mse"))


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


def _train_probe(threads: int, steps: int, batch: int, budget_s: float = 5.0) -> dict:
    """One setting, in this (fresh) process: seconds per step after a short warm-up.

    Times runs of 5 steps until ``steps`` steps or ``budget_s`` seconds of stepping (at least one
    run), so a setting that stalls (2 threads beside a busy process) cannot stretch the benchmark.
    """
    if threads > 0:
        torch.set_num_threads(threads)
    images = load_dataset("mnist").train_images
    cfg = preset_config("mnist", "factorized")
    config = TrainConfig(epochs=1, batch_size=batch, max_steps=2, seed=0, threads=None)
    train_rung(images, cfg, 0.01, config)  # warm-up: allocator, OpenMP pool, kernels
    done, seconds = 0, 0.0
    while done < steps and (done == 0 or seconds < budget_s):
        config = TrainConfig(
            epochs=1, batch_size=batch, max_steps=min(5, steps - done), seed=done, threads=None
        )
        rung = train_rung(images, cfg, 0.01, config)
        seconds += sum(h["seconds"] for h in rung.info["history"])
        done += rung.info["train"]["steps"]
    per_step = seconds / done
    return {
        "threads": torch.get_num_threads(),
        "timed_steps": done,
        "seconds_per_step": per_step,
        "seconds_per_epoch": per_step * math.ceil(len(images) / batch),
    }


_BUSY = "import time\nend = time.time() + {t}\nwhile time.time() < end:\n    pass\n"


def _run_probe(threads: int, steps: int, batch: int, wait_policy: str | None) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "OMP_WAIT_POLICY")}
    if wait_policy:
        env["OMP_WAIT_POLICY"] = wait_policy
    load = os.getloadavg()[0]
    cmd = [sys.executable, __file__, "--train-probe", str(threads), "--train-steps", str(steps)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=900)
    if proc.returncode != 0:
        raise RuntimeError(f"training probe failed: {proc.stderr.strip()[-2000:]}")
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    row["load_average_1min"] = load
    row["omp_wait_policy"] = wait_policy or "unset"
    return row


def training_speed(steps: int, competitors: int, batch: int = 16) -> dict:
    """Seconds per step of every setting, alone and beside ``competitors`` busy processes."""
    # torch's default thread count (what `codec train` used before issue 10): one per core
    torch_default = torch.get_num_threads() if "OMP_NUM_THREADS" not in os.environ else 0
    settings = {
        "1": (1, None),
        "2": (2, None),
        "2_passive": (2, "PASSIVE"),
        "before": (torch_default, None),
        "after": (DEFAULT_THREADS, None),
    }
    out: dict = {
        "preset": "mnist", "architecture": "factorized", "batch_size": batch, "timed_steps": steps,
        "cpu_count": os.cpu_count(), "torch_default_threads": torch_default,
        "new_default_threads": DEFAULT_THREADS, "competitors": competitors,
    }  # fmt: skip
    for condition in ("alone", "contended"):
        busy = []
        try:
            if condition == "contended":
                busy = [
                    subprocess.Popen([sys.executable, "-c", _BUSY.format(t=600)])
                    for _ in range(competitors)
                ]
                time.sleep(0.5)
            rows = {}
            for name, (threads, policy) in settings.items():
                same = next(
                    (
                        k
                        for k, (t, p) in settings.items()
                        if k in rows and (t, p) == (threads, policy)
                    ),
                    None,
                )
                rows[name] = dict(rows[same]) if same else _run_probe(threads, steps, batch, policy)
            out[condition] = rows
        finally:
            for p in busy:
                p.kill()
                p.wait()
    out["summary_seconds_per_step"] = {
        c: {k: round(v["seconds_per_step"], 4) for k, v in out[c].items()}
        for c in ("alone", "contended")
    }
    return out


LADDER = (0.002, 0.006, 0.02, 0.06)
GOALS = {"jpeg": -45.0, "webp": -20.0}


def ladder_run(folder: Path, eval_dir: Path | None) -> dict:
    """``codec train`` (defaults) for :data:`LADDER`, then ``codec eval`` on 2000 test digits."""
    from lossylearn.pipeline.codec_data import evaluate_checkpoint, train_from_dataset

    load = os.getloadavg()
    started = time.perf_counter()
    summary = train_from_dataset(
        dataset="mnist", out=folder / "ladder", lmbdas=list(LADDER), overwrite=True
    )
    minutes = (time.perf_counter() - started) / 60.0
    result = evaluate_checkpoint(
        checkpoint=summary.checkpoint, dataset="mnist", out=folder / "eval",
        data_dir=eval_dir, limit=2000, baselines=("jpeg", "webp"),
    )  # fmt: skip
    learned = [
        {"lmbda": r.lmbda, "bpp": r.bpp, "bpp_estimated": r.bpp_estimated, "psnr": r.psnr}
        for r in result.rows
        if r.codec == "learned"
    ]
    return {
        "checkpoint": str(summary.checkpoint),
        "command": "lossylearn codec train --dataset mnist --distortion mse "
        + " ".join(f"--lmbda {v}" for v in LADDER),
        "train_minutes": minutes,
        "load_average_before": list(load),
        "load_average_after": list(os.getloadavg()),
        "eval_images": result.n_images,
        "eval_data": str(eval_dir) if eval_dir else "embedded MNIST test split",
        "learned": learned,
        "bd_rate": result.bd_rate,
        "goals": GOALS,
        "goals_met": {
            k: (v is not None and v <= GOALS[k]) for k, v in result.bd_rate.items() if k in GOALS
        },
    }


def compress_speed(checkpoint: Path, folder: Path) -> dict:
    """``compress`` of the embedded digits with JPEG and with the learned codec, one worker."""
    from lossylearn.pipeline.runner import compress

    load_dataset("mnist")  # both runs then read the same, already-parsed data
    rows = {}
    for name, options in (("jpeg", {}), ("learned", {"checkpoint": str(checkpoint)})):
        load = os.getloadavg()[0]
        wall, cpu = time.perf_counter(), time.process_time()
        manifest = compress(
            dataset="mnist", noise="gaussian", psnr=20, codec=name, codec_options=options,
            out=str(folder / f"store-{name}"), workers=1, seed=1, progress=False,
            overwrite=True, warn=lambda _msg: None,
        )  # fmt: skip
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        n = manifest.n_images
        rows[name] = {
            "images": n, "wall_s": wall, "cpu_s": cpu, "images_per_s": n / wall,
            "images_per_cpu_s": n / cpu, "load_average_1min": load,
        }  # fmt: skip
    return {
        **rows,
        "learned_over_jpeg": {
            "throughput_wall": rows["learned"]["images_per_s"] / rows["jpeg"]["images_per_s"],
            "throughput_cpu": rows["learned"]["images_per_cpu_s"]
            / rows["jpeg"]["images_per_cpu_s"],
            "goal": 0.25,
        },
    }


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
    ap.add_argument("--train-steps", type=int, default=20, help="timed steps per setting (at most)")
    ap.add_argument(
        "--competitors", type=int, default=1, help="busy processes beside the contended runs"
    )
    ap.add_argument("--skip-coding", action="store_true", help="only the training figures")
    ap.add_argument("--skip-training", action="store_true", help="no per-step training figures")
    ap.add_argument("--ladder", action="store_true", help="time the issue-15 ladder (minutes)")
    ap.add_argument("--eval-data-dir", type=Path, default=None, help="MNIST folder for eval")
    ap.add_argument("--train-probe", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.train_probe is not None:  # child process of training_speed()
        print(json.dumps(_train_probe(args.train_probe, args.train_steps, 16)))
        return

    ds = load_dataset("mnist", args.data_dir)
    images = ds.test_images[: args.images]
    training = (
        None if args.skip_training else training_speed(args.train_steps, args.competitors)
    )  # before torch threads change
    torch.set_num_threads(args.threads)
    coding = ladder = pipeline = None
    with tempfile.TemporaryDirectory() as tmp:
        if args.ladder:
            ladder = ladder_run(Path(tmp), args.eval_data_dir)
            args.checkpoint = args.checkpoint or Path(ladder["checkpoint"])
        if not args.skip_coding:
            path = args.checkpoint or _untrained_checkpoint(Path(tmp))
            codec = LearnedCodec(path)
            quality = (
                args.quality
                if args.quality is not None
                else codec.qualities[len(codec.qualities) // 2]
            )
            coding = coding_speed(codec, quality, images, args.repeats)
            pipeline = compress_speed(path, Path(tmp))
    report = {
        "command": " ".join(["python", "benchmarks/codec_speed.py", *sys.argv[1:]]),
        "images": int(len(images)),
        "image_shape": [int(v) for v in images.shape[1:]],
        "checkpoint": str(args.checkpoint)
        if args.checkpoint
        else "untrained mnist factorized model",
        "coding_threads": args.threads,
        "cpu_count": os.cpu_count(),
        "load_average_1min": os.getloadavg()[0],
        "coding": coding,
        "compress": pipeline,
        "ladder": ladder,
        "training": training,
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
