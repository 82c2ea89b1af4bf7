"""Scale of the store reader: opening large stores, its memory, and the distributed reader's speed.

Prints one JSON object:
  open:   per store size (default 10k and 1M rows of synthetic 8x8 PNG payloads, 1,024 per shard):
          open_s and open_rss_mib of ``open_store`` (default verify="auto"; its mode is given),
          labels_s / labels_rss_mib (``store.labels``: the index columns of every shard, each shard
          checked against its SHA-256), and the baseline of the same run: eager_rss_mib, the
          memory of reading every payload into a Python list (what the reader did before).
  large:  a store of random noisy 64x64 RGB images (png codec, via compress): 6,000 images, or
          36,000 with --large (the ~420 MB store of issue 12); open_s, open_rss_mib, then 200
          random items (reads_s, reads_rss_mib: memory added by open + reads), and eager_rss_mib.
  reader: images/s of one training epoch (SmallCNN, batch 64) fed by ``store.torch_iterable``
          through a DataLoader with 0 and 2 workers, vs the same loop on decoded tensors held in
          memory; and the reader alone (no model).
Memory is the resident set (/proc/self/statm) of a fresh process, measured after imports.

Usage: python benchmarks/scale.py [--rows 10000,1000000] [--large] [--train-n 20000] [--dir DIR]
                                  [--only open,large,reader]
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from lossylearn.codecs import get_codec
from lossylearn.store.layout import (
    MANIFEST,
    atomic_write_bytes,
    atomic_write_json,
    header_name,
    sha256_bytes,
    shard_name,
)
from lossylearn.store.manifest import DistortionStats, Manifest, StoreStats
from lossylearn.store.shards import ShardRows, write_shard


def rss_mib() -> float:
    """Resident memory of this process, MiB."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def synthetic_store(
    out: Path, images: np.ndarray, labels: np.ndarray, n: int, *, codec: str = "png",
    quality: int = 0, chunk: int = 1024,
) -> Manifest:  # fmt: skip
    """A valid sealed store of ``n`` rows cycling through ``images`` (coded once each), written
    with the store's own shard writer: what compress writes, minus the noise and the search."""
    coder = get_codec(codec)
    shape = tuple(int(v) for v in images.shape[1:])
    payloads = [coder.encode(im, quality) for im in images]
    files: dict[str, dict[str, Any]] = {}
    shards = []
    for k, start in enumerate(range(0, n, chunk)):
        idx = np.arange(start, min(n, start + chunk), dtype=np.int64)
        pool = idx % len(images)
        blob = write_shard(
            out / shard_name(k),
            ShardRows(
                index=idx, label=labels[pool], quality=np.full(len(idx), quality, np.int16),
                data=[payloads[i] for i in pool], mse_to_noisy=np.zeros(len(idx)),
                mae_to_noisy=np.zeros(len(idx)),
            ),
        )  # fmt: skip
        files[shard_name(k)] = {"sha256": sha256_bytes(blob), "bytes": len(blob)}
        shards.append({"path": shard_name(k), "n_images": len(idx)})
    header = coder.shared_header(quality, shape)
    if header:
        atomic_write_bytes(out / header_name(codec, quality), header)
        files[header_name(codec, quality)] = {"sha256": sha256_bytes(header), "bytes": len(header)}
    payload = sum(len(payloads[i % len(images)]) for i in range(n))
    bpp = 8.0 * (payload + len(header)) / (n * shape[0] * shape[1])
    manifest = Manifest(
        n_images=n, image_shape=shape, dataset={"name": "synthetic"}, noise={},
        privacy={"guarantee": False, "statement": "synthetic benchmark data"},
        codec={"name": codec, "options": {}, "qualities": {str(quality): n}},
        stats=StoreStats(
            stored_bytes=payload + len(header), payload_bytes=payload,
            shared_header_bytes=len(header), container_bytes=payload,
            file_bytes=sum(f["bytes"] for f in files.values()), bits_per_pixel=bpp,
            container_bits_per_pixel=bpp, distortion_to_noisy=DistortionStats(0.0, 0.0),
        ),
        shards=tuple(shards), files=files, run={"benchmark": "scale"},
    ).sealed()  # fmt: skip
    atomic_write_json(out / MANIFEST, manifest.to_dict())
    return manifest


def child(args: argparse.Namespace) -> dict[str, Any]:
    """Measured in a fresh process: open (+ random reads, + labels), or the eager baseline."""
    from lossylearn.store import open_store
    from lossylearn.store.manifest import read_manifest
    from lossylearn.store.shards import read_shard

    get_codec("png")
    gc.collect()
    base = rss_mib()
    if args.child == "eager":  # the old reader: every payload of every shard in one list
        data: list[bytes] = []
        for sh in read_manifest(args.dir).shards:
            data.extend(read_shard(Path(args.dir) / sh["path"]).data)
        return {"eager_rss_mib": round(rss_mib() - base, 1), "payloads": len(data)}
    t = time.perf_counter()
    store = open_store(args.dir)
    out: dict[str, Any] = {
        "verify": store.verify_mode,
        "open_s": round(time.perf_counter() - t, 4),
        "open_rss_mib": round(rss_mib() - base, 1),
    }
    if args.reads:
        picks = np.random.default_rng(0).choice(len(store), args.reads, replace=False)
        t = time.perf_counter()
        for i in picks:
            store[int(i)]
        out |= {"reads": args.reads, "reads_s": round(time.perf_counter() - t, 3)}
        out["reads_rss_mib"] = round(rss_mib() - base, 1)
    if args.labels:
        t = time.perf_counter()
        assert len(store.labels) == len(store)
        out |= {"labels_s": round(time.perf_counter() - t, 3)}
        out["labels_rss_mib"] = round(rss_mib() - base, 1)
    return out


def measure(directory: Path, mode: str, **flags: Any) -> dict[str, Any]:
    cmd = [sys.executable, __file__, "--child", mode, "--dir", str(directory)]
    cmd += ["--reads", str(flags.get("reads", 0))] + (["--labels"] if flags.get("labels") else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, check=True)
    return json.loads(proc.stdout)


def folder_mib(directory: Path) -> float:
    return round(sum(p.stat().st_size for p in directory.rglob("*") if p.is_file()) / 2**20, 1)


def open_section(root: Path, rows: list[int]) -> list[dict[str, Any]]:
    rng = np.random.default_rng(0)
    pool = rng.integers(0, 256, (256, 8, 8, 1), dtype=np.uint8)
    results = []
    for n in rows:
        out = root / f"synthetic-{n}"
        t = time.perf_counter()
        m = synthetic_store(out, pool, np.arange(256) % 10, n)
        row = {"rows": n, "shards": len(m.shards), "store_mib": folder_mib(out),
               "write_s": round(time.perf_counter() - t, 1)}  # fmt: skip
        row |= measure(out, "open", labels=True)
        row |= measure(out, "eager")
        results.append(row)
    return results


def large_section(root: Path, n: int) -> dict[str, Any]:
    import lossylearn

    out = root / f"noisy-rgb-{n}"
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (n, 64, 64, 3), dtype=np.uint8)
    t = time.perf_counter()
    lossylearn.compress(
        out=out, images=images, labels=rng.integers(0, 10, n), sigma=20, codec="png",
        workers=2, progress=False, warn=lambda _: None,
    )  # fmt: skip
    del images
    row = {"images": n, "shape": [64, 64, 3], "codec": "png", "store_mib": folder_mib(out),
           "compress_s": round(time.perf_counter() - t, 1)}  # fmt: skip
    return row | measure(out, "open", reads=200) | measure(out, "eager")


def reader_section(root: Path, n: int, batch: int = 64) -> dict[str, Any]:
    import torch
    from torch import nn

    from lossylearn.data import load_dataset
    from lossylearn.learn import ModelConfig, build_model
    from lossylearn.store import open_store

    x, y = load_dataset("mnist").split("train")
    out = root / f"mnist-jpeg-{n}"
    synthetic_store(out, x, y, n, codec="jpeg", quality=50)
    store = open_store(out)
    cfg = ModelConfig("cnn", 1, (28, 28), 10)

    def epoch(batches: Any) -> float:
        model = build_model(cfg, seed=0)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        t, seen = time.perf_counter(), 0
        for xb, yb in batches:
            opt.zero_grad(set_to_none=True)
            nn.functional.cross_entropy(model(xb), yb).backward()
            opt.step()
            seen += len(yb)
        return round(seen / (time.perf_counter() - t), 1)

    def loader(workers: int) -> Any:
        ds = store.torch_iterable(batch_size=batch, seed=0)
        return torch.utils.data.DataLoader(ds, batch_size=batch, num_workers=workers)

    images, labels = store.arrays()
    xm = torch.from_numpy(images).permute(0, 3, 1, 2).float().div_(255.0)
    ym = torch.from_numpy(labels)
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(0))
    memory = [(xm[perm[i : i + batch]], ym[perm[i : i + batch]]) for i in range(0, n, batch)]
    result: dict[str, Any] = {"images": n, "batch": batch, "torch_threads": torch.get_num_threads()}
    epoch(memory[:10])  # warm-up: the first steps of a process set up torch's kernels
    # The machine may be shared: every figure is the best of three runs, interleaved.
    runs: dict[str, list[float]] = {}
    for _ in range(3):
        runs.setdefault("train_memory_images_per_s", []).append(epoch(memory))
        for w in (0, 2):
            runs.setdefault(f"train_reader_{w}_workers_images_per_s", []).append(epoch(loader(w)))
        for w in (0, 2):
            t, seen = time.perf_counter(), 0
            for _, yb in loader(w):
                seen += len(yb)
            rate = round(seen / (time.perf_counter() - t), 1)
            runs.setdefault(f"reader_only_{w}_workers_images_per_s", []).append(rate)
    return result | {k: max(v) for k, v in runs.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--rows", default="10000,1000000", help="store sizes for the open section")
    ap.add_argument("--large", action="store_true", help="the 36,000-image store (default 6,000)")
    ap.add_argument("--train-n", type=int, default=20000, help="images in the reader section")
    ap.add_argument("--dir", type=Path, help="where the stores go (default: a temporary folder)")
    ap.add_argument("--only", default="open,large,reader", help="sections to run")
    ap.add_argument("--child", choices=("open", "eager"), help=argparse.SUPPRESS)
    ap.add_argument("--reads", type=int, default=0, help=argparse.SUPPRESS)
    ap.add_argument("--labels", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(child(args)))
        return
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        root = Path(tmp)
        only = args.only.split(",")
        report: dict[str, Any] = {}
        if "open" in only:
            report["open"] = open_section(root, [int(v) for v in args.rows.split(",")])
        if "large" in only:
            report["large"] = large_section(root, 36000 if args.large else 6000)
        if "reader" in only:
            report["reader"] = reader_section(root, args.train_n)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
