"""Write the README's result tables from the committed study outputs under ``results/``.

Every table of measured figures in README.md sits between two markers::

    <!-- BEGIN results/NAME (tools/readme_tables.py) -->
    ...
    <!-- END results/NAME -->

and is produced here from ``results/NAME/results.json``, never typed by hand.

    python tools/readme_tables.py           # rewrite README.md in place
    python tools/readme_tables.py --check   # exit 1 if README.md differs from what it would write

The test suite runs ``--check`` (tests/test_readme_tables.py), so a table cannot drift from the
file it claims to come from.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
MARKER = re.compile(
    r"(<!-- BEGIN results/(?P<name>[\w.-]+) \(tools/readme_tables.py\) -->\n)(?P<body>.*?)"
    r"(<!-- END results/(?P=name) -->)",
    re.S,
)

Rows = list[dict[str, Any]]


def _load(name: str, root: Path) -> dict[str, Any]:
    path = root / "results" / name / "results.json"
    if not path.is_file():
        raise SystemExit(f"error: README.md has a table for results/{name} but {path} is missing")
    return json.loads(path.read_text())


def _stats(values: Iterable[float]) -> tuple[float, float, int]:
    v = list(values)
    if not v:
        return math.nan, math.nan, 0
    m = sum(v) / len(v)
    sd = math.sqrt(sum((x - m) ** 2 for x in v) / (len(v) - 1)) if len(v) > 1 else 0.0
    return m, sd, len(v)


def _acc(rows: Rows, **match: Any) -> tuple[float, float, int]:
    return _stats(r["accuracy"] for r in rows if all(r[k] == v for k, v in match.items()))


def _pct(m: float) -> str:
    return "-" if math.isnan(m) else f"{100 * m:.1f}"


def _table(header: list[str], lines: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    out += ["| " + " | ".join(cells) + " |" for cells in lines]
    return "\n".join(out) + "\n"


def _three(rows: Rows, psnr: float, test: str, eps: float = 0.0) -> str:
    """clean / noisy / **LCoN** (+- the LCoN seeds' standard deviation) on one test set."""
    c = _acc(rows, psnr=psnr, train="clean", test=test, epsilon=eps)[0]
    n = _acc(rows, psnr=psnr, train="noisy", test=test, epsilon=eps)[0]
    lm, lsd, k = _acc(rows, psnr=psnr, train="lcon", test=test, epsilon=eps)
    spread = f" +- {100 * lsd:.1f}" if k > 1 else ""
    return f"{_pct(c)} / {_pct(n)} / **{_pct(lm)}**{spread}"


def lcon_tables(res: dict[str, Any]) -> str:
    """Fig. 2 (every PSNR: clean / noisy / LCoN-trained at equal storage), Fig. 3 and the claims."""
    rows = res["rows"]
    cfg = res["config"]
    noise_rows = [r for r in rows if r["sweep"] == "noise"]
    seeds = sorted({r["seed"] for r in rows})
    metric = noise_rows[0]["metric"] if noise_rows else "mse"
    sym = "sigma" if metric == "mse" else "b"
    target = "sigma^2" if metric == "mse" else "b"
    n_test = max((r["n_test"] for r in noise_rows if r["test"] == "clean"), default=0)
    n_adv = max((r["n_test"] for r in noise_rows if r["test"] == "fgsm"), default=0)
    eps_mid = 0.1 if 0.1 in cfg["fgsm_eps"] else cfg["fgsm_eps"][0]
    pgd_eps = cfg["pgd_eps"][0] if cfg["pgd_eps"] else None
    out = [
        f"`{res['command']}` ({len(seeds)} seed(s), {cfg['epochs']} epochs, {n_test:,} test "
        f"images, attacks on {n_adv:,}; {res['timing']['models_trained']} models in "
        f"{res['timing']['total'] / 60:.0f} min). Accuracy %, trained on clean / noisy / "
        f"**LCoN** images at equal stored bits (mean over seeds; +- the LCoN models' standard "
        f"deviation):\n\n"
    ]
    header = ["PSNR (dB)", sym, "LCoN bpp", f"stored {metric.upper()} / {target}",
              "clean test", "noisy test", "LCoN test", f"FGSM {eps_mid:g}",
              f"LCoN-FGSM {eps_mid:g}"] + ([f"PGD {pgd_eps:g}"] if pgd_eps is not None else [])  # fmt: skip
    lines = []
    for psnr in sorted({r["psnr"] for r in noise_rows}):
        r0 = next(r for r in noise_rows if r["psnr"] == psnr and r["train"] == "lcon")
        ratio = r0["achieved_distortion"] / r0["target_distortion"]
        reached = "" if r0["target_reached"] else " (not reached)"
        cells = [f"{psnr:g}", f"{r0['noise_sigma']:.1f}", f"{r0['bits_per_pixel']:.3f}",
                 f"{ratio:.2f}{reached}", _three(noise_rows, psnr, "clean"),
                 _three(noise_rows, psnr, "noisy"), _three(noise_rows, psnr, "lcon"),
                 _three(noise_rows, psnr, "fgsm", eps_mid),
                 _three(noise_rows, psnr, "lcon-fgsm", eps_mid)]  # fmt: skip
        if pgd_eps is not None:
            cells.append(_three(noise_rows, psnr, "pgd", pgd_eps))
        lines.append(cells)
    out.append(_table(header, lines))
    sweep = [r for r in rows if r["sweep"] == "distortion"]
    if sweep:
        matched = res.get("sweep_matched_distortion")
        out.append(
            f"\nFig. 3 (PSNR {sweep[0]['psnr']:.1f} dB, LCoN-trained on the whole store, codec "
            f"{metric.upper()} target swept around the matched {matched:g}): accuracy % "
            "(mean +- standard deviation over seeds)\n\n"
        )
        by_t: dict[float, Rows] = defaultdict(list)
        for r in sweep:
            by_t[r["target_distortion"]].append(r)
        lines = []
        for t in sorted(by_t):
            rs = by_t[t]
            cells = [f"{t:g}" + (" (matched)" if matched and math.isclose(t, matched) else ""),
                     f"{rs[0]['achieved_distortion']:.0f}", f"{rs[0]['bits_per_pixel']:.3f}"]  # fmt: skip
            for test in ("clean", "noisy", "lcon"):
                m, sd, k = _stats(r["accuracy"] for r in rs if r["test"] == test)
                cells.append(_pct(m) + (f" +- {100 * sd:.1f}" if k > 1 else ""))
            lines.append(cells)
        out.append(_table(["target", "reached", "bpp", "clean test", "noisy test", "LCoN test"],
                          lines))  # fmt: skip
    out.append("\nThe paper's claims, checked by the study (`claims` in results.json has the full "
               "evidence):\n\n")
    shown: set[str] = set()
    for c in res["claims"]:
        verdict = {True: "holds", False: "does not hold", None: "not tested"}[c["holds"]]
        detail = c["detail"].split(". Codec:")[0]  # the codec's own explanation stays in the file
        out.append(f"- **{verdict}**: {c['statement']}" + ("" if detail in shown else f". {detail}")
                   + "\n")
        shown.add(detail)
    return "".join(out)


BUILDERS: dict[str, Callable[[dict[str, Any]], str]] = {
    "lcon-quick": lcon_tables,
    "lcon-gaussian-jpeg": lcon_tables,
    "lcon-laplace-learned": lcon_tables,
    "lcon-laplace-learned-nominal": lcon_tables,
}


def render(readme: str, root: Path = ROOT) -> str:
    """``readme`` with every marked table rewritten from its results file."""

    def one(m: re.Match[str]) -> str:
        name = m.group("name")
        family = name if name in BUILDERS else name.split("-")[0]
        builder = BUILDERS.get(family)
        if builder is None:
            raise SystemExit(f"error: no table builder for results/{name}")
        return m.group(1) + "\n" + builder(_load(name, root)).rstrip("\n") + "\n\n" + m.group(4)

    return MARKER.sub(one, readme)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="exit 1 if README.md is out of date")
    ap.add_argument("--readme", type=Path, default=ROOT / "README.md")
    args = ap.parse_args(argv)
    text = args.readme.read_text()
    new = render(text, args.readme.resolve().parent)
    if args.check:
        if new != text:
            print("README.md tables differ from results/: run python tools/readme_tables.py")
            return 1
        return 0
    args.readme.write_text(new)
    return 0


if __name__ == "__main__":
    sys.exit(main())
