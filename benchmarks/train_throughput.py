"""Training throughput of lossylearn's CNN loop vs a bare torch loop, and store decode cost.

Prints one JSON object:
  loop_images_per_s / bare_images_per_s / ratio  (same model, tensors, batch size, optimizer, epochs)
  decode_seconds, epoch_seconds, decode_fraction_of_epoch  (decoding a JPEG LCoN store into tensors,
  as a fraction of one training epoch on the decoded images)

Usage: python benchmarks/train_throughput.py [--n 4500] [--epochs 2] [--threads 2] [--device auto]
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import torch
from torch import nn

from lossylearn.data import load_dataset
from lossylearn.learn import (
    ClassifierTrainConfig,
    ModelConfig,
    build_model,
    images_to_tensor,
    resolve_device,
    train_classifier,
)


def bare_loop(
    x: torch.Tensor,
    y: torch.Tensor,
    cfg: ModelConfig,
    *,
    epochs: int,
    batch: int,
    device: torch.device,
    seed: int,
) -> float:
    """The textbook loop on pre-converted float tensors; returns images per second."""
    model = build_model(cfg, seed=seed).to(device)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    x, y = x.to(device), y.to(device)
    g = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for _ in range(epochs):
        model.train()
        perm = torch.randperm(len(x), generator=g).to(device)
        for i in range(0, len(x), batch):
            idx = perm[i : i + batch]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return len(x) * epochs / (time.perf_counter() - start)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=4500, help="training images (embedded MNIST)")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--batch-size", type=int, default=64)
    ap.add_argument(
        "--threads", type=int, default=1, help="torch CPU threads (1 suits the small CNN)"
    )
    ap.add_argument("--device", default="auto")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    device = resolve_device(args.device)

    ds = load_dataset("mnist")
    x_u8, y = ds.train_images[: args.n], ds.train_labels[: args.n]
    cfg = ModelConfig("cnn", 1, (28, 28), len(ds.classes))
    tcfg = ClassifierTrainConfig(epochs=args.epochs, batch_size=args.batch_size, seed=0,
                                 threads=args.threads, device=args.device, progress=False)  # fmt: skip
    # Warm-up both paths once (allocator, kernels), then measure.
    train_classifier(
        x_u8[:256],
        y[:256],
        model_config=cfg,
        config=ClassifierTrainConfig(epochs=1, progress=False, device=args.device),
    )
    bare_loop(
        images_to_tensor(x_u8[:256]),
        torch.from_numpy(y[:256]),
        cfg,
        epochs=1,
        batch=args.batch_size,
        device=device,
        seed=0,
    )

    ours = train_classifier(x_u8, y, model_config=cfg, config=tcfg).images_per_second
    bare = bare_loop(images_to_tensor(x_u8), torch.from_numpy(y), cfg, epochs=args.epochs,
                     batch=args.batch_size, device=device, seed=0)  # fmt: skip

    from lossylearn import open_store
    from lossylearn.pipeline import compress

    with tempfile.TemporaryDirectory() as tmp:
        t = time.perf_counter()
        compress(
            out=f"{tmp}/store",
            images=x_u8,
            labels=y,
            psnr=16.1,
            codec="jpeg",
            seed=0,
            progress=False,
        )
        compress_s = time.perf_counter() - t
        t = time.perf_counter()
        store = open_store(f"{tmp}/store")
        imgs, labs = store.arrays()
        tensors = images_to_tensor(imgs)
        decode_s = time.perf_counter() - t
    epoch_s = len(x_u8) / ours
    print(json.dumps({
        "device": str(device), "threads": args.threads, "n_images": int(len(x_u8)), "epochs": args.epochs,
        "batch_size": args.batch_size, "model": "cnn",
        "loop_images_per_s": round(ours, 1), "bare_images_per_s": round(bare, 1), "ratio": round(ours / bare, 3),
        "store_compress_seconds": round(compress_s, 3),
        "decode_seconds": round(decode_s, 3), "decoded_shape": list(tensors.shape),
        "epoch_seconds": round(epoch_s, 3), "decode_fraction_of_epoch": round(decode_s / epoch_s, 4),
    }, indent=1))  # fmt: skip


if __name__ == "__main__":
    main()
