"""Speed of the rate-distortion solvers, against plain Blahut-Arimoto measured in the same run.

    .venv/bin/python benchmarks/theory_speed.py [--points 50] [--baseline-points 10]
        [--baseline-iterations 5000] [--blas-threads 1]

Prints JSON:

* ``rd_curve_256``: trace a ``--points`` R(D) curve (targets evenly spaced in [D_min, D_max]) of a
  256-symbol source: an 8-bit-pixel-like law (Gaussian, mean 128, sd 40, on levels 0..255) under
  squared error. ``fast`` is ``rate_distortion_curve`` as shipped (active-set SQP output-law
  steps, warm starts, interpolated slope search; certificate tolerance 1e-10 nats).
  ``plain_ba_same_search`` is the same curve with plain Blahut-Arimoto steps (everything else
  equal, cap ``--baseline-iterations`` per run, certificate tolerance 1e-7). ``textbook`` is the
  common implementation: per target, bisection on the slope with cold-started plain
  Blahut-Arimoto runs; it is timed on ``--baseline-points`` of the targets only and scaled. Each
  entry reports its seconds, the largest certified gap (bits) it reached, and its largest rate
  difference from ``fast``.
* ``lcon_blocks``: ``lcon_check`` on a 4-ary Markov source with mod-4 noise for k = 1..4 (up to
  256 block symbols): seconds per k with SQP steps and with plain Blahut-Arimoto steps, the rate
  error against H(Z^k)/k - H(N) and the distance of the reconstruction law from P_{X^k}; then a
  ``--points`` R(D) curve of the k = 4 block source.

Threaded BLAS is set to ``--blas-threads`` before numpy loads (the matrices are 256 x 256; on a
shared machine extra BLAS threads mostly wait for each other).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import sys
import time


def _parse() -> argparse.Namespace:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--points", type=int, default=50)
    ap.add_argument("--baseline-points", type=int, default=10)
    ap.add_argument("--baseline-iterations", type=int, default=5000)
    ap.add_argument("--blas-threads", type=int, default=1)
    return ap.parse_args()


ARGS = _parse() if __name__ == "__main__" else None
if ARGS is not None:
    for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[var] = str(ARGS.blas_threads)

import numpy as np  # noqa: E402

from lossylearn.theory import lcon_check, random_source, symmetric_noise  # noqa: E402
from lossylearn.theory.info import entropy, mutual_information  # noqa: E402
from lossylearn.theory.lagrangian import minimize_lagrangian  # noqa: E402
from lossylearn.theory.rd import distortion_range, rate_distortion_curve  # noqa: E402
from lossylearn.theory.sources import add_noise, block_distortion, noise_distortion  # noqa: E402

LN2 = math.log(2.0)


def pixel_source() -> tuple[np.ndarray, np.ndarray]:
    levels = np.arange(256.0)
    p = np.exp(-0.5 * ((levels - 128.0) / 40.0) ** 2)
    return p / p.sum(), (levels[:, None] - levels[None, :]) ** 2


def textbook_point(
    p: np.ndarray, d: np.ndarray, target: float, tol: float, cap: int
) -> tuple[float, float]:
    """Bisection on log(slope), each Blahut-Arimoto run from the uniform law: (rate, gap) bits."""
    dmin, dmax = distortion_range(p, d)
    if target >= dmax:
        return 0.0, 0.0
    lo, hi = -12.0, 12.0  # log(beta) bracket, scaled by the distortion range
    scale = 1.0 / (dmax - dmin)
    best = (math.nan, math.nan)
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        beta = scale * math.exp(mid)
        sol = minimize_lagrangian(p, beta * d, tol=tol, max_iter=cap, method="plain")
        dist = float(p @ (sol.channel * d).sum(axis=1))
        rate = mutual_information(p[:, None] * sol.channel, base=math.e)
        best = ((rate - beta * (target - dist)) / LN2, (sol.upper - sol.lower) / LN2)
        if abs(dist - target) <= 1e-8 * (dmax - dmin):
            break
        lo, hi = (mid, hi) if dist > target else (lo, mid)
    return best


def rd_curve_256(points: int, baseline_points: int, cap: int) -> dict:
    p, d = pixel_source()
    t0 = time.perf_counter()
    fast = rate_distortion_curve(p, d, n_points=points)
    t_fast = time.perf_counter() - t0

    t0 = time.perf_counter()
    plain = rate_distortion_curve(p, d, n_points=points, method="plain", tol=1e-7, max_iter=cap)
    t_plain = time.perf_counter() - t0

    idx = np.linspace(1, points - 2, baseline_points).round().astype(int)
    t0 = time.perf_counter()
    text = [textbook_point(p, d, float(fast.distortions[i]), 1e-7, cap) for i in idx]
    t_text = time.perf_counter() - t0
    t_text_scaled = t_text * points / len(idx)

    def gap(c) -> float:
        return float(np.max(c.rates_bits - c.lower_bounds_bits))

    return {
        "source": "256 levels, Gaussian(128, 40), squared error",
        "points": points,
        "fast": {
            "seconds": t_fast,
            "max_certified_gap_bits": gap(fast),
            "solver_iterations": fast.iterations,
        },
        "plain_ba_same_search": {
            "seconds": t_plain,
            "max_certified_gap_bits": gap(plain),
            "max_abs_rate_diff_bits": float(np.max(np.abs(plain.rates_bits - fast.rates_bits))),
            "speedup_of_fast": t_plain / t_fast,
        },
        "textbook": {
            "seconds_measured": t_text,
            "points_measured": len(idx),
            "seconds_scaled_to_all_points": t_text_scaled,
            "max_certified_gap_bits": float(max(g for _, g in text)),
            "max_abs_rate_diff_bits": float(
                max(abs(r - fast.rates_bits[i]) for (r, _), i in zip(text, idx, strict=True))
            ),
            "speedup_of_fast": t_text_scaled / t_fast,
        },
    }


def lcon_blocks(points: int, cap: int) -> dict:
    source = random_source("markov", 4, np.random.default_rng(0))
    noise = symmetric_noise(4, 0.3)
    rows = []
    for k in (1, 2, 3, 4):
        t0 = time.perf_counter()
        (row,) = lcon_check(source, noise, (k,))
        t_fast = time.perf_counter() - t0
        t0 = time.perf_counter()
        (plain,) = _lcon_plain(source, noise, k, cap)
        t_plain = time.perf_counter() - t0
        rows.append(
            {
                "k": k,
                "symbols": 4**k,
                "seconds": t_fast,
                "seconds_plain_ba": t_plain,
                "speedup": t_plain / t_fast,
                "abs_rate_error_bits": abs(row.rate_solver_bits - row.rate_formula_bits),
                "abs_rate_error_bits_plain_ba": abs(
                    plain.rate_solver_bits - plain.rate_formula_bits
                ),
                "recon_tv": row.recon_tv,
                "recon_tv_plain_ba": plain.recon_tv,
            }
        )
    p_z4 = add_noise(source.block_law(4), noise).ravel()
    d4 = block_distortion(noise_distortion(noise), 4)
    t0 = time.perf_counter()
    curve = rate_distortion_curve(p_z4, d4, n_points=points)
    t_curve = time.perf_counter() - t0
    return {
        "source": "4-ary Markov (Dirichlet(1) rows, seed 0), noise P(N != 0) = 0.3",
        "H_N_bits": entropy(noise),
        "rows": rows,
        "total_seconds_k1_to_4": sum(r["seconds"] for r in rows),
        "total_seconds_k1_to_4_plain_ba": sum(r["seconds_plain_ba"] for r in rows),
        "curve_k4": {
            "points": points,
            "seconds": t_curve,
            "max_certified_gap_bits": float(np.max(curve.rates_bits - curve.lower_bounds_bits)),
        },
    }


def _lcon_plain(source, noise, k: int, cap: int):
    """``lcon_check`` with plain Blahut-Arimoto steps (same slope search)."""
    import lossylearn.theory.lcon as lcon

    original = lcon.solve_rate_distortion

    def plain(*args, **kwargs):
        kwargs["method"] = "plain"
        kwargs["max_iter"] = cap
        kwargs["tol"] = 1e-10
        return original(*args, **kwargs)

    lcon.solve_rate_distortion = plain
    try:
        return lcon_check(source, noise, (k,))
    finally:
        lcon.solve_rate_distortion = original


def main() -> None:
    assert ARGS is not None
    out = {
        "machine": {
            "python": sys.version.split()[0],
            "numpy": np.__version__,
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "blas_threads": ARGS.blas_threads,
        },
        "rd_curve_256": rd_curve_256(ARGS.points, ARGS.baseline_points, ARGS.baseline_iterations),
        "lcon_blocks": lcon_blocks(ARGS.points, ARGS.baseline_iterations),
    }
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
