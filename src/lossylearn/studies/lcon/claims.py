"""Checks of the LCoN paper's claims (section VI-A) against a study's summary table."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from lossylearn.records import Record
from lossylearn.studies.lcon.results import SummaryRow

__all__ = ["Claim", "check_claims", "fig3_claims"]


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

    claims += fig3_claims(summary, sweep_matched, sweep_note)
    return claims


def fig3_claims(
    summary: Sequence[SummaryRow], matched: float | None, note: str = ""
) -> list[Claim]:
    """The two readings of Fig. 3, judged with the seeds' spread (empty without a sweep).

    Accuracy at a target is the mean over the clean, noisy and LCoN test sets; its standard error
    is the mean of their standard deviations over seeds / sqrt(seeds) (the three sets share a
    model, so this bounds the error of their mean from above). A target is *tied with the best*
    when its accuracy is within two combined standard errors of the best one (with one seed there
    is no spread and only equal accuracies tie). A distortion is *at the matched point* when the
    codec reached within a factor 1.5 of the matched one.

    * ``fig3_peak_at_matched`` (the paper's figure): every target tied with the best is at the
      matched point: an interior peak there.
    * ``fig3_matched_cheapest_without_loss``: the largest distortion (fewest bits) tied with the
      best is at the matched point: smaller distortions buy nothing, larger ones lose accuracy.
      A flat plateau that ends at the matched point satisfies this one but not the first.
    """
    sweep = [s for s in summary
             if s.sweep == "distortion" and s.train == "lcon" and s.test in ("clean", "noisy", "lcon")]  # fmt: skip
    targets = sorted({s.target_distortion for s in sweep})
    if not matched or len(targets) < 3:
        return []
    at = {t: [s for s in sweep if s.target_distortion == t] for t in targets}
    mean = {t: sum(s.mean for s in rs) / len(rs) for t, rs in at.items()}
    n_seeds = min(s.n_seeds for s in sweep)
    se = {t: sum(s.std for s in rs) / len(rs) / math.sqrt(max(n_seeds, 1)) for t, rs in at.items()}
    reached = {t: (rs[0].achieved_distortion if rs[0].achieved_distortion > 0 else t)
               for t, rs in at.items()}  # fmt: skip
    best = max(targets, key=lambda t: mean[t])

    def tied(t: float) -> bool:
        return mean[best] - mean[t] <= 2.0 * math.hypot(se[best], se[t]) + 1e-12

    def near(t: float) -> bool:
        return abs(math.log(reached[t] / matched)) <= math.log(1.5) + 1e-9

    ties = [t for t in targets if tied(t)]
    ref = min(targets, key=lambda t: abs(math.log(t / matched)))
    if all(near(t) for t in ties):
        verdict = "an interior peak at the matched distortion"
    elif tied(ref) and max(ties) <= ref:
        verdict = ("a plateau ending at the matched distortion: smaller distortions (more bits) are "
                   "no more accurate, larger ones are less")  # fmt: skip
    elif tied(ref):
        verdict = "a plateau that includes the matched distortion and reaches beyond it"
    else:
        verdict = f"no peak near the matched distortion: the best is at target {best:g}"
    curve = ", ".join(f"{t:g} (reached {reached[t]:.0f}): {_pct(mean[t])} +- {100 * se[t]:.1f}"
                      for t in targets)  # fmt: skip
    detail = (f"{verdict}. Matched distortion {matched:g}; target -> accuracy (mean of clean, "
              f"noisy, LCoN test sets) +- standard error over {n_seeds} seed(s): {curve}; tied "
              f"with the best (within 2 standard errors): {', '.join(f'{t:g}' for t in ties)}")  # fmt: skip
    peak = all(near(t) for t in ties)
    cheapest = near(max(ties))
    if note and not (peak and cheapest):
        detail += f". Codec: {note}"
    return [
        Claim("fig3_peak_at_matched",
              "Fig. 3: accuracy peaks at the matched distortion (every target as accurate as the "
              "best, within the seeds' spread, is at the matched point)", peak, detail),
        Claim("fig3_matched_cheapest_without_loss",
              "Fig. 3 on this data: the matched distortion is the largest (cheapest) distortion "
              "whose accuracy is as good as the best, within the seeds' spread", cheapest, detail),
    ]  # fmt: skip
