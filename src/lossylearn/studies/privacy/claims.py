"""The privacy study's verdicts, each tested on its rows with the sampling error stated."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from lossylearn.records import Record

__all__ = ["Claim", "check_claims"]

SAFE_FACTOR = 5.0
""""Unrecognizable" here: top-1 re-identification within this many times chance."""


@dataclass(frozen=True)
class Claim(Record):
    """A statement, whether it holds here (None: not testable), and the evidence."""

    statement: str
    holds: bool | None
    detail: str


def _se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 1.0 / n**2) / max(n, 1))


def check_claims(rows: list[dict[str, Any]]) -> list[Claim]:
    """One claim per variant: "compression makes individuals less re-identifiable than noise
    alone" (LCoN top-1 below the noisy store's by more than twice the standard error at every
    PSNR), and where the LCoN stores are unrecognizable (top-1 within 5x chance)."""
    out: list[Claim] = []
    for variant in dict.fromkeys(r["variant"] for r in rows):
        pairs = []
        for r in rows:
            if r["variant"] == variant and r["kind"] == "lcon":
                noisy = next(x for x in rows if x["variant"] == variant and x["kind"] == "noisy"
                             and x["psnr"] == r["psnr"])  # fmt: skip
                pairs.append((r["psnr"], noisy, r))
        lower = higher = 0
        bits = []
        for psnr, noisy, lcon in sorted(pairs, key=lambda t: t[0]):
            d = noisy["top1"] - lcon["top1"]
            se = math.hypot(
                _se(noisy["top1"], noisy["n_queries"]), _se(lcon["top1"], lcon["n_queries"])
            )
            lower += d > 2 * se
            higher += -d > 2 * se
            bits.append(f"{psnr:g} dB: noisy {noisy['top1']:.1%} vs LCoN {lcon['top1']:.1%}")
        n = len(pairs)
        holds = None if n == 0 else (lower == n if higher == 0 else False)
        out.append(Claim(
            statement=f"[{variant}] compression makes individuals less re-identifiable than noise alone",
            holds=holds,
            detail=(f"LCoN top-1 lower beyond 2 standard errors at {lower} of {n} PSNRs, higher at "
                    f"{higher}: " + "; ".join(bits) + ". Same noisy images in both stores (same "
                    "pool, noise and seed), so by data processing the Bayes-optimal attack cannot "
                    "gain from compression; the question is how much the measured attacks lose."),
        ))  # fmt: skip
        hidden = [lc for _p, _n, lc in pairs if lc["top1"] <= SAFE_FACTOR * lc["chance_top1"]]
        out.append(Claim(
            statement=f"[{variant}] LCoN stores leave individuals unrecognizable (top-1 within "
            f"{SAFE_FACTOR:g}x chance)",
            holds=None if n == 0 else len(hidden) == n,
            detail=_hidden_detail(hidden, n, pairs),
        ))  # fmt: skip
    return out


def _hidden_detail(hidden: list[dict[str, Any]], n: int, pairs: list[Any]) -> str:
    if not pairs:
        return "no LCoN stores"
    where = ", ".join(f"{r['psnr']:g}" for r in hidden)
    return (
        f"at {len(hidden)} of {n} PSNRs"
        + (f" ({where} dB)" if hidden else "")
        + f"; chance {pairs[0][2]['chance_top1']:.3%}"
    )
