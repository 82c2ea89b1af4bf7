"""Throughput of the noise samplers: lossylearn's (seeded and CSPRNG) and OpenDP's.

``.venv/bin/python benchmarks/noise_throughput.py [--n 3920000] [--n-opendp 200000] [--repeat 3]``
prints JSON: samples per second (best of ``repeat``) for the exact discrete Gaussian (sigma 25.5 and
951.3), the exact discrete Laplace (b 10) and the float samplers, each as a ratio to the seeded float
Gaussian measured in the same run (the baseline: numpy's normal sampler). Sources: ``seeded``
(lossylearn's sampler on numpy PCG64), ``csprng`` (lossylearn's sampler on ``os.urandom``) and,
for the discrete laws, ``opendp`` (OpenDP's measurement and CSPRNG: what an unseeded ``--discrete``
run uses). n defaults to 5,000 MNIST images (3.92 M pixels); OpenDP, some 40 times slower, is timed
on ``--n-opendp`` values. ``opendp_vs_lossylearn_csprng`` compares the two release-grade samplers.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import dataclass

from lossylearn.privacy.mechanisms import NoiseSpec, sample_noise
from lossylearn.privacy.source import NoiseSource

DEFAULT_SPECS = (
    NoiseSpec("gaussian", 25.5, discrete=True),
    NoiseSpec("laplace", 10.0, discrete=True),
    NoiseSpec("gaussian", 951.3, discrete=True),
    NoiseSpec("gaussian", 25.5),
    NoiseSpec("laplace", 10.0),
)


@dataclass(frozen=True)
class Throughput:
    """Best-of-``repeat`` sampling speed of one sampler with one kind of source."""

    sampler: str
    source: str
    n: int
    seconds: float
    spec: NoiseSpec

    @property
    def samples_per_second(self) -> float:
        return self.n / self.seconds


def _best(n: int, spec: NoiseSpec, seed: int | None, repeat: int) -> float:
    best = float("inf")
    for r in range(repeat):
        t0 = time.perf_counter()
        sample_noise(n, spec, NoiseSource.create(seed, r))
        best = min(best, time.perf_counter() - t0)
    return best


def measure(
    specs: tuple[NoiseSpec, ...] = DEFAULT_SPECS,
    n: int = 5000 * 28 * 28,
    repeat: int = 3,
    n_opendp: int = 200_000,
) -> list[Throughput]:
    """Time ``sample_noise`` of ``n`` values for each spec, seeded and CSPRNG, and of
    ``n_opendp`` values through OpenDP for the discrete ones."""
    rows = []
    for spec in specs:
        name = f"{'discrete' if spec.discrete else 'float'} {spec.kind} scale={spec.scale:g}"
        for seed in (1, None):
            source = "seeded" if seed is not None else "csprng"
            rows.append(Throughput(name, source, n, _best(n, spec, seed, repeat), spec))
        if spec.discrete and n_opendp > 0:
            release = NoiseSpec(spec.kind, spec.scale, discrete=True, backend="opendp")
            sample_noise(1, release, NoiseSource.create(None, 0))  # import and build: not timed
            seconds = _best(n_opendp, release, None, repeat)
            rows.append(Throughput(name, "opendp", n_opendp, seconds, release))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Noise sampler throughput (samples/second).")
    parser.add_argument("--n", type=int, default=5000 * 28 * 28)
    parser.add_argument("--n-opendp", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    rows = measure(n=args.n, repeat=args.repeat, n_opendp=args.n_opendp)
    base = next(r for r in rows if r.sampler.startswith("float gaussian") and r.source == "seeded")
    ours = {r.sampler: r for r in rows if r.source == "csprng"}
    out = []
    for r in rows:
        row = {
            "sampler": r.sampler,
            "source": r.source,
            "n": r.n,
            "samples_per_s": r.samples_per_second,
            "ratio_to_seeded_float_gaussian": r.samples_per_second / base.samples_per_second,
        }
        if r.source == "opendp":
            row["opendp_vs_lossylearn_csprng"] = (
                r.samples_per_second / ours[r.sampler].samples_per_second
            )
            row["backend"] = r.spec.sampler.split(" (")[0]
        out.append(row)
    print(json.dumps({"n": args.n, "n_opendp": args.n_opendp, "rows": out}, indent=2))


if __name__ == "__main__":
    main()
