"""Rows of an LCoN study, their mean/spread over seeds, and the CSV file they are written to."""

from __future__ import annotations

import csv
import math
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path

from lossylearn.records import Record

__all__ = [
    "SCHEMES",
    "TEST_SETS",
    "ResultRow",
    "SummaryRow",
    "summarize",
    "write_csv",
]

#: Training schemes of the paper: baseline 1 (clean), baseline 2 (noisy), LCoN.
SCHEMES: tuple[str, ...] = ("clean", "noisy", "lcon")
#: Test sets: clean, noisy, LCoN-processed, FGSM, LCoN-processed FGSM (the paper's LCoN-adv), PGD.
TEST_SETS: tuple[str, ...] = ("clean", "noisy", "lcon", "fgsm", "lcon-fgsm", "pgd")


@dataclass(frozen=True)
class ResultRow(Record):
    """Accuracy of one trained model on one test set.

    ``sweep`` is ``noise`` (Fig. 2: one LCoN set per noise level, matched distortion) or
    ``distortion`` (Fig. 3: fixed noise, codec distortion swept). ``psnr`` is the nominal PSNR of
    the noisy images set by the noise strength; ``target_distortion``/``achieved_distortion`` are
    the codec's asked and reached distortion to the noisy training images (metric ``metric``).
    """

    sweep: str
    psnr: float
    noise_sigma: float
    target_distortion: float
    achieved_distortion: float
    target_reached: bool
    metric: str
    quality: int
    train: str
    test: str
    epsilon: float
    accuracy: float
    n_test: int
    n_train: int
    train_bits: int
    budget_bits: int
    bits_per_pixel: float
    seed: int
    model: str
    epochs: int
    train_seconds: float


@dataclass(frozen=True)
class SummaryRow(Record):
    """Mean and sample standard deviation of accuracy over seeds for one study point."""

    sweep: str
    psnr: float
    target_distortion: float
    achieved_distortion: float
    train: str
    test: str
    epsilon: float
    mean: float
    std: float
    n_seeds: int
    n_train: int
    train_bits: int


def _key(r: ResultRow) -> tuple[str, float, float, str, str, float]:
    return (r.sweep, r.psnr, r.target_distortion, r.train, r.test, r.epsilon)


def summarize(rows: Iterable[ResultRow]) -> list[SummaryRow]:
    """Group rows by (sweep, psnr, target distortion, train, test, epsilon) across seeds."""
    groups: dict[tuple[str, float, float, str, str, float], list[ResultRow]] = defaultdict(list)
    for r in rows:
        groups[_key(r)].append(r)
    out: list[SummaryRow] = []
    for key, rs in groups.items():
        accs = [r.accuracy for r in rs]
        mean = sum(accs) / len(accs)
        std = (
            math.sqrt(sum((a - mean) ** 2 for a in accs) / (len(accs) - 1))
            if len(accs) > 1
            else 0.0
        )
        out.append(
            SummaryRow(
                sweep=key[0],
                psnr=key[1],
                target_distortion=key[2],
                achieved_distortion=rs[0].achieved_distortion,
                train=key[3],
                test=key[4],
                epsilon=key[5],
                mean=mean,
                std=std,
                n_seeds=len(rs),
                n_train=rs[0].n_train,
                train_bits=rs[0].train_bits,
            )  # fmt: skip
        )
    order = {s: i for i, s in enumerate(TEST_SETS)}
    sch = {s: i for i, s in enumerate(SCHEMES)}
    out.sort(
        key=lambda s: (
            s.sweep,
            s.psnr,
            s.target_distortion,
            sch.get(s.train, 9),
            order.get(s.test, 9),
            s.epsilon,
        )
    )
    return out


def write_csv(path: str | Path, rows: Sequence[ResultRow]) -> Path:
    """One line per row, columns in :class:`ResultRow` field order."""
    p = Path(path)
    names = [f.name for f in fields(ResultRow)]
    with p.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=names)
        w.writeheader()
        for r in rows:
            w.writerow(r.to_dict())
    return p
