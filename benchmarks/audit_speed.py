"""Benchmark: ``lossylearn audit`` of the main job's store, wall time and peak memory vs pool size.

Builds the main job's store (``compress --dataset mnist --noise gaussian --psnr 20 --codec jpeg``,
4,500 embedded training digits) in a temporary folder and audits it in a fresh process per
setting, with every attack on and 2 torch threads (the target machine's 2 cores). Each child
reports its wall time and peak RSS, and its RSS after imports and loading the store and the clean
data (the baseline of the same run); ``growth`` = peak - baseline is what the attacks cost. The
pool grows with distractors (the 500 test digits; with ``--data-dir`` the official 10,000 test
digits, on a second store built from that folder's training split; 1,000 queries each), and
``cpu_s`` is the child's CPU time (user + system: the cost on a busy machine), ``feature_bytes`` the
pool-side pixel matrix (784 float32 per candidate; the likelihood attack of a png store holds 4x).
Prints one JSON document.

    .venv/bin/python benchmarks/audit_speed.py [--data-dir /work/shared/data/mnist]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CHILD = r"""
import json, resource, sys, time
t0 = time.perf_counter()
from lossylearn.audit import AuditConfig, audit_store
from lossylearn.audit.pool import clean_pool_for_store
from lossylearn.store import open_store
import torch
store = open_store(sys.argv[1])
pool = clean_pool_for_store(store, sys.argv[1], sys.argv[2] or None)
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
t1 = time.perf_counter()
q = int(sys.argv[5]) or None
cfg = AuditConfig(pool=int(sys.argv[3]), queries=q, threads=2, progress=False, membership=sys.argv[4] == "1")
r = audit_store(store, pool, cfg)
t2 = time.perf_counter()
u = resource.getrusage(resource.RUSAGE_SELF)
peak = u.ru_maxrss
print(json.dumps({"load_s": t1 - t0, "audit_s": t2 - t1, "total_s": t2 - t0,
                  "baseline_rss_mb": base / 1024, "peak_rss_mb": peak / 1024,
                  "growth_mb": (peak - base) / 1024, "top1": r.top1, "cpu_s": u.ru_utime + u.ru_stime,
                  "n_queries": r.doc["reidentification"]["n_queries"],
                  "pool_size": r.doc["reidentification"]["pool_size"],
                  "attacks_s": {a["name"]: round(a["seconds"], 2) for a in r.doc["reidentification"]["attacks"]},
                  "membership_auc": (r.doc["membership"] or {}).get("auc")}))
"""


def _child(store: Path, data_dir: str, pool: int, membership: bool, queries: int = 0) -> dict:
    env = {**os.environ, "OMP_NUM_THREADS": "2", "OPENBLAS_NUM_THREADS": "2"}
    started = time.perf_counter()
    out = subprocess.run(
        [sys.executable, "-c", CHILD, str(store), data_dir, str(pool), "1" if membership else "0",
         str(queries)],
        capture_output=True, text=True, env=env, check=True,
    )  # fmt: skip
    d = json.loads(out.stdout.strip().splitlines()[-1])
    d["process_wall_s"] = time.perf_counter() - started
    d["feature_bytes"] = d["pool_size"] * 784 * 4  # float32 pixel side (a png store: 4x)
    return {k: round(v, 3) if isinstance(v, float) else v for k, v in d.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", default=None, help="MNIST folder with the official t10k files")
    args = ap.parse_args()
    import lossylearn

    doc: dict = {"benchmark": "audit_speed", "threads": 2, "cpu_count": os.cpu_count()}
    with tempfile.TemporaryDirectory() as tmp:
        main_store = Path(tmp) / "mnist-psnr20"
        lossylearn.compress(dataset="mnist", noise="gaussian", psnr=20, codec="jpeg",
                            out=main_store, progress=False)  # fmt: skip
        runs = [_child(main_store, "", p, False) for p in (4500, 5000)]
        runs.append({**_child(main_store, "", 5000, True), "membership": True})
        doc["main_store"] = {"n_images": 4500, "runs": runs}
        if args.data_dir:
            big = Path(tmp) / "mnist-psnr20-official-test"
            lossylearn.compress(dataset="mnist", data_dir=args.data_dir, noise="gaussian", psnr=20,
                                codec="jpeg", out=big, progress=False)  # fmt: skip
            runs = [_child(big, args.data_dir, p, False, 1000) for p in (5000, 10000, 15000)]
            base = runs[0]
            for r in runs:
                r["time_ratio_vs_smallest_pool"] = round(r["audit_s"] / base["audit_s"], 3)
                r["growth_ratio_vs_smallest_pool"] = round(
                    r["growth_mb"] / max(base["growth_mb"], 1e-9), 3
                )
            doc["pool_scaling"] = {"n_images": 5000, "runs": runs}
    print(json.dumps(doc, indent=1))


if __name__ == "__main__":
    main()
