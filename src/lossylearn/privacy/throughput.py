"""Throughput of the noise samplers, seeded and CSPRNG.

``python -m lossylearn.privacy.throughput [--n 3920000] [--repeat 3]`` prints samples per second
(best of ``repeat``) for the exact discrete Gaussian (sigma 25.5 and 951.3), the exact discrete
Laplace (b 10) and the float samplers; n defaults to 5,000 MNIST images (3.92 M pixels).
"""

from __future__ import annotations

import argparse
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

    @property
    def samples_per_second(self) -> float:
        return self.n / self.seconds


def measure(
    specs: tuple[NoiseSpec, ...] = DEFAULT_SPECS, n: int = 5000 * 28 * 28, repeat: int = 3
) -> list[Throughput]:
    """Time ``sample_noise`` of ``n`` values for each spec, seeded and CSPRNG."""
    rows = []
    for spec in specs:
        name = f"{'discrete' if spec.discrete else 'float'} {spec.kind} scale={spec.scale:g}"
        for seed in (1, None):
            best = float("inf")
            for r in range(repeat):
                t0 = time.perf_counter()
                sample_noise(n, spec, NoiseSource.create(seed, r))
                best = min(best, time.perf_counter() - t0)
            rows.append(Throughput(name, "seeded" if seed is not None else "csprng", n, best))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Noise sampler throughput (samples/second).")
    parser.add_argument("--n", type=int, default=5000 * 28 * 28)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"{'sampler':34s} {'source':7s} {'M samples/s':>11s} {'seconds':>8s}")
    for row in measure(n=args.n, repeat=args.repeat):
        print(
            f"{row.sampler:34s} {row.source:7s} {row.samples_per_second / 1e6:11.2f} "
            f"{row.seconds:8.2f}"
        )


if __name__ == "__main__":
    main()
