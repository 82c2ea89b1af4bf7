"""Where the LCoN paper profile's time goes, and what the study's speed-ups buy (prints JSON).

One model of the paper profile (Gaussian noise + JPEG at one PSNR, MNIST, 10 epochs, every
attack on the official 10,000 test digits) is trained and evaluated stage by stage, on one thread:
training, accuracy on the clean / noisy / LCoN test sets, FGSM, LCoN-processed FGSM, PGD. Each
stage is timed in wall and CPU seconds (CPU seconds are what a busy machine does not inflate).

Baselines measured in the same run:
* FGSM at every epsilon from its own gradient (the study before) vs one gradient for all
  epsilons (:func:`lossylearn.learn.fgsm_images`);
* the classifier in NCHW memory vs channels-last (:func:`lossylearn.learn.channels_last`), for a
  training step and a forward + input-gradient pass.

From the per-model costs it estimates the whole paper profile (63 Fig. 2 models with every
attack, 21 Fig. 3 models with the clean / noisy / LCoN / FGSM tests) on 1 and 2 cores.

    .venv/bin/python benchmarks/lcon_profile.py --data-dir ../shared/data/mnist
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")


def _timed(fn: Callable[[], Any]) -> tuple[Any, dict[str, float]]:
    w, c = time.perf_counter(), time.process_time()
    out = fn()
    return out, {"wall_s": round(time.perf_counter() - w, 3), "cpu_s": round(time.process_time() - c, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data-dir", default="../shared/data/mnist")
    ap.add_argument("--psnr", type=float, default=16.1)
    args = ap.parse_args()

    import torch
    from torch.nn import functional as F

    torch.set_num_threads(1)
    from lossylearn.learn import (
        accuracy,
        adversarial_images,
        build_model,
        fgsm_images,
        float_to_uint8,
    )  # fmt: skip
    from lossylearn.pipeline import lcon_transform
    from lossylearn.privacy.streams import Stream, stream
    from lossylearn.studies.lcon.config import profile_config
    from lossylearn.studies.lcon.data import load_data
    from lossylearn.studies.lcon.evaluate import test_sets, train_model
    from lossylearn.studies.lcon.points import noise_spec, plan_points, point_policy
    from lossylearn.studies.lcon.stores import make_store, matched_codec

    cfg = profile_config("paper", data_dir=args.data_dir, psnrs=(args.psnr,), seeds=(0,),
                         distortion_sweep=False, threads=1, progress=False)  # fmt: skip
    stages: dict[str, dict[str, float]] = {}
    data, stages["load data"] = _timed(lambda: load_data(cfg))
    point = plan_points(cfg)[0]
    spec = noise_spec(point, data.shape)
    policy = point_policy(point, cfg, None)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        opts, _ = matched_codec(point, spec, policy, data, cfg, out)
        store, stages["compress store"] = _timed(
            lambda: make_store(point, data, cfg, out, policy=policy, codec_options=opts, warn=lambda m: None)
        )
        tests, stages["test sets (noisy, LCoN)"] = _timed(lambda: test_sets(data, spec, store, cfg))
    res, stages["train (10 epochs)"] = _timed(
        lambda: train_model(data.train_x, data.train_y, seed=0, label="x", data=data, config=cfg)
    )
    model = res.model
    _, stages["accuracy: clean, noisy, LCoN sets"] = _timed(lambda: [
        accuracy(model, x, tests.labels, device="cpu") for x in (tests.clean, tests.noisy, tests.lcon)
    ])  # fmt: skip
    ax, ay = tests.clean, tests.labels
    eps = cfg.fgsm_eps
    per_eps, base = _timed(lambda: [
        adversarial_images(model, ax, ay, attack="fgsm", epsilon=e, device="cpu") for e in eps
    ])  # fmt: skip
    once, stages["FGSM, all epsilons"] = _timed(lambda: fgsm_images(model, ax, ay, eps, device="cpu"))
    same = all(torch.equal(a, b) for a, b in zip(per_eps, once, strict=True))
    _, stages["accuracy on FGSM sets"] = _timed(
        lambda: [accuracy(model, a, ay, device="cpu") for a in once]
    )
    _, stages["LCoN of FGSM sets (noise + JPEG)"] = _timed(lambda: [
        accuracy(model, lcon_transform(float_to_uint8(a), spec=spec, codec=tests.codec,
                                       quality=tests.quality, seed=0,
                                       stream=stream(Stream.STUDY_LCON_ADV, k)).reconstructed,
                 ay, device="cpu")
        for k, a in enumerate(once)
    ])  # fmt: skip
    _, stages["PGD (10 steps) + accuracy"] = _timed(lambda: accuracy(
        model, adversarial_images(model, ax, ay, attack="pgd", epsilon=cfg.pgd_eps[0],
                                  device="cpu", pgd_steps=cfg.pgd_steps), ay, device="cpu"))  # fmt: skip

    # NCHW vs channels-last, same weights, on the same batches
    layout: dict[str, Any] = {}
    x = torch.rand(256, 1, 28, 28)
    y = torch.randint(0, 10, (256,))
    for name, fmt in (("nchw", torch.contiguous_format), ("channels_last", torch.channels_last)):
        m = build_model(data.model_config).to(memory_format=fmt)
        xb = x.contiguous(memory_format=fmt)
        opt = torch.optim.Adam(m.parameters())

        def step(m: Any = m, xb: Any = xb, opt: Any = opt) -> None:
            loss = F.cross_entropy(m(xb[:64]), y[:64])
            opt.zero_grad()
            loss.backward()
            opt.step()

        def grad(m: Any = m, xb: Any = xb) -> None:
            xi = xb.clone().requires_grad_(True)
            torch.autograd.grad(F.cross_entropy(m(xi), y), xi)

        for fn, key, n in ((step, "train_step_64_cpu_s", 60), (grad, "input_grad_256_cpu_s", 20)):
            fn()
            c = time.process_time()
            for _ in range(n):
                fn()
            layout.setdefault(name, {})[key] = round((time.process_time() - c) / n, 5)

    full = sum(v["cpu_s"] for k, v in stages.items() if k not in ("load data", "compress store"))
    sweep = (stages["train (10 epochs)"]["cpu_s"] + stages["accuracy: clean, noisy, LCoN sets"]["cpu_s"]
             + stages["FGSM, all epsilons"]["cpu_s"] + stages["accuracy on FGSM sets"]["cpu_s"])  # fmt: skip
    total = 63 * full + 21 * sweep
    print(json.dumps({
        "benchmark": "lcon_profile", "psnr": args.psnr, "n_test": int(len(ay)),
        "loadavg": open("/proc/loadavg").read().split()[:3],
        "stages": stages,
        "fgsm": {"per_epsilon_cpu_s": base["cpu_s"], "one_gradient_cpu_s": stages["FGSM, all epsilons"]["cpu_s"],
                 "speedup": round(base["cpu_s"] / max(stages["FGSM, all epsilons"]["cpu_s"], 1e-9), 2),
                 "identical_images": same},
        "layout": {**layout, "train_step_speedup": round(layout["nchw"]["train_step_64_cpu_s"]
                                                         / layout["channels_last"]["train_step_64_cpu_s"], 2),
                   "input_grad_speedup": round(layout["nchw"]["input_grad_256_cpu_s"]
                                               / layout["channels_last"]["input_grad_256_cpu_s"], 2)},
        "per_model_cpu_s": {"fig2_full_evaluation": round(full, 1), "fig3_sweep": round(sweep, 1)},
        "paper_profile_estimate_min": {"one_core": round(total / 60, 1), "two_cores": round(total / 120, 1)},
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
