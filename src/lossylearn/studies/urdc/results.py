"""Result rows, universal distortion penalties, and the results.json document."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from lossylearn.records import Record
from lossylearn.studies.urdc.profiles import StudyProfile

__all__ = [
    "Penalty",
    "ResultRow",
    "StudyResult",
    "compute_penalties",
    "earlier_runs_elapsed",
    "sample_indices",
]


@dataclass(frozen=True)
class ResultRow(Record):
    """One decoder on one curve, measured on the test split."""

    mode: str  # "end-to-end" | "universal"
    objective: str  # "classification" | "perception"
    rate_bits: float
    latent_dim: int
    levels: int
    lambda_c: float
    lambda_p: float
    mse: float
    ce: float
    accuracy: float
    w1: float | None  # fresh critic; None where the profile skips it (classification-only rows)
    entropy_bits: float
    stored_bits_per_image: float
    encoder: str
    model: str
    decoder: str
    w1_training_critic: float | None = None  # the anchor's protocol; None without a critic


@dataclass(frozen=True)
class Penalty(Record):
    """Distortion penalty of the universal decoders on one frozen encoder, against end to end.

    ``endpoint``: the lowest MSE any universal decoder reaches vs the end-to-end MSE-only model
    (the anchor's ~10%). ``max_gap``: the largest relative MSE gap at equal CE (or W1), the
    end-to-end curve linearly interpolated, over the range both cover (None when they do not meet).
    """

    objective: str
    encoder: str
    e2e_mse_only: float
    universal_best_mse: float
    endpoint: float
    max_gap: float | None
    max_gap_at: float | None


@dataclass
class StudyResult:
    """Everything a study run measured."""

    profile: StudyProfile
    rows: list[ResultRow] = field(default_factory=list)
    penalties: list[Penalty] = field(default_factory=list)
    classifier: dict[str, float] = field(default_factory=dict)
    shared_heads: list[dict[str, object]] = field(default_factory=list)
    samples: dict[str, np.ndarray] = field(default_factory=dict)
    originals: np.ndarray | None = None
    meta: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """The results.json document."""
        return {
            "rows": [r.to_dict() for r in self.rows],
            "penalties": [p.to_dict() for p in self.penalties],
            "classifier": self.classifier,
            "shared_encoder_heads": self.shared_heads,
            "profile": self.profile.to_dict(),
            "meta": self.meta,
        }


def _metric(row: ResultRow, objective: str) -> float:
    if objective == "classification":
        return row.ce
    if row.w1 is None:  # the study measures a fresh W1 for every perception-curve decoder
        raise ValueError(f"perception row {row.model} has no W1")
    return row.w1


def compute_penalties(rows: list[ResultRow], rate_bits: float) -> list[Penalty]:
    """Penalties of every universal encoder at ``rate_bits``, for both objectives."""
    out: list[Penalty] = []
    for objective in ("classification", "perception"):
        at_rate = [
            r for r in rows if r.objective == objective and abs(r.rate_bits - rate_bits) < 1e-9
        ]
        e2e = sorted(
            (r for r in at_rate if r.mode == "end-to-end"), key=lambda r: _metric(r, objective)
        )
        mse_only = [r for r in e2e if r.lambda_c == 0 and r.lambda_p == 0]
        if not mse_only:
            continue
        xs = np.array([_metric(r, objective) for r in e2e])
        ys = np.array([r.mse for r in e2e])
        for enc in sorted({r.encoder for r in at_rate if r.mode == "universal"}):
            uni = [r for r in at_rate if r.mode == "universal" and r.encoder == enc]
            best = min(r.mse for r in uni)
            gap, gap_at = None, None
            for r in uni:
                m = _metric(r, objective)
                if len(xs) >= 2 and xs[0] <= m <= xs[-1]:
                    ref = float(np.interp(m, xs, ys))
                    g = (r.mse - ref) / ref
                    if gap is None or g > gap:
                        gap, gap_at = g, m
            out.append(
                Penalty(
                    objective=objective,
                    encoder=enc,
                    e2e_mse_only=mse_only[0].mse,
                    universal_best_mse=best,
                    endpoint=(best - mse_only[0].mse) / mse_only[0].mse,
                    max_gap=gap,
                    max_gap_at=gap_at,
                )
            )
    return out


def sample_indices(labels: np.ndarray) -> np.ndarray:
    """First test image of each class (up to 10), for the report's reconstruction strips."""
    picks = [int(np.flatnonzero(labels == k)[0]) for k in range(10) if np.any(labels == k)]
    return np.array(picks, dtype=np.int64)


def earlier_runs_elapsed(path: Path) -> list[float]:
    """Wall seconds of the runs that wrote ``path`` before (empty when there is none)."""
    try:
        meta = json.loads(path.read_text())["meta"]
        return [*meta.get("earlier_runs_elapsed_s", []), float(meta["elapsed_s"])]
    except (OSError, ValueError, KeyError, TypeError):
        return []
