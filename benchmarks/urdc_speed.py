"""Training-step speed of the urdc models on CPU, and what it means for the paper grid.

Prints one JSON document: wall and CPU seconds per 64-image step (and steps per second) for each
kind of step the study runs, with the anchor's transposed-convolution decoder and with the MLP decoder, and an
estimate of the paper profile's total time from those step times and its model plan. On a shared
machine the wall times grow with the load (reported); with ``--threads 1`` the CPU times do not.

    .venv/bin/python benchmarks/urdc_speed.py --threads 2 --steps 20
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import torch

from lossylearn.data import load_dataset
from lossylearn.learn import ClassifierTrainConfig, images_to_tensor, seeded, train_classifier
from lossylearn.studies.urdc.metrics import estimate_w1
from lossylearn.studies.urdc.models import (
    CLASSIFIER,
    ConvDecoder,
    Critic,
    Encoder,
    NetConfig,
    build_decoder,
)
from lossylearn.studies.urdc.quantizer import DitheredQuantizer
from lossylearn.studies.urdc.study import get_profile, plan_models
from lossylearn.studies.urdc.train import (
    Head,
    Objective,
    UrdcTrainConfig,
    critic_step,
    train_codec,
)


def _time_critic(x: torch.Tensor, channels_last: bool, steps: int) -> tuple[float, float]:
    """Wall and CPU seconds per WGAN-GP critic step (batch 64) in NCHW or NHWC memory."""
    with seeded(0):
        critic = Critic(channels_last=channels_last)
    opt = torch.optim.Adam(critic.parameters(), lr=2e-4, betas=(0.5, 0.9))
    gen = torch.Generator().manual_seed(0)
    real, fake = x[:64], x[64:128].flip(-1)
    critic_step(critic, opt, real, fake, gp_weight=10.0, generator=gen)  # warm-up
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        critic_step(critic, opt, real, fake, gp_weight=10.0, generator=gen)
    return (time.perf_counter() - t0) / steps, (time.process_time() - c0) / steps


def _time_train(
    kind: str,
    obj: Objective,
    train_encoder: bool,
    x: torch.Tensor,
    y: torch.Tensor,
    clf: torch.nn.Module,
    channels_last: bool,
    repeats: int,
) -> float:
    """Median seconds per training step of one epoch over ``x`` (batch 64)."""
    q = DitheredQuantizer(3, 3)
    times: list[float] = []
    cpu: list[float] = []
    for r in range(repeats + 1):
        with seeded(r):
            enc = Encoder(3)
            dec = (
                ConvDecoder(3, channels_last=channels_last)
                if kind == "conv"
                else build_decoder(NetConfig(decoder=kind))
            )
            head = Head(dec, obj)
        n_steps = UrdcTrainConfig(batch_size=64).steps_per_epoch(x.shape[0])
        t0, c0 = time.perf_counter(), time.process_time()
        train_codec(
            enc,
            [head],
            q,
            x,
            y,
            classifier=clf,
            config=UrdcTrainConfig(epochs=1),
            train_encoder=train_encoder,
            seed=r,
        )
        if r > 0:  # the first run warms up the allocator and kernels
            times.append((time.perf_counter() - t0) / n_steps)
            cpu.append((time.process_time() - c0) / n_steps)
    return statistics.median(times), statistics.median(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--steps", type=int, default=20, help="64-image steps per timed epoch")
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument(
        "--skip-critic", action="store_true", help="skip the (slow) perception-step timings"
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    ds = load_dataset("mnist", limit=64 * args.steps)
    x = images_to_tensor(ds.train_images)
    y = torch.from_numpy(ds.train_labels)
    clf = train_classifier(
        ds.train_images,
        ds.train_labels,
        model_config=CLASSIFIER,
        config=ClassifierTrainConfig(epochs=1, batch_size=128, device="cpu", progress=False),
    ).model.requires_grad_(False)
    load_before = os.getloadavg()[0]

    timings: dict[str, float] = {}
    cpu_timings: dict[str, float] = {}
    cases = [
        ("conv_mse_end_to_end", "conv", Objective(), True, False),
        ("conv_channels_last_mse_end_to_end", "conv", Objective(), True, True),
        ("mlp_mse_end_to_end", "mlp", Objective(), True, False),
        ("conv_rdc_end_to_end", "conv", Objective(0.015, 0), True, False),
        ("mlp_rdc_end_to_end", "mlp", Objective(0.015, 0), True, False),
        ("conv_rdc_universal_cached_latents", "conv", Objective(0.015, 0), False, False),
        ("mlp_rdc_universal_cached_latents", "mlp", Objective(0.015, 0), False, False),
    ]
    if not args.skip_critic:
        cases += [
            ("conv_rdp_end_to_end", "conv", Objective(0, 0.015), True, False),
            ("mlp_rdp_end_to_end", "mlp", Objective(0, 0.015), True, False),
        ]
    for name, kind, obj, train_enc, cl in cases:
        timings[name], cpu_timings[name] = _time_train(
            kind, obj, train_enc, x, y, clf, cl, args.repeats
        )
    if not args.skip_critic:
        t0, c0 = time.perf_counter(), time.process_time()
        estimate_w1(x, x.flip(0), x[:256], x[:256].flip(0), steps=args.steps, seed=0)
        timings["w1_eval_critic_step"] = (time.perf_counter() - t0) / args.steps
        cpu_timings["w1_eval_critic_step"] = (time.process_time() - c0) / args.steps
        # the same WGAN-GP step with the critic in NHWC (the study's) and NCHW memory
        for layout, cl in (("nhwc", True), ("nchw", False)):
            key = f"critic_step_{layout}"
            timings[key], cpu_timings[key] = _time_critic(x, cl, args.steps)

    # the paper profile's cost from these step times: 5,000 training digits, each model's epochs
    prof = get_profile("paper")
    steps_per_epoch = UrdcTrainConfig().steps_per_epoch(5000)
    plan = plan_models(prof)
    total_steps = sum(prof.epochs_of(s.kind, s.objectives) * steps_per_epoch for s in plan)
    # a fresh W1 critic for every decoder, or (w1_all_decoders False) the perception curves' only
    n_decoders_evaluated = sum(
        s.kind != "shared" and (prof.w1_all_decoders or "perception" in s.curves) for s in plan
    )

    def model_seconds(kind: str, timings: dict[str, float]) -> float:
        total = 0.0
        for s in plan:
            heads = len(s.objectives)
            perception = any(o.lambda_p > 0 for o in s.objectives)
            if perception:  # the critic dominates; a cached encoder saves little
                key = f"{kind}_rdp_end_to_end"
            elif s.kind == "universal":
                key = f"{kind}_rdc_universal_cached_latents"
            else:
                key = f"{kind}_rdc_end_to_end"
            per_step = timings.get(key)
            if per_step is None:
                return float("nan")
            total += heads * per_step * prof.epochs_of(s.kind, s.objectives) * steps_per_epoch
        return total

    def w1_seconds(timings: dict[str, float]) -> float:
        return (
            timings.get("w1_eval_critic_step", float("nan")) * prof.w1_steps * n_decoders_evaluated
        )

    report = {
        "threads": args.threads,
        "batch_size": 64,
        "load_average_1min_at_start": round(load_before, 2),
        "load_average_1min_at_end": round(os.getloadavg()[0], 2),
        "critic_step_speedup_nhwc_vs_nchw_cpu": round(
            cpu_timings.get("critic_step_nchw", float("nan"))
            / cpu_timings.get("critic_step_nhwc", float("nan")),
            2,
        ),
        "seconds_per_step": {k: round(v, 5) for k, v in timings.items()},
        "cpu_seconds_per_step": {k: round(v, 5) for k, v in cpu_timings.items()},
        "steps_per_second": {k: round(1.0 / v, 2) for k, v in timings.items()},
        "paper_profile": {
            "models": len(plan),
            "decoders_evaluated": n_decoders_evaluated,
            "training_steps_total": total_steps,
            "w1_steps_per_decoder": prof.w1_steps,
            "wall_hours_training_conv_decoder": round(model_seconds("conv", timings) / 3600, 2),
            "wall_hours_training_mlp_decoder": round(model_seconds("mlp", timings) / 3600, 2),
            "wall_hours_w1_evaluation": round(w1_seconds(timings) / 3600, 2),
            "cpu_hours_training_conv_decoder": round(model_seconds("conv", cpu_timings) / 3600, 2),
            "cpu_hours_training_mlp_decoder": round(model_seconds("mlp", cpu_timings) / 3600, 2),
            "cpu_hours_w1_evaluation": round(w1_seconds(cpu_timings) / 3600, 2),
            # --engine ray --threads 1 on 2 cores: two models at a time, if the load spreads evenly
            "cpu_minutes_mlp_total_over_2_workers": round(
                (model_seconds("mlp", cpu_timings) + w1_seconds(cpu_timings)) / 120, 1
            ),
        },
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
