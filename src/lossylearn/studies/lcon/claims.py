"""Checks of the LCoN paper's claims (section VI-A) against a study's summary table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from lossylearn.records import Record
from lossylearn.studies.lcon.results import SummaryRow

__all__ = ["Claim", "check_claims"]


@dataclass(frozen=True)
class Claim(Record):
    """One claim of the paper, whether it holds in this study (None: not enough data), and why."""

    name: str
    statement: str
    holds: bool | None
    detail: str


def _index(summary: Sequence[SummaryRow]) -> dict[tuple[float, str, str, float], SummaryRow]:
    return {(s.psnr, s.train, s.test, s.epsilon): s for s in summary if s.sweep == "noise"}


def _pct(x: float) -> str:
    return f"{100 * x:.1f}%"


def _tally(name: str, statement: str, total: int, fails: list[str], what: str) -> Claim:
    """A claim made of ``total`` comparisons (``what``) that holds when none ``fails`` (None when
    there was nothing to compare); the evidence counts them and lists the failures."""
    return Claim(
        name,
        statement,
        None if total == 0 else not fails,
        f"{total - len(fails)} of {total} {what} hold"
        + (": fails at " + "; ".join(fails) if fails else ""),
    )


def check_claims(
    summary: Sequence[SummaryRow],
    *,
    unreached: dict[float, str] | None = None,
    sweep_matched: float | None = None,
    sweep_note: str = "",
    close_tolerance: float = 0.02,
) -> list[Claim]:
    """Evaluate the four claims on mean accuracies over seeds.

    ``unreached`` maps a PSNR to the codec's explanation where it missed the matched distortion;
    ``sweep_matched`` is the matched distortion of the Fig. 3 sweep; ``sweep_note`` explains targets
    the codec missed (added to that claim's evidence when it fails).
    """
    unreached = unreached or {}
    idx = _index(summary)
    psnrs = sorted({k[0] for k in idx})
    claims: list[Claim] = []

    # 1. LCoN-train >= noisy-train on every test set.
    fails: list[str] = []
    total = 0
    for (p, train, test, eps), s in sorted(idx.items()):
        if train != "lcon":
            continue
        other = idx.get((p, "noisy", test, eps))
        if other is None:
            continue
        total += 1
        if s.mean < other.mean:
            tag = f"{test}" + (f"@{eps:g}" if eps else "")
            fails.append(f"PSNR {p:g} {tag}: LCoN {_pct(s.mean)} < noisy {_pct(other.mean)}")
    claims.append(
        _tally(
            "lcon_beats_noisy",
            "LCoN-train >= noisy-train (baseline 2) on every test set and noise level",
            total,
            fails,
            "comparisons",
        )
    )

    # 2. LCoN close to clean at high PSNR (clean test set, highest PSNR of the grid).
    if psnrs:
        top = psnrs[-1]
        a, b = idx.get((top, "lcon", "clean", 0.0)), idx.get((top, "clean", "clean", 0.0))
        if a and b:
            holds = a.mean >= b.mean - close_tolerance
            detail = (
                f"at PSNR {top:g} dB on clean test images: LCoN {_pct(a.mean)} (n_train {a.n_train}) vs "
                f"clean {_pct(b.mean)} (n_train {b.n_train}); tolerance {_pct(close_tolerance)}"
            )
            if not holds and top in unreached:
                detail += f". Codec: {unreached[top]}"
            claims.append(
                Claim(
                    "lcon_close_to_clean",
                    "LCoN-train is close to clean-train at high PSNR",
                    holds,
                    detail,
                )
            )

    # 3. LCoN more robust under FGSM than both baselines.
    fails = []
    total = 0
    for (p, train, test, eps), s in sorted(idx.items()):
        if train != "lcon" or test != "fgsm":
            continue
        others = [idx.get((p, o, "fgsm", eps)) for o in ("clean", "noisy")]
        if any(o is None for o in others):
            continue
        total += 1
        best = max(o.mean for o in others if o is not None)
        if s.mean < best:
            fails.append(
                f"PSNR {p:g} eps {eps:g}: LCoN {_pct(s.mean)} < best baseline {_pct(best)}"
            )
    claims.append(
        _tally(
            "lcon_more_robust_fgsm",
            "LCoN-train is more accurate under FGSM than both baselines",
            total,
            fails,
            "(PSNR, epsilon) points",
        )
    )

    # 4. Fig. 3: best accuracy near the matched distortion.
    sweep = [
        s
        for s in summary
        if s.sweep == "distortion" and s.train == "lcon" and s.test in ("clean", "noisy", "lcon")
    ]
    targets = sorted({s.target_distortion for s in sweep})
    if sweep_matched and len(targets) >= 3:
        avg = {
            t: sum(s.mean for s in sweep if s.target_distortion == t)
            / max(1, sum(1 for s in sweep if s.target_distortion == t))
            for t in targets
        }
        achieved = {s.target_distortion: s.achieved_distortion for s in sweep}
        peak = max(targets, key=lambda t: avg[t])
        reached = achieved[peak] if achieved[peak] > 0 else peak
        holds = abs(math.log(reached / sweep_matched)) <= math.log(1.5) + 1e-9
        curve = ", ".join(f"{t:g} (reached {achieved[t]:.0f}): {_pct(avg[t])}" for t in targets)
        spread = max(avg.values()) - min(avg.values())
        curve += f"; spread across targets {100 * spread:.1f} points"
        if peak == targets[0]:
            curve += "; accuracy is highest at the smallest distortion tried (no interior peak)"
        if not holds and sweep_note:
            curve += f". Codec: {sweep_note}"
        claims.append(
            Claim(
                "fig3_peak_at_matched",
                "Fig. 3: accuracy (mean of clean, noisy, LCoN test sets) peaks near the matched distortion",
                holds,
                f"peak at target {peak:g} (distortion reached {reached:.0f}) vs matched {sweep_matched:g} "
                "(holds when the reached distortion is within a factor 1.5 of the matched one); "
                f"target -> accuracy: {curve}",
            )
        )
    return claims
